"""Switch a key vault to the Azure RBAC permission model (opt-in: its access policies stop granting anything)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext
from remediations.fixes import register
from remediations.resources import VAULT_API, get, name_of

PROPERTY = "properties.enableRbacAuthorization"


@register("kv-rbac-authorization")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id = str(resource["id"])
    policies = get(resource, "properties.accessPolicies") or []
    count = f"its {len(policies)} access polic{'y' if len(policies) == 1 else 'ies'}" if policies else "access policies"
    return [
        Change(
            resource_id=vault_id,
            summary=(
                f"Switch key vault {name_of(vault_id)} to the Azure RBAC permission model; {count} stop granting "
                "access at once, so every identity that uses the vault needs an Azure role on it first."
            ),
            operation=Operation("PATCH", vault_id, VAULT_API, {"properties": {"enableRbacAuthorization": True}}),
            before={PROPERTY: get(resource, PROPERTY)},
            after={PROPERTY: True},
            disruptive=True,
        )
    ]
