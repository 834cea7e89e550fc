"""Send a key vault's audit logs and metrics to the configured Log Analytics workspace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.resources import DIAGNOSTIC_SETTINGS_API, name_of

LOGS = [{"categoryGroup": "audit", "enabled": True}]
METRICS = [{"category": "AllMetrics", "enabled": True}]


@register("kv-diagnostic-setting")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id = str(resource["id"])
    workspace = ctx.settings.workspace_id
    if not workspace:
        raise FixDeclined(SkipReason.NOT_CONFIGURED, "no Log Analytics workspace is configured for key vault logs")
    name = ctx.settings.diagnostic_setting_name
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
