"""Activity-log alerts firing: which enabled rules an activity-log event matches, the payload each webhook receiver
of their action groups gets, and its delivery (async on the server's loop, never in the request that caused it).

Matching is Azure's: the event's resource lies within one of the rule's scopes, and every `allOf` entry holds
(`equals` / `containsAny`, compared without case; an entry may be `{"anyOf": [...]}` of such leaves). Fields:
category, operationName, resourceType, resourceGroup, resourceId, resourceProvider, status, subStatus, level,
caller, correlationId, eventDataId, and `properties.<name>`.

Payloads: the common alert schema (`useCommonAlertSchema: true`; shaped like Microsoft's sample
common-alert-schema-activity-log.json) or the legacy activity-log alert schema (`schemaId:
Microsoft.Insights/activityLogs`). Email / SMS / other receivers are recorded as not sent.

Retries follow the action-groups documentation ("Webhook retry behavior"): only a timeout, a connection error or
408, 429, 503, 504 is retried, up to 5 times, after 5, 20, 5, 40, 5 s; after that the endpoint gets nothing for 15
minutes (sandbox clock). The delays are multiplied by `retryDelayScale` (default 0.001: milliseconds), which
`PATCH /_sandbox/alerts/config` changes. Every attempt is kept: `GET /_sandbox/alerts`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import weakref
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from sandbox.state import iso, new_id

if TYPE_CHECKING:
    from sandbox.server import Sandbox

RULE_TYPE = "Microsoft.Insights/activityLogAlerts"
TABLE = "monitor.alerts"
RETRIABLE = frozenset({408, 429, 503, 504})
RETRY_DELAYS = (5.0, 20.0, 5.0, 40.0, 5.0)
SUPPRESSION = timedelta(minutes=15)
DEFAULTS = {"retryDelayScale": 0.001, "timeoutSeconds": 10.0}
USER_AGENT = "Sandbox-ActionGroups/1.0"


@dataclass
class _Runtime:
    config: dict[str, float] = field(default_factory=lambda: dict(DEFAULTS))
    tasks: set[Any] = field(default_factory=set)  # asyncio tasks / concurrent futures in flight
    ssl: ssl.SSLContext | None = None
    loop: asyncio.AbstractEventLoop | None = None  # the server's, once it serves


_RUNTIMES: weakref.WeakKeyDictionary[Any, _Runtime] = weakref.WeakKeyDictionary()


def runtime(sb: Sandbox) -> _Runtime:
    found = _RUNTIMES.get(sb)
    if found is None:
        found = _RUNTIMES[sb] = _Runtime()
    return found


def install(sb: Sandbox) -> None:
    rt = runtime(sb)
    sb.state.on_reset(lambda: rt.config.update(DEFAULTS))

    async def remember_loop() -> None:
        rt.loop = asyncio.get_running_loop()

    hooks = getattr(sb, "startup_hooks", None)
    if hooks is not None:
        hooks.append(remember_loop)


def fired(sb: Sandbox) -> list[dict[str, Any]]:
    return sb.state.table(TABLE).setdefault("fired", [])  # type: ignore[no-any-return]


# -- matching ----------------------------------------------------------------------------------------------------

_FIELDS = {
    "category": "category",
    "operationname": "operationName",
    "resourcetype": "resourceType",
    "resourcegroup": "resourceGroupName",
    "resourcegroupname": "resourceGroupName",
    "resourceid": "resourceId",
    "resourceprovider": "resourceProviderName",
    "status": "status",
    "substatus": "subStatus",
    "level": "level",
    "caller": "caller",
    "correlationid": "correlationId",
    "eventdataid": "eventDataId",
}


def field_value(event: dict[str, Any], name: str) -> str | None:
    key = name.lower()
    if key.startswith("properties."):
        wanted = key.split(".", 1)[1]
        props = event.get("properties") or {}
        return next((str(v) for k, v in props.items() if k.lower() == wanted), None)
    value = event.get(_FIELDS.get(key, name))
    if isinstance(value, dict):
        value = value.get("value")
    return None if value is None else str(value)


def leaf_matches(leaf: dict[str, Any], event: dict[str, Any]) -> bool:
    if leaf.get("anyOf") is not None:
        return any(leaf_matches(sub, event) for sub in leaf["anyOf"])
    actual = field_value(event, str(leaf.get("field") or ""))
    if actual is None:
        return False
    if leaf.get("equals") is not None:
        return actual.lower() == str(leaf["equals"]).lower()
    return any(actual.lower() == str(v).lower() for v in leaf.get("containsAny") or [])


def in_scope(resource_id: str, scopes: list[str]) -> bool:
    rid = resource_id.lower().rstrip("/")
    for scope in scopes:
        s = "/" + scope.lower().strip("/")
        if rid == s or rid.startswith(s + "/"):
            return True
    return False


def matches(rule: dict[str, Any], event: dict[str, Any]) -> bool:
    props = rule["properties"]
    if not props.get("enabled", True) or not in_scope(event["resourceId"], props.get("scopes") or []):
        return False
    return all(leaf_matches(leaf, event) for leaf in props["condition"]["allOf"])


# -- payloads ----------------------------------------------------------------------------------------------------


_CONTEXT_PROPERTIES = ("eventCategory", "entity", "message", "hierarchy")  # what Microsoft's sample carries


def _ms(moment_iso: str) -> str:
    """Azure's alert timestamps: milliseconds and a Z (2025-04-15T11:26:21.386Z)."""
    return moment_iso[:23] + "Z" if len(moment_iso) > 23 else moment_iso


