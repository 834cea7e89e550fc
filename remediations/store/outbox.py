"""The NoticeStore of the function app: failed notices in a Table Storage table beside the ledger's.

    store = TableNoticeStore.from_env(settings.storage.values)  # table `<CRYPTWARD_TABLE_PREFIX or cw>notices`
    outbox.notify(notices, routes, sender, store)

One entity per (notice, destination): PartitionKey `failed`, RowKey the SHA-256 of the failed id. The notice is
kept as zlib-compressed JSON split over binary properties of at most 60 KiB (a 500-change notice is ~450 KB of JSON
and ~20 KB compressed; an entity holds 1 MiB), so nothing is cut. It holds approval links, which are capabilities:
the table lives in the bot's own storage account, as the pending changes do.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from remediations.notices.compose import Notice
from remediations.notices.digest import from_dict
from remediations.notices.outbox import Failed
from remediations.store.ledger import PREFIX_SETTING, Tables
from remediations.store.storage import StorageTarget, as_target, storage_errors, target

if TYPE_CHECKING:
    from azure.data.tables import TableClient

PARTITION = "failed"
HELD = "held"  # a sweep's notices, waiting for its digests (notices/outbox.py flush_held)
CHUNK = 60 * 1024
MAX_CHUNKS = 15  # 900 KiB of compressed notice: under the 1 MiB entity limit with the other properties
MAX_ERROR = 4000


@dataclass
class TableNoticeStore:
    connection: str | StorageTarget = field(repr=False)  # a connection string (holds the account key) or a target
    table_name: str = "cwnotices"
    _client: Any = field(default=None, init=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TableNoticeStore:
        prefix = (env.get(PREFIX_SETTING) or "").strip()
        Tables.with_prefix(prefix or "cw")  # validates the prefix the way the ledger does
        store = cls(target(env), f"{prefix or 'cw'}notices")
        store.create_table()
        return store

    def create_table(self) -> None:
        with storage_errors("creating the notices table"), as_target(self.connection).table_service() as service:
            service.create_table_if_not_exists(self.table_name)

    def _table(self) -> TableClient:
        if self._client is None:
            self._client = as_target(self.connection).table_client(self.table_name)
        return self._client

    def save_failed(self, failed: Failed) -> None:
        from azure.data.tables import UpdateMode

        chunks = _pack(failed.notice)
        entity: dict[str, Any] = {
            "PartitionKey": PARTITION,
            "RowKey": _row(failed.id),
            "FailedId": failed.id,
            "Destination": failed.destination,
            "Error": failed.error[:MAX_ERROR],
            "Attempts": failed.attempts,
            "NextAt": failed.next_at,
            "Chunks": len(chunks),
            **{f"Notice{i}": chunk for i, chunk in enumerate(chunks)},
        }
        with storage_errors("keeping a failed notice"):
            self._table().upsert_entity(entity, mode=UpdateMode.REPLACE)

    def due(self, now: datetime) -> list[Failed]:
        query = "PartitionKey eq @pk and NextAt le @now"
        with storage_errors("reading failed notices"):
            rows = list(self._table().query_entities(query, parameters={"pk": PARTITION, "now": now}))
        return sorted((_failed(r) for r in rows), key=lambda f: f.next_at)

    def done(self, failed_id: str) -> None:
        with storage_errors("forgetting a failed notice"):
            self._table().delete_entity(PARTITION, _row(failed_id))

    def hold(self, run_id: str, notice: Notice, now: datetime | None = None) -> None:
        from azure.data.tables import UpdateMode

        chunks = _pack(notice)
        entity: dict[str, Any] = {
            "PartitionKey": HELD,
            "RowKey": _row(f"{run_id}\n{notice.id}"),
            "RunId": run_id,
            "HeldAt": now or datetime.now(UTC),
            "Chunks": len(chunks),
            **{f"Notice{i}": chunk for i, chunk in enumerate(chunks)},
        }
        with storage_errors("holding a sweep's notice"):
            self._table().upsert_entity(entity, mode=UpdateMode.REPLACE)

    def held(self) -> list[tuple[str, datetime, Notice]]:
        with storage_errors("reading held notices"):
            rows = list(self._table().query_entities("PartitionKey eq @pk", parameters={"pk": HELD}))
        out = []
        for row in rows:
            notice = _unpack(row)
            at = row["HeldAt"]
            if isinstance(notice, Notice):
                out.append((str(row["RunId"]), at if at.tzinfo else at.replace(tzinfo=UTC), notice))
        return out

    def release(self, run_id: str, notice_ids: Any) -> None:
        with storage_errors("forgetting held notices"):
            for notice_id in notice_ids:
                self._table().delete_entity(HELD, _row(f"{run_id}\n{notice_id}"))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _row(failed_id: str) -> str:
    return hashlib.sha256(failed_id.encode()).hexdigest()


def _pack(notice: Any) -> list[bytes]:
    packed = zlib.compress(json.dumps(notice.to_dict(), separators=(",", ":")).encode(), 9)
    chunks = [packed[i : i + CHUNK] for i in range(0, len(packed), CHUNK)]
    if len(chunks) > MAX_CHUNKS:
        raise ValueError(f"notice {notice.id} is too big to keep ({len(packed)} bytes compressed)")
    return chunks


def _unpack(row: Mapping[str, Any]) -> Any:
    packed = b"".join(bytes(row[f"Notice{i}"]) for i in range(int(row["Chunks"])))
    return from_dict(json.loads(zlib.decompress(packed)))


def _failed(row: Mapping[str, Any]) -> Failed:
    notice = _unpack(row)
    next_at = row["NextAt"]
    next_at = next_at if next_at.tzinfo else next_at.replace(tzinfo=UTC)
    return Failed(notice, str(row["Destination"]), str(row["Error"]), int(row["Attempts"]), next_at)


__all__ = ["TableNoticeStore"]
