"""Table Storage plumbing the ledger's tables share: optimistic concurrency on one entity, and texts cut to fit a
string property.

    swap(table, pk, rk, change, "what it does")   # read; change(current) -> (entity to write or None, result); write
                                                   # if unchanged since read, else read again (RETRIES times)
    fit(text) -> (text, cut)                       # at most MAX_PROPERTY_UNITS UTF-16 code units, marked when cut
    key_of(resource_id)                            # a resource's key: SHA-256 of its lower-case id
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from remediations.errors import AzureAccessError
from remediations.store.storage import storage_errors

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity

# Table Storage: a string property holds 64 KiB (32,768 UTF-16 code units), an entity 1 MiB. Each stored text is
# kept under the first limit; an audit entity has about a dozen properties, so it stays far under the second.
MAX_PROPERTY_UNITS = 32_000
RETRIES = 20

R = TypeVar("R")
KEY_UNSAFE = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")  # characters a key may not hold


def key_of(resource_id: str) -> str:
    """The Table Storage key of a resource: SHA-256 of its lower-case id (ARM ids are case-insensitive)."""
    return hashlib.sha256(resource_id.lower().encode("utf-8", "surrogatepass")).hexdigest()


def get_entity(table: TableClient, pk: str, rk: str) -> TableEntity | None:
    """The entity, or None when there is none."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return table.get_entity(pk, rk)
    except ResourceNotFoundError:
        return None


def write_entity(table: TableClient, entity: Mapping[str, Any], current: TableEntity | None) -> None:
    """Create `entity` when nothing was read, else replace it only if it is unchanged since `current` was read.
    Raises HttpResponseError 409 / 412 when another writer got there first."""
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    if current is None:
        table.create_entity(entity)
    else:
        table.update_entity(
            entity, UpdateMode.REPLACE, etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
        )


def delete_unchanged(table: TableClient, current: TableEntity) -> bool:
    """Delete `current` unless another writer changed or removed it since it was read (ETag-conditional): True when
    this call deleted it. Of two callers that read the same entity, exactly one gets True."""
    from azure.core import MatchConditions
    from azure.core.exceptions import HttpResponseError

    try:
        table.delete_entity(
            current["PartitionKey"],
            current["RowKey"],
            etag=current.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except HttpResponseError as e:
        if e.status_code in (404, 412):
            return False
        raise
    return True


def swap(
    table: TableClient,
    pk: str,
    rk: str,
    change: Callable[[TableEntity | None], tuple[Mapping[str, Any] | None, R]],
    what: str,
) -> R:
    """Optimistic concurrency on one entity: read it, let `change` say what to write (None: nothing) and what to
    return, write it with `write_entity`, and start over when another writer got there first."""
    from azure.core.exceptions import HttpResponseError

    with storage_errors(what):
        for _ in range(RETRIES):
            current = get_entity(table, pk, rk)
            entity, result = change(current)
            if entity is None:
                return result
            try:
                write_entity(table, entity, current)
                return result
            except HttpResponseError as e:
                if e.status_code not in (409, 412):
                    raise
    raise contended(what)


def fit(text: str) -> tuple[str, bool]:
    """`text` cut to fit one string property (with a marker saying so), and whether it was cut. Lone surrogates,
    which cannot be sent, become `?`."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    units = _units(text)
    if units <= MAX_PROPERTY_UNITS:
        return text, False
    marker = f"...[truncated by Cryptward: {units} UTF-16 code units, over the 64 KB property limit]"
    room = MAX_PROPERTY_UNITS - len(marker)
    kept = text[:room]
    while (over := _units(kept) - room) > 0:  # a character is one or two units: halve the excess each round
        kept = kept[: len(kept) - (over + 1) // 2]
    return kept + marker, True


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def contended(what: str) -> AzureAccessError:
    return AzureAccessError(412, "ConditionNotMet", f"{what}: gave up after {RETRIES} conflicting writes")