def common_payload(rule: dict[str, Any], event: dict[str, Any], alert_id: str, fired_at: str) -> dict[str, Any]:
    rid = event["resourceId"]
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": alert_id,
                "alertRule": rule["name"],
                "severity": "Sev4",
                "signalType": "Activity Log",
                "monitorCondition": "Fired",
                "monitoringService": "Activity Log - Administrative",
                "alertTargetIDs": [rid.lower()],
                "configurationItems": [rid.rstrip("/").rsplit("/", 1)[-1]],
                "originAlertId": f"{event['eventDataId']}_{new_id().replace('-', '')}",
                "firedDateTime": fired_at,
                "description": rule["properties"].get("description") or "",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": {
                "authorization": copy.deepcopy(event["authorization"]),
                "channels": event["channels"],
                "claims": json.dumps(event["claims"]),
                "caller": event["caller"],
                "correlationId": event["correlationId"],
                "eventSource": event["category"]["value"],
                "eventTimestamp": _ms(event["eventTimestamp"]),
                "eventDataId": event["eventDataId"],
                "level": event["level"],
                "operationName": event["operationName"]["value"],
                "operationId": event["operationId"],
                "properties": {k: event["properties"][k] for k in _CONTEXT_PROPERTIES if k in event["properties"]},
                "status": event["status"]["value"],
                "subStatus": event["subStatus"]["value"],
                "submissionTimestamp": _ms(event["submissionTimestamp"]),
                "Activity Log Event Description": event.get("description") or "",
            },
        },
    }


def legacy_payload(event: dict[str, Any], webhook_properties: dict[str, Any]) -> dict[str, Any]:
    """The activity-log alert webhook schema used when `useCommonAlertSchema` is false."""
    return {
        "schemaId": "Microsoft.Insights/activityLogs",
        "data": {
            "status": "Activated",
            "context": {
                "activityLog": {
                    "authorization": copy.deepcopy(event["authorization"]),
                    "channels": event["channels"],
                    "claims": json.dumps(event["claims"]),
                    "caller": event["caller"],
                    "correlationId": event["correlationId"],
                    "description": event.get("description") or "",
                    "eventSource": event["category"]["value"],
                    "eventTimestamp": event["eventTimestamp"],
                    "eventDataId": event["eventDataId"],
                    "level": event["level"],
                    "operationName": event["operationName"]["value"],
                    "operationId": event["operationId"],
                    "properties": dict(event["properties"]),
                    "resourceId": event["resourceId"],
                    "resourceGroupName": event["resourceGroupName"],
                    "resourceProviderName": event["resourceProviderName"]["value"],
                    "resourceType": event["resourceType"]["value"],
                    "status": event["status"]["value"],
                    "subStatus": event["subStatus"]["value"],
                    "subscriptionId": event["subscriptionId"],
                    "submissionTimestamp": event["submissionTimestamp"],
                }
            },
            "properties": dict(webhook_properties),
        },
    }


# -- firing ------------------------------------------------------------------------------------------------------


