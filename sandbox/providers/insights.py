"""Microsoft.Insights/diagnosticSettings on a resource (or subscription), and a minimal Log Analytics workspace.

A diagnostic setting needs at least one destination; its log categories / category groups and metric categories must
be ones the resource type exports (a key vault: AuditEvent, AzurePolicyEvaluationDetails; groups audit, allLogs;
metric AllMetrics); a resource has at most 5 settings, and two settings may not send the same category to the same
destination. A `workspaceId` must name an existing Microsoft.OperationalInsights/workspaces.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, not_found, parse_path, register, tracked_location

DIAGNOSTIC_API = ("2017-05-01-preview", "2021-05-01-preview")
WORKSPACE_API = ("2020-08-01", "2021-06-01", "2022-10-01", "2023-09-01", "2025-02-01")
WORKSPACE_TYPE = "Microsoft.OperationalInsights/workspaces"
MAX_SETTINGS = 5
_DESTINATIONS = ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId", "marketplacePartnerId")


class Categories:
    """A resource type's log categories, category groups and metric categories. `audit` lists the categories of the
    `audit` group; `allLogs` is every log category (Learn, "Diagnostic settings in Azure Monitor", category groups)."""

    def __init__(
        self, logs: tuple[str, ...], groups: tuple[str, ...], metrics: tuple[str, ...], audit: tuple[str, ...] = ()
    ) -> None:
        self.logs, self.groups, self.metrics, self.audit = logs, groups, metrics, audit

    def expand(self, name: str) -> set[str]:
        """A category, or the categories a category group stands for, lower-cased."""
        group = name.lower()
        if group == "alllogs" and any(g.lower() == "alllogs" for g in self.groups):
            return {c.lower() for c in self.logs}
        if group == "audit" and any(g.lower() == "audit" for g in self.groups):
            return {c.lower() for c in self.audit}
        return {group}


# What each resource type exports, by lower-cased type (Azure Monitor's "supported categories" tables).
CATEGORIES: dict[str, Categories] = {
    # AuditEvent is in the audit group (Learn, "Supported logs for Microsoft.KeyVault/vaults"; the reading);
    # AzurePolicyEvaluationDetails only in allLogs  # unverified
    "microsoft.keyvault/vaults": Categories(
        ("AuditEvent", "AzurePolicyEvaluationDetails"), ("audit", "allLogs"), ("AllMetrics",), ("AuditEvent",)
    ),
    "microsoft.operationalinsights/workspaces": Categories(
        ("Audit", "SummaryLogs"), ("audit", "allLogs"), ("AllMetrics",), ("Audit",)
    ),
    "microsoft.compute/virtualmachines": Categories((), (), ("AllMetrics",)),
    "microsoft.eventgrid/systemtopics": Categories(("DeliveryFailures",), ("allLogs",), ("AllMetrics",)),
    "microsoft.web/sites": Categories(
        ("FunctionAppLogs", "AppServiceAuthenticationLogs"), ("allLogs",), ("AllMetrics",)
    ),
    "microsoft.storage/storageaccounts": Categories((), (), ("Transaction",)),
}
# The subscription's activity log (the same API at /subscriptions/{id}).
SUBSCRIPTION_CATEGORIES = Categories(
    (
        "Administrative",
        "Security",
        "ServiceHealth",
        "Alert",
        "Recommendation",
        "Policy",
        "Autoscale",
        "ResourceHealth",
    ),
    (),
    (),
)


# ARM's linked-scope checks: a sink named in a diagnostic setting needs the caller's right to read its keys, refused
# with 403 LinkedAuthorizationFailed. Workspace: recorded ARM answers for a key vault's diagnostic setting quote
# 'Microsoft.OperationalInsights/workspaces/sharedKeys/action' (Microsoft's own az-mpf test data, and
# JimGBritt/AzurePolicy#17, MicrosoftDocs/azure-docs#80159); event hub: 'Microsoft.EventHub/namespaces/
# authorizationrules/listkeys/action' (CDCgov/prime-reportstream#7678, a recorded activity-log error); storage:
# listKeys on the account (MicrosoftDocs/azure-docs#80159)  # unverified: the exact action string for storage
LINKED_ACTIONS = {
    "workspaceId": "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
    "eventHubAuthorizationRuleId": "Microsoft.EventHub/namespaces/authorizationrules/listkeys/action",
    "storageAccountId": "Microsoft.Storage/storageAccounts/listKeys/action",
}


def _linked_checks(call: Call, props: dict[str, Any]) -> None:
    """Each sink's linked action, on the sink, for the caller; worded as ARM words it (the recorded answers)."""
    sb = call.sandbox
    if sb is None:
        return
    p = call.principal
    for field, action in LINKED_ACTIONS.items():
        sink = str(props.get(field) or "")
        parts = sink.split("/")
        if len(parts) > 2 and parts[1].lower() == "subscriptions" and parts[2].lower() not in call.state.subscriptions:
            continue  # a subscription the sandbox does not hold: the caller's rights there are unknown (not checked)
        if sink and not sb.allowed(p.object_id, action, sink):
            raise ArmError(
                403,
                "LinkedAuthorizationFailed",
                f"The client '{p.upn or p.object_id}' with object id '{p.object_id}' has permission to perform action "
                f"'Microsoft.Insights/diagnosticSettings/write' on scope '{call.path.id}'; however, it does not have "
                f"permission to perform action(s) '{action}' on the linked scope(s) '{sink}' (respectively) or the "
                "linked scope(s) are invalid.",
            )


