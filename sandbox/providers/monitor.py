"""Azure Monitor alerting: activity-log alert rules (`Microsoft.Insights/activityLogAlerts`) and action groups
(`Microsoft.Insights/actionGroups`), plus the hook that turns every ARM operation into an activity-log event
(monitor_activity.py) and fires the rules it matches (sandbox/alerts.py).

Shapes follow Microsoft's examples (ActivityLogAlertRule_CreateOrUpdate.json 2020-10-01, getActionGroup.json
2023-01-01) and a recorded real answer: ids spell the provider `microsoft.insights`, types are `Microsoft.Insights/
ActivityLogAlerts` / `ActionGroups`, location `Global`, and the rule's scopes and conditions come back as sent.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from sandbox import alerts
from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers import monitor_activity
from sandbox.state import Operation

if TYPE_CHECKING:
    from sandbox.server import Sandbox

ALERT_API = ("2017-04-01", "2020-10-01")
ACTION_GROUP_API = ("2021-09-01", "2022-06-01", "2023-01-01")
MAX_ACTION_GROUPS = 5
SHORT_NAME_MAX = 12
_RECEIVER_KINDS = (
    "emailReceivers",
    "smsReceivers",
    "webhookReceivers",
    "itsmReceivers",
    "azureAppPushReceivers",
    "automationRunbookReceivers",
    "voiceReceivers",
    "logicAppReceivers",
    "azureFunctionReceivers",
    "armRoleReceivers",
    "eventHubReceivers",
)
_ACTION_GROUP_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/microsoft\.insights/actionGroups/[^/]+$", re.IGNORECASE
)


def install(sb: Sandbox) -> None:
    def on_operation(op: Operation) -> None:
        event = monitor_activity.record(sb.state, op)
        alerts.evaluate(sb, event)

    sb.state.on_operation(on_operation)
    alerts.install(sb)


def _bad(message: str, code: str = "BadRequest") -> ArmError:
    return ArmError(400, code, message)


def _body(call: Call) -> dict[str, Any]:
    return call.body if isinstance(call.body, dict) else {}


def _props(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _bad("The request body must contain 'properties'.", "InvalidRequestContent")
    return props


def _item_id(call: Call, kind: str) -> str:
    """Azure spells the provider in lower case in these ids (`.../providers/microsoft.insights/...`)."""
    return (
        f"/subscriptions/{call.path.subscription}/resourceGroups/{call.path.resource_group}/providers/"
        f"microsoft.insights/{kind}/{call.path.name}"
    )


def _location(body: dict[str, Any], what: str) -> str:
    location = str(body.get("location") or "")
    if not location:
        raise _bad("The location property is required for this definition.", "LocationRequired")
    if location.replace(" ", "").lower() != "global":
        raise _bad(f"The location '{location}' is not valid for {what}: the only supported location is 'Global'.")
    return "Global"


def _patch(call: Call, existing: dict[str, Any]) -> Answer:
    """PATCH of a rule or group: `tags` and `properties.enabled` only (AlertRulePatchObject, ActionGroupPatchBody)."""
    body = _body(call)
    stored = copy.deepcopy(existing)
    if "tags" in body:
        stored["tags"] = body["tags"] or {}
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    if "enabled" in props:
        if not isinstance(props["enabled"], bool):
            raise _bad("The property 'enabled' must be a boolean.")
        stored["properties"]["enabled"] = props["enabled"]
    call.state.put(stored)
    return Answer(200, copy.deepcopy(stored))


# -- activity-log alert rules ----------------------------------------------------------------------------------


def _check_leaf(leaf: Any, where: str, nested: bool = False) -> None:
    if not isinstance(leaf, dict):
        raise _bad(f"The condition '{where}' must be an object.")
    if "anyOf" in leaf and leaf["anyOf"] is not None:
        if nested:
            raise _bad(f"The condition '{where}' nests 'anyOf' inside 'anyOf', which is not supported.")
        if not isinstance(leaf["anyOf"], list) or not leaf["anyOf"]:
            raise _bad(f"The condition '{where}.anyOf' must be a non-empty array.")
        for i, sub in enumerate(leaf["anyOf"]):
            _check_leaf(sub, f"{where}.anyOf[{i}]", nested=True)
        return
    if not leaf.get("field"):
        raise _bad(f"The condition '{where}' must have a 'field'.")
    has_equals = leaf.get("equals") is not None
    has_any = leaf.get("containsAny") is not None
    if has_equals == has_any:
        raise _bad(f"The condition '{where}' must have exactly one of 'equals' and 'containsAny'.")
    if has_any and (not isinstance(leaf["containsAny"], list) or not leaf["containsAny"]):
        raise _bad(f"The condition '{where}.containsAny' must be a non-empty array of strings.")


def _check_rule(props: dict[str, Any]) -> None:
    scopes = props.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        raise _bad("The activity log alert must have at least one scope.")
    for scope in scopes:
        if not isinstance(scope, str) or not scope.strip("/").lower().startswith("subscriptions/"):
            raise _bad(f"The scope '{scope}' is not a subscription, resource group or resource id.")
    condition = props.get("condition")
    all_of = condition.get("allOf") if isinstance(condition, dict) else None
    if not isinstance(all_of, list) or not all_of:
        raise _bad("The activity log alert condition must have a non-empty 'allOf'.")
    for i, leaf in enumerate(all_of):
        _check_leaf(leaf, f"allOf[{i}]")
    categories = [leaf for leaf in all_of if str(leaf.get("field") or "").lower() == "category"]
    if len(categories) != 1:
        raise _bad("The activity log alert condition must contain exactly one condition on the field 'category'.")
    actions = props.get("actions")
    groups = (actions or {}).get("actionGroups") if isinstance(actions, dict) else None
    if actions is not None and not isinstance(groups, list | type(None)):
        raise _bad("The property 'actions.actionGroups' must be an array.")
    if groups and len(groups) > MAX_ACTION_GROUPS:
        raise _bad(f"An activity log alert can have at most {MAX_ACTION_GROUPS} action groups.")
    for group in groups or []:
        gid = group.get("actionGroupId") if isinstance(group, dict) else None
        if not isinstance(gid, str) or not _ACTION_GROUP_ID.match(gid):
            raise _bad(f"The action group id '{gid}' is not a valid Microsoft.Insights/actionGroups resource id.")
    if "enabled" in props and not isinstance(props["enabled"], bool):
        raise _bad("The property 'enabled' must be a boolean.")


@register
class ActivityLogAlerts(ResourceType):
    type = "Microsoft.Insights/activityLogAlerts"
    api_versions = ALERT_API

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        body = _body(call)
        location = _location(body, "an activity log alert")
        props = _props(body)
        _check_rule(props)
        groups = ((props.get("actions") or {}).get("actionGroups")) or []
        stored = {
            "id": existing["id"] if existing else _item_id(call, "activityLogAlerts"),
            "type": "Microsoft.Insights/ActivityLogAlerts",
            "name": existing["name"] if existing else call.path.name,
            "location": location,
            "tags": body.get("tags") or {},
            "properties": {
                "scopes": list(props["scopes"]),
                "condition": {"allOf": copy.deepcopy(props["condition"]["allOf"])},
                "actions": {
                    "actionGroups": [
                        {"actionGroupId": g["actionGroupId"], "webhookProperties": g.get("webhookProperties") or {}}
                        for g in groups
                    ]
                },
                "enabled": props.get("enabled", True),
                "description": props.get("description"),
            },
        }
        call.state.put(stored)
        return Answer(200 if existing else 201, copy.deepcopy(stored))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        return _patch(call, existing)


# -- action groups ---------------------------------------------------------------------------------------------


def _receivers(props: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    names: set[str] = set()
    for kind in _RECEIVER_KINDS:
        given = props.get(kind) or []
        if not isinstance(given, list):
            raise _bad(f"The property '{kind}' must be an array.")
        items = []
        for receiver in given:
            if not isinstance(receiver, dict) or not receiver.get("name"):
                raise _bad(f"Every entry of '{kind}' must have a 'name'.")
            key = str(receiver["name"]).lower()
            if key in names:
                raise _bad(f"The receiver name '{receiver['name']}' is used more than once in the action group.")
            names.add(key)
            items.append(_receiver(kind, dict(receiver)))
        out[kind] = items
    return out


def _receiver(kind: str, receiver: dict[str, Any]) -> dict[str, Any]:
    if kind == "webhookReceivers":
        uri = str(receiver.get("serviceUri") or "")
        parsed = urlparse(uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise _bad(f"The serviceUri '{uri}' of webhook receiver '{receiver['name']}' is not an absolute URL.")
        receiver["useCommonAlertSchema"] = bool(receiver.get("useCommonAlertSchema", False))
        receiver["useAadAuth"] = bool(receiver.get("useAadAuth", False))
    elif kind == "emailReceivers":
        if not receiver.get("emailAddress"):
            raise _bad(f"The email receiver '{receiver['name']}' must have an 'emailAddress'.")
        receiver["useCommonAlertSchema"] = bool(receiver.get("useCommonAlertSchema", False))
        receiver["status"] = None  # read-only: Enabled unless the person opted out
    elif kind == "smsReceivers":
        if not receiver.get("countryCode") or not receiver.get("phoneNumber"):
            raise _bad(f"The SMS receiver '{receiver['name']}' must have a 'countryCode' and a 'phoneNumber'.")
        receiver["status"] = None  # read-only: Enabled unless the person opted out
    return receiver


@register
class ActionGroups(ResourceType):
    type = "Microsoft.Insights/actionGroups"
    api_versions = ACTION_GROUP_API

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        body = _body(call)
        location = _location(body, "an action group")
        props = _props(body)
        short = props.get("groupShortName")
        if not isinstance(short, str) or not short:
            raise _bad("The property 'groupShortName' is required.")
        if len(short) > SHORT_NAME_MAX:
            raise _bad(f"The groupShortName '{short}' is longer than {SHORT_NAME_MAX} characters.")
        if not isinstance(props.get("enabled"), bool):
            raise _bad("The property 'enabled' is required and must be a boolean.")
        old: dict[tuple[str, str], Any] = {}
        if existing is not None:  # an opt-out (SMS STOP, email unsubscribe) survives an update; a PUT cannot set one
            old = {
                (kind, r["name"].lower()): r.get("status")
                for kind in _RECEIVER_KINDS
                for r in existing["properties"].get(kind, [])
            }
        stored = {
            "id": existing["id"] if existing else _item_id(call, "actionGroups"),
            "type": "Microsoft.Insights/ActionGroups",
            "name": existing["name"] if existing else call.path.name,
            "location": location,
            "tags": body.get("tags") or {},
            "properties": {"groupShortName": short, "enabled": props["enabled"], **_receivers(props)},
        }
        for kind in ("emailReceivers", "smsReceivers"):
            for r in stored["properties"][kind]:
                r["status"] = r["status"] or old.get((kind, r["name"].lower())) or "Enabled"
        call.state.put(stored)
        return Answer(200 if existing else 201, copy.deepcopy(stored))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        return _patch(call, existing)