def evaluate(sb: Sandbox, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Fire every enabled rule the event matches; returns the alert records (deliveries complete later)."""
    if str(event.get("category", {}).get("value", "")).lower() != "administrative":
        return []
    sub = f"/subscriptions/{event['subscriptionId']}"
    out = []
    for rule in list(sb.state.of_type(RULE_TYPE, under=sub)):
        if matches(rule, event):
            out.append(fire(sb, rule, event))
    return out


def fire(sb: Sandbox, rule: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    state = sb.state
    fired_at = _ms(state.clock.iso())
    alert_id = f"/subscriptions/{event['subscriptionId']}/providers/Microsoft.AlertsManagement/alerts/{new_id()}"
    alert: dict[str, Any] = {
        "alertId": alert_id,
        "alertRule": rule["name"],
        "alertRuleId": rule["id"],
        "firedDateTime": fired_at,
        "eventDataId": event["eventDataId"],
        "operationName": event["operationName"]["value"],
        "resourceId": event["resourceId"],
        "deliveries": [],
    }
    fired(sb).append(alert)
    common = common_payload(rule, event, alert_id, fired_at)
    for ref in rule["properties"].get("actions", {}).get("actionGroups") or []:
        group = state.get(ref["actionGroupId"])
        base = {"actionGroupId": ref["actionGroupId"]}
        if group is None:
            alert["deliveries"].append({**base, "status": "Skipped", "reason": "the action group does not exist"})
            continue
        if not group["properties"].get("enabled", True):
            alert["deliveries"].append({**base, "status": "Skipped", "reason": "the action group is disabled"})
            continue
        for kind, receivers in group["properties"].items():
            if not kind.endswith("Receivers") or kind == "webhookReceivers":
                continue
            for receiver in receivers:
                alert["deliveries"].append(
                    {**base, "receiver": receiver["name"], "kind": kind, "status": "NotSent", "reason": "sandbox"}
                )
        for receiver in group["properties"].get("webhookReceivers") or []:
            payload = copy.deepcopy(common)
            custom = ref.get("webhookProperties") or {}
            if receiver.get("useCommonAlertSchema"):
                if custom:
                    payload["data"]["customProperties"] = dict(custom)
            else:
                payload = legacy_payload(event, custom)
            delivery = {
                **base,
                "receiver": receiver["name"],
                "kind": "webhookReceivers",
                "serviceUri": receiver["serviceUri"],
                "schema": payload["schemaId"],
                "status": "Pending",
                "attempts": [],
                "payload": payload,
            }
            alert["deliveries"].append(delivery)
            _schedule(sb, delivery)
    return alert


def _schedule(sb: Sandbox, delivery: dict[str, Any]) -> None:
    rt = runtime(sb)
    until = sb.state.table(TABLE).setdefault("suppressed", {}).get(delivery["serviceUri"])
    if until and sb.state.clock.iso() < until:
        delivery.update(status="Suppressed", reason=f"the endpoint failed every retry; calls resume at {until}")
        return
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    task: Any
    if loop is not None:
        task = loop.create_task(_deliver(sb, delivery))
    else:  # an in-process call from another thread (scenarios, tests): hand it to the server's loop
        server_loop = rt.loop or getattr(sb.listeners, "_loop", None)
        if server_loop is None or not server_loop.is_running():
            delivery.update(status="NotSent", reason="the sandbox's server is not running")
            return
        task = asyncio.run_coroutine_threadsafe(_deliver(sb, delivery), server_loop)
    rt.tasks.add(task)
    task.add_done_callback(rt.tasks.discard)


def _ssl_context(sb: Sandbox) -> ssl.SSLContext:
    """System trust plus the sandbox's own CA, so webhooks may point at the sandbox's `/_receivers/...`."""
    rt = runtime(sb)
    if rt.ssl is None:
        context = ssl.create_default_context()
        ca = getattr(sb, "ca_path", None)
        if ca is None:  # older runners: the CA sits next to the server certificate
            certfile = getattr(getattr(getattr(sb.listeners, "_server", None), "config", None), "ssl_certfile", None)
            ca = Path(certfile).parent / "ca.pem" if certfile else None
        if ca is not None and Path(ca).exists():
            context.load_verify_locations(cafile=str(ca))
        rt.ssl = context
    return rt.ssl


async def _deliver(sb: Sandbox, delivery: dict[str, Any]) -> None:
    rt = runtime(sb)
    retriable = True
    async with httpx.AsyncClient(verify=_ssl_context(sb), timeout=rt.config["timeoutSeconds"]) as client:
        for attempt in range(len(RETRY_DELAYS) + 1):
            record: dict[str, Any] = {"attempt": attempt + 1, "time": sb.state.clock.iso()}
            delivery["attempts"].append(record)
            try:
                response = await client.post(
                    delivery["serviceUri"], json=delivery["payload"], headers={"User-Agent": USER_AGENT}
                )
                record["statusCode"] = response.status_code
                if 200 <= response.status_code < 300:
                    delivery["status"] = "Succeeded"
                    return
                retriable = response.status_code in RETRIABLE
            except httpx.HTTPError as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
                retriable = True
            if not retriable or attempt == len(RETRY_DELAYS):
                break
            await asyncio.sleep(RETRY_DELAYS[attempt] * rt.config["retryDelayScale"])
    delivery["status"] = "Failed"
    if retriable:
        until = iso(sb.state.clock.now() + SUPPRESSION)
        sb.state.table(TABLE).setdefault("suppressed", {})[delivery["serviceUri"]] = until


def configure(sb: Sandbox, changes: dict[str, Any]) -> dict[str, float]:
    config = runtime(sb).config
    unknown = set(changes) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown alert settings {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
    for key, value in changes.items():
        config[key] = float(value)
    return dict(config)
