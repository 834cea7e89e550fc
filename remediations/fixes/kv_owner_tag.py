"""Record who owns a key vault: tag it with the person (or app) ARM records as its creator (systemData.createdBy).

Never an event's caller: the claims in an Event Grid delivery or an alert are whatever the sender wrote, and the
owner tag decides who is told about the vault's changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import TAGS_API, get, name_of


@register("kv-owner-tag")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id = str(resource["id"])
    tag = str(params.get("tagName") or "owner")
    tags = resource.get("tags") or {}
    if any(str(k).lower() == tag.lower() for k in tags):
        return []
    owner = get(resource, "systemData.createdBy")
    if not owner:
        raise FixDeclined(
            SkipReason.NO_CALLER,
            f"ARM does not record who created key vault {name_of(vault_id)}, so no owner can be named",
        )
    body = {"operation": "Merge", "properties": {"tags": {tag: owner}}}
    return [
        Change(
            resource_id=vault_id,
            summary=f"Tag key vault {name_of(vault_id)} with {tag}={owner}, who created it.",
            operation=Operation("PATCH", f"{vault_id}/providers/Microsoft.Resources/tags/default", TAGS_API, body),
            before={f"properties.tags.{tag}": None},
            after={f"properties.tags.{tag}": owner},
        )
    ]
