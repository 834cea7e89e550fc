"""Add the activity-log alert rules a subscription lacks on key vault deletion and key vault writes.

One rule per operation, over the subscription, as infra/app/alerts.bicep deploys them (`cryptward-vault-deleted`:
Microsoft.KeyVault/vaults/delete, `cryptward-vault-changed`: Microsoft.KeyVault/vaults/write, which is how purge
protection, network rules and the access model change), each `{category Administrative, operationName, status
Succeeded}` and notifying the operator's action group (CRYPTWARD_ALERT_ACTION_GROUP), never one a resource names.
Shapes: Microsoft's ActivityLogAlertRule_CreateOrUpdate.json (2020-10-01, location Global). The rule lives in the
action group's resource group, which must be in the vault's subscription (a rule's scopes are in its own
subscription # unverified); elsewhere the fix is not configured for that subscription. Existing rules are never
changed: a rule that exists but is disabled is reported, not turned on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import ALERTS_API, ALERTS_BLOCK, cryptward, get, name_of

RULES = {
    "Microsoft.KeyVault/vaults/delete": ("cryptward-vault-deleted", "A key vault was deleted"),
    "Microsoft.KeyVault/vaults/write": (
        "cryptward-vault-changed",
        "A key vault was written (purge protection, network, access)",
    ),
}


def watches(rule: Mapping[str, Any], operation: str, scopes: set[str]) -> bool:
    """Whether an alert rule is enabled over one of `scopes` (lower-cased) on `operation`."""
    if get(rule, "properties.enabled") is False:
        return False
    if not {str(s).lower().rstrip("/") for s in get(rule, "properties.scopes") or []} & scopes:
        return False
    return any(
        str(leaf.get("field", "")).lower() == "operationname"
        and str(leaf.get("equals", "")).lower() == operation.lower()
        for leaf in get(rule, "properties.condition.allOf") or []
    )


@register("kv-admin-alerts")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id = str(resource["id"])
    parts = vault_id.split("/")
    sub = f"/subscriptions/{parts[2]}"
    scopes = {sub.lower(), "/".join(parts[:5]).lower()}
    rules = cryptward(resource, ALERTS_BLOCK) or []
    missing = [op for op in RULES if not any(watches(r, op, scopes) for r in rules)]
    if not missing:
        return []
    group = ctx.settings.alert_action_group
    if not group:
        raise FixDeclined(
            SkipReason.NOT_CONFIGURED,
            "no action group is configured for the alerts (CRYPTWARD_ALERT_ACTION_GROUP), so nobody would be told",
        )
    if group.split("/")[2].lower() != parts[2].lower():
        raise FixDeclined(
            SkipReason.NOT_CONFIGURED,
            f"the action group {name_of(group)} is in another subscription: Cryptward adds alert rules beside it, "
            f"and a rule over subscription {parts[2]} belongs in that subscription",
        )
    home = "/".join(group.split("/")[:5])
    existing = {str(r.get("id", "")).lower() for r in rules}
    changes, kept = [], []
    for op in missing:
        name, what = RULES[op]
        rule_id = f"{home}/providers/Microsoft.Insights/activityLogAlerts/{name}"
        if rule_id.lower() in existing:
            kept.append(name)  # someone changed (or disabled) Cryptward's own rule: theirs to decide
            continue
        body = {
            "location": "Global",
            "properties": {
                "enabled": True,
                "description": f"{what}: added by Cryptward, which tells the vault's owners.",
                "scopes": [sub],
                "condition": {
                    "allOf": [
                        {"field": "category", "equals": "Administrative"},
                        {"field": "operationName", "equals": op},
                        {"field": "status", "equals": "Succeeded"},
                    ]
                },
                "actions": {"actionGroups": [{"actionGroupId": group}]},
            },
        }
        changes.append(
            Change(
                resource_id=vault_id,
                summary=(
                    f"Add activity-log alert rule {name} over subscription {parts[2]}: when {op} succeeds "
                    f"(for key vault {name_of(vault_id)} and every other), action group {name_of(group)} is notified."
                ),
                operation=Operation("PUT", rule_id, ALERTS_API, body),
                before={"properties.enabled": None},
                after={"properties.enabled": True},
            )
        )
    if kept and not changes:
        raise FixDeclined(
            SkipReason.BLOCKED,
            f"alert rule {', '.join(kept)} exists but does not watch what it should (disabled, or changed); "
            "Cryptward does not change an existing rule: its owner decides",
        )
    return changes
