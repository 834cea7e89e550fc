"""Turn on purge protection on a key vault (irreversible: it can never be turned off again)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext
from remediations.fixes import register
from remediations.resources import VAULT_API, get, name_of

PROPERTY = "properties.enablePurgeProtection"


@register("kv-purge-protection")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id = str(resource["id"])
    return [
        Change(
            resource_id=vault_id,
            summary=(
                f"Turn on purge protection for key vault {name_of(vault_id)}, so that nothing deleted from it can "
                "be purged before its retention period ends; this cannot be turned off again."
            ),
            operation=Operation("PATCH", vault_id, VAULT_API, {"properties": {"enablePurgeProtection": True}}),
            before={PROPERTY: get(resource, PROPERTY)},
            after={PROPERTY: True},
            irreversible=True,
        )
    ]
