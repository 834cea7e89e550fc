"""Put a CanNotDelete lock on a key vault, so deleting it takes removing the lock first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext
from remediations.fixes import register
from remediations.resources import LOCKS_API, name_of

NOTES = "Added by Cryptward: a key vault holds encryption keys; remove this lock deliberately before deleting it."


@register("kv-delete-lock")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id = str(resource["id"])
    lock = ctx.settings.lock_name
    body = {"properties": {"level": "CanNotDelete", "notes": NOTES}}
    return [
        Change(
            resource_id=vault_id,
            summary=(
                f"Add the CanNotDelete lock {lock} to key vault {name_of(vault_id)}, so that deleting the vault "
                "first needs someone to remove the lock."
            ),
            operation=Operation("PUT", f"{vault_id}/providers/Microsoft.Authorization/locks/{lock}", LOCKS_API, body),
            before={"properties.level": None},
            after={"properties.level": "CanNotDelete"},
        )
    ]
