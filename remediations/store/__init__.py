"""The function app's own storage (Table and Queue Storage; Azurite locally): the only importer of the storage SDKs.

| module | what it keeps |
|---|---|
| `storage` | where the account is and how to reach it (`StorageTarget`), and storage errors as `AzureAccessError` |
| `ledger` | dedupe claims, audit records, pending changes, fight counters: the bot's only state |
| `tables` | optimistic concurrency on one entity, texts fitted to a property |
| `workqueue` | work items as queue messages, packed for the timers |
| `outbox` | notices that could not be delivered, kept for a later try |
"""

from remediations.store.ledger import Ledger
from remediations.store.outbox import TableNoticeStore
from remediations.store.storage import StorageTarget, target
from remediations.store.workqueue import WorkQueue

__all__ = ["Ledger", "StorageTarget", "TableNoticeStore", "WorkQueue", "target"]
