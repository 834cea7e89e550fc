"""Which expiry announcements were sent (remediations/expiry.py), so that each is sent once, in the ledger's dedupe
table (one entity per announcement key, partition = SHA-256 of the key, row `announced`).

    first_time(ledger, announcement.key)   # True once: of concurrent workers exactly one gets True (insert-if-absent)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediations.store.ledger import key_of
from remediations.store.storage import storage_errors
from remediations.store.tables import fit, write_entity

if TYPE_CHECKING:
    from remediations.store.ledger import Ledger

ROW = "announced"


def first_time(ledger: Ledger, key: str) -> bool:
    from azure.core.exceptions import HttpResponseError

    entity = {
        "PartitionKey": key_of(f"announce:{key}"),
        "RowKey": ROW,
        "Key": fit(key)[0],
        "At": ledger.clock().timestamp(),
    }
    table = ledger._table(ledger.tables.dedupe)  # the ledger's own table client
    with storage_errors("remembering an expiry announcement"):
        try:
            write_entity(table, entity, None)
            return True
        except HttpResponseError as e:
            if e.status_code in (409, 412):  # sent before, or by another worker now
                return False
            raise


__all__ = ["first_time"]
