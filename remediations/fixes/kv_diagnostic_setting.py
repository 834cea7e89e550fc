"""Send a key vault's audit logs to the configured Log Analytics workspace: extend the setting that already sends to
that workspace, or add one.

Azure refuses a second setting sending a category to a sink another setting of the resource already sends it to (409
Conflict, "Data sinks can't be reused in different settings on the same category for the same resource"; the groups
`audit` and `allLogs` count as the categories they hold), and a resource has at most five settings (Learn,
"Diagnostic settings in Azure Monitor"). So a vault whose setting already sends something (metrics, other logs) to
the workspace gets that setting extended, everything in it kept; one with no such setting gets a new one. A setting
that also names another sink (a storage account, an event hub) is not rewritten: ARM checks the caller's rights on
every sink a diagnostic setting names (LinkedAuthorizationFailed), and the bot holds them on its workspace alone.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import DIAGNOSTIC_SETTINGS_API, get, name_of

LOGS = [{"categoryGroup": "audit", "enabled": True}]
METRICS = [{"category": "AllMetrics", "enabled": True}]
MAX_SETTINGS = 5
AUDIT_GROUPS = ("audit", "alllogs")
AUDIT_CATEGORY = "AuditEvent"
OTHER_SINKS = ("storageAccountId", "eventHubAuthorizationRuleId", "serviceBusRuleId", "marketplacePartnerId")
# what a PUT of a diagnostic setting carries (diagnosticsSettings_API.json 2021-05-01-preview, DiagnosticSettings)
WRITABLE = ("workspaceId", *OTHER_SINKS, "eventHubName", "logAnalyticsDestinationType", "metrics", "logs")


def _same_id(a: Any, b: Any) -> bool:
    return bool(a) and bool(b) and str(a).rstrip("/").lower() == str(b).rstrip("/").lower()


def _with_audit(logs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The setting's logs with the vault's audit events on, every other entry kept; and the entry that does it. A
    setting written with categories gets the AuditEvent category, one written with groups (or none) the audit group."""
    out = copy.deepcopy(logs)
    field = "category" if any(e.get("category") for e in out) else "categoryGroup"
    wanted = (AUDIT_CATEGORY.lower(),) if field == "category" else AUDIT_GROUPS
    for entry in out:
        if str(entry.get(field) or "").lower() in wanted:
            entry["enabled"] = True
            return out, {field: entry[field], "enabled": True}
    added = {"category": AUDIT_CATEGORY, "enabled": True} if field == "category" else dict(LOGS[0])
    out.append(added)
    return out, added


def _extend(vault_id: str, setting: Mapping[str, Any], workspace: str) -> Change:
    props = get(setting, "properties") or {}
    name = str(get(setting, "name") or name_of(str(setting["id"])))
    others = [f for f in OTHER_SINKS if props.get(f)]
    if others:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"diagnostic setting {name} already sends to workspace {name_of(workspace)} without the audit events, "
            f"and also to its {', '.join(others)}: rewriting it would need rights on that destination too (ARM checks "
            "every destination a setting names), which Cryptward does not hold. Add the audit events to it by hand.",
        )
    logs, added = _with_audit(list(props.get("logs") or []))
    body = {"properties": {k: props[k] for k in WRITABLE if props.get(k) is not None} | {"logs": logs}}
    path = str(setting["id"])
    return Change(
        resource_id=vault_id,
        summary=(
            f"Extend diagnostic setting {name} of key vault {name_of(vault_id)}, which already sends to Log Analytics "
            f"workspace {name_of(workspace)}, with the vault's audit events; everything else it sends is kept (a "
            "second setting for the same workspace and category would be refused)."
        ),
        operation=Operation("PUT", path, DIAGNOSTIC_SETTINGS_API, body),
        before={"properties.logs": props.get("logs") or []},
        after={"properties.logs": logs},
        verify={"properties.workspaceId": props["workspaceId"], "properties.logs": [added]},
    )


@register("kv-diagnostic-setting")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id = str(resource["id"])
    workspace = ctx.settings.workspace_id
    if not workspace:
        raise FixDeclined(SkipReason.NOT_CONFIGURED, "no Log Analytics workspace is configured for key vault logs")
    existing = [s for s in get(resource, "cryptward.diagnosticSettings") or [] if isinstance(s, Mapping)]
    to_workspace = [s for s in existing if _same_id(get(s, "properties.workspaceId"), workspace)]
    if to_workspace:
        return [_extend(vault_id, sorted(to_workspace, key=lambda s: str(get(s, "name") or ""))[0], workspace)]
    name = ctx.settings.diagnostic_setting_name
    taken = next((s for s in existing if str(get(s, "name") or "").lower() == name.lower()), None)
    if taken is not None:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"the vault already has a diagnostic setting named {name}, sending elsewhere; Cryptward does not replace "
            "it (that would drop its destinations). Set CRYPTWARD_DIAGNOSTIC_SETTING_NAME to a free name.",
        )
    if len(existing) >= MAX_SETTINGS:
        raise FixDeclined(
            SkipReason.UNSUPPORTED,
            f"the vault has {len(existing)} diagnostic settings, Azure's maximum of {MAX_SETTINGS} per resource, none "
            f"sending to workspace {name_of(workspace)}; send the audit events from one of them by hand.",
        )
    path = f"{vault_id}/providers/Microsoft.Insights/diagnosticSettings/{name}"
    body = {"properties": {"workspaceId": workspace, "logs": LOGS, "metrics": METRICS}}
    return [
        Change(
            resource_id=vault_id,
            summary=(
                f"Add diagnostic setting {name} to key vault {name_of(vault_id)}, sending its audit events and "
                f"metrics to Log Analytics workspace {name_of(workspace)}."
            ),
            operation=Operation("PUT", path, DIAGNOSTIC_SETTINGS_API, body),
            before={"properties.workspaceId": None, "properties.logs": None, "properties.metrics": None},
            after={"properties.workspaceId": workspace, "properties.logs": LOGS, "properties.metrics": METRICS},
        )
    ]