def _bad_request(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message)


def _check_linked_id(value: str, field: str) -> None:
    if not value.startswith("/subscriptions/") and not value.startswith("/providers/"):
        raise ArmError(
            400,
            "LinkedInvalidPropertyId",
            f"Property id '{value}' at path 'properties.{field}' is invalid. Expect fully qualified resource Id that "
            "start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
        )


@register
class DiagnosticSettings(ResourceType):
    type = "Microsoft.Insights/diagnosticSettings"
    api_versions = DIAGNOSTIC_API
    extension = True

    def _categories(self, call: Call) -> Categories | None:
        parent = call.path.parent
        if parent.lower().rstrip("/") == f"/subscriptions/{call.path.subscription}".lower():
            return SUBSCRIPTION_CATEGORIES
        target = call.state.get(parent) if "/providers/" in parent else None
        rtype = str(target.get("type", "")) if target else parse_path(parent, "GET").type
        found = CATEGORIES.get(rtype.lower())
        if found is None and target is None:
            raise _bad_request(f"The resource type '{rtype.lower()}' does not support diagnostic settings.")
        # A stored resource of a type whose categories the sandbox does not know: accept what is asked (unchecked).
        return found

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise ArmError(404, "ResourceNotFound", f"The diagnostic setting '{call.path.name}' doesn't exist.")
        return self.view(call, body)

    def list(self, call: Call) -> list[dict[str, Any]]:
        self._categories(call)
        parent = call.path.parent.lower().rstrip("/")
        return [
            self.view(call, b)
            for b in call.state.of_type(self.type, under=call.path.parent)
            if b["id"].lower().rsplit("/providers/", 1)[0] == parent
        ]

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        cats = self._categories(call)
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        if not any(props.get(d) for d in _DESTINATIONS):
            raise _bad_request("At least one data sink needs to be specified.")
        for field in _DESTINATIONS:
            if props.get(field):
                _check_linked_id(str(props[field]), field)
        _linked_checks(call, props)
        if props.get("workspaceId"):
            ws = parse_path(str(props["workspaceId"]), "GET")
            if ws.type.lower() != WORKSPACE_TYPE.lower() or ws.kind != "item":
                raise _bad_request(f"The workspace id '{props['workspaceId']}' is not a Log Analytics workspace.")
            if call.state.get(ws.id) is None:
                raise not_found(ws)
        logs = [self._log(entry, cats, call.api_version) for entry in props.get("logs") or []]
        metrics = [self._metric(entry, cats) for entry in props.get("metrics") or []]
        siblings = [
            b
            for b in call.state.of_type(self.type, under=call.path.parent)
            if b["id"].lower().rsplit("/providers/", 1)[0] == call.path.parent.lower().rstrip("/")
            and b["id"].lower() != call.path.id.lower()
        ]
        # "Each resource can have up to five diagnostic settings" (Learn, "Diagnostic settings in Azure Monitor");
        # the code and wording of the refusal  # unverified
        if existing is None and len(siblings) >= MAX_SETTINGS:
            raise _bad_request(
                f"Diagnostic settings count exceeds the limit of {MAX_SETTINGS} for the resource '{call.path.parent}'."
            )
        self._check_sink_reuse(props, logs, metrics, siblings, cats)
        stored_props: dict[str, Any] = {}
        for field in ("storageAccountId", "serviceBusRuleId", "eventHubAuthorizationRuleId", "eventHubName"):
            if field in props:
                stored_props[field] = props[field]
        stored_props["metrics"] = metrics
        stored_props["logs"] = logs
        stored_props["workspaceId"] = props.get("workspaceId")
        for field in ("marketplacePartnerId", "logAnalyticsDestinationType"):
            if field in props:
                stored_props[field] = props[field]
        stored = {
            "id": existing["id"] if existing else call.path.id,
            "type": self.type,
            "name": call.path.name,
            "properties": stored_props,
        }
        call.state.put(stored)
        return Answer(200, self.view(call, stored))

    @staticmethod
    def _log(entry: Any, cats: Categories | None, api_version: str) -> dict[str, Any]:
        if not isinstance(entry, dict) or "enabled" not in entry:
            raise _bad_request("Each log setting must have 'enabled'.")
        category, group = entry.get("category"), entry.get("categoryGroup")
        if bool(category) == bool(group):
            raise _bad_request("Each log setting must have exactly one of 'category' and 'categoryGroup'.")
        if group:
            if api_version < "2021-05-01-preview":
                raise _bad_request(f"Category group '{group}' is not supported in api-version '{api_version}'.")
            match = next((g for g in cats.groups if g.lower() == str(group).lower()), None) if cats else group
            if match is None:
                raise _bad_request(f"Category group '{group}' is not supported.")
        else:
            match = next((c for c in cats.logs if c.lower() == str(category).lower()), None) if cats else category
            if match is None:
                raise _bad_request(f"Category '{category}' is not supported.")
        named = {"category": category} if group is None else {"categoryGroup": group}  # only the one given
        return {
            **named,
            "enabled": bool(entry["enabled"]),
            "retentionPolicy": entry.get("retentionPolicy") or {"enabled": False, "days": 0},
        }

    @staticmethod
    def _metric(entry: Any, cats: Categories | None) -> dict[str, Any]:
        if not isinstance(entry, dict) or "enabled" not in entry:
            raise _bad_request("Each metric setting must have 'enabled'.")
        category = entry.get("category")
        if cats and not any(c.lower() == str(category).lower() for c in cats.metrics):
            supported = ", ".join(f"'{c}'" for c in cats.metrics)
            raise _bad_request(f"Metric category '{category}' is not supported, supported categories are: {supported}")
        out = {
            "category": category,
            "enabled": bool(entry["enabled"]),
            "retentionPolicy": entry.get("retentionPolicy") or {"enabled": False, "days": 0},
        }
        if entry.get("timeGrain"):
            out["timeGrain"] = entry["timeGrain"]
        return out

    @staticmethod
    def _check_sink_reuse(
        props: dict[str, Any],
        logs: list[dict[str, Any]],
        metrics: list[dict[str, Any]],
        siblings: list[Any],
        cats: Categories | None,
    ) -> None:
        """Two settings of one resource may not send one category to one sink: 409 Conflict, "Data sink '{id}' is
        already used in diagnostic setting '{name}' for category '{category}'. Data sinks can't be reused in different
        settings on the same category for the same resource." (the wording of answers recorded in public notes, e.g.
        the Azure Policy known issue "Data sink <resource id of your workspace> is already used in diagnostic
        settings ..."; code "Conflict"). Category groups count as the categories they stand for: a setting sending
        `audit` and another sending `AuditEvent` to one workspace conflict."""

        def enabled(entries: list[dict[str, Any]]) -> dict[str, str]:
            out: dict[str, str] = {}
            for e in entries:
                if e["enabled"]:
                    name = str(e.get("category") or e.get("categoryGroup"))
                    for category in cats.expand(name) if cats else {name.lower()}:
                        out.setdefault(category, category)
            return out

        mine = enabled(logs) | enabled(metrics)
        names = {c.lower(): c for c in (cats.logs + cats.metrics if cats else ())}
        for other in siblings:
            op = other["properties"]
            theirs = enabled(op.get("logs") or []) | enabled(op.get("metrics") or [])
            for field in _DESTINATIONS:
                sink = props.get(field)
                if sink and str(op.get(field) or "").lower() == str(sink).lower():
                    shared = sorted(set(mine) & set(theirs))
                    if shared:
                        raise ArmError(
                            409,
                            "Conflict",
                            f"Data sink '{sink}' is already used in diagnostic setting '{other['name']}' for category "
                            f"'{names.get(shared[0], shared[0])}'. Data sinks can't be reused in different settings on "
                            "the same category for the same resource.",
                        )


_WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$")
_WORKSPACE_SKUS = ("Free", "Standard", "Premium", "PerNode", "PerGB2018", "Standalone", "CapacityReservation")


@register
class Workspaces(ResourceType):
    """Microsoft.OperationalInsights/workspaces: enough for diagnostic settings to point at (no ingestion)."""

    type = WORKSPACE_TYPE
    api_versions = WORKSPACE_API

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        name = call.path.name or ""
        if not _WORKSPACE_NAME.match(name):
            raise ArmError(
                400,
                "InvalidParameter",
                f"Workspace name '{name}' is invalid. The name must be 4 to 63 characters long, contain only letters, "
                "digits and hyphens, and begin and end with a letter or digit.",
            )
        body = call.body if isinstance(call.body, dict) else {}
        location = tracked_location(call, existing).replace(" ", "").lower()
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        old = existing["properties"] if existing else {}
        sku = (props.get("sku") or {}).get("name") or (old.get("sku") or {}).get("name") or "PerGB2018"
        sku = next((s for s in _WORKSPACE_SKUS if s.lower() == str(sku).lower()), None)
        if sku is None:
            raise ArmError(
                400, "InvalidParameter", f"The sku '{(props.get('sku') or {}).get('name')}' is not supported."
            )
        retention = props.get("retentionInDays", old.get("retentionInDays", 30))
        if not isinstance(retention, int) or not 30 <= retention <= 730:
            raise ArmError(
                400,
                "InvalidParameter",
                f"The retention period '{retention}' is invalid. Retention must be between 30 and 730 days.",
            )
        now = call.state.clock.iso()
        stored = {
            "id": existing["id"] if existing else call.path.id,
            "name": existing["name"] if existing else name,
            "type": self.type,
            "location": location,
            "tags": body.get("tags", existing.get("tags", {}) if existing else {}),
            "properties": {
                "customerId": old.get("customerId") or str(uuid.uuid4()),
                "provisioningState": "Succeeded",
                "sku": {
                    "name": sku,
                    "lastSkuUpdate": now if not existing or sku != old["sku"]["name"] else old["sku"]["lastSkuUpdate"],
                },
                "retentionInDays": retention,
                "features": {"legacy": 0, "searchVersion": 1, "enableLogAccessUsingOnlyResourcePermissions": True},
                "workspaceCapping": {
                    "dailyQuotaGb": -1.0,
                    "quotaNextResetTime": now,
                    "dataIngestionStatus": "RespectQuota",
                },
                "publicNetworkAccessForIngestion": props.get(
                    "publicNetworkAccessForIngestion", old.get("publicNetworkAccessForIngestion", "Enabled")
                ),
                "publicNetworkAccessForQuery": props.get(
                    "publicNetworkAccessForQuery", old.get("publicNetworkAccessForQuery", "Enabled")
                ),
                "createdDate": old.get("createdDate", now),
                "modifiedDate": now,
            },
        }
        call.state.put(stored)
        return Answer(200 if existing else 201, copy.deepcopy(stored))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        body = call.body if isinstance(call.body, dict) else {}
        stored = copy.deepcopy(existing)
        if "tags" in body:
            stored["tags"] = body["tags"]
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        if "retentionInDays" in props:
            retention = props["retentionInDays"]
            if not isinstance(retention, int) or not 30 <= retention <= 730:
                raise ArmError(
                    400,
                    "InvalidParameter",
                    f"The retention period '{retention}' is invalid. Retention must be between 30 and 730 days.",
                )
            stored["properties"]["retentionInDays"] = retention
        stored["properties"]["modifiedDate"] = call.state.clock.iso()
        call.state.put(stored)
        return Answer(200, copy.deepcopy(stored))
