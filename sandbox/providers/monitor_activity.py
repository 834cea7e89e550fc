"""The subscription's activity log (`Microsoft.Insights/eventtypes/management/values`, api 2015-04-01).

Every Operation the ARM core records (a write, delete or action; succeeded or failed) becomes one `EndRequest` event
in the Administrative category, shaped like Azure's EventData, timed by the sandbox clock. Azure also writes a
`BeginRequest` (status Started/Accepted) event per long-running write; the sandbox writes only the final one.

Listing takes Azure's restricted `$filter`: `eventTimestamp ge '<t>' [and eventTimestamp le '<t>'] [and one of
resourceGroupName | resourceUri | resourceProvider | correlationId | caller | status eq '<v>']`; `$select` trims the
fields. Newest first, 90 days kept, paged with `nextLink` ($skiptoken); the first page pins the window's end so later
pages do not shift as new events arrive.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.arm import ArmError, Call, ResourceType, register
from sandbox.state import Operation, State, iso, new_id

ACTIVITY_API = ("2015-04-01",)
TABLE = "monitor.activityLog"
RETENTION = timedelta(days=90)

# What Azure's activity log calls each HTTP status (subStatus.value / properties.statusCode).
STATUS_NAMES = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "NoContent",
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    412: "PreconditionFailed",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
# The activity log writes the token's claims under their long WS-Federation names, every value a string.
_CLAIM_NAMES = {
    "oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "sub": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "tid": "http://schemas.microsoft.com/identity/claims/tenantid",
    "idp": "http://schemas.microsoft.com/identity/claims/identityprovider",
    "scp": "http://schemas.microsoft.com/identity/claims/scope",
    "upn": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "amr": "http://schemas.microsoft.com/claims/authnmethodsreferences",
    "name": "name",
}
SELECTABLE = (
    "authorization",
    "caller",
    "category",
    "channels",
    "claims",
    "correlationId",
    "description",
    "eventDataId",
    "eventName",
    "eventTimestamp",
    "httpRequest",
    "id",
    "level",
    "operationId",
    "operationName",
    "properties",
    "resourceGroupName",
    "resourceId",
    "resourceProviderName",
    "resourceType",
    "status",
    "subStatus",
    "submissionTimestamp",
    "subscriptionId",
    "tenantId",
)
_FILTER_FIELDS = {
    "resourcegroupname": "resourceGroupName",
    "resourceuri": "resourceId",
    "resourceid": "resourceId",
    "resourceprovider": "resourceProviderName",
    "correlationid": "correlationId",
    "caller": "caller",
    "status": "status",
}
_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ge|le)\s+'([^']*)'\s*$", re.IGNORECASE)


def _localized(value: str, localized: str | None = None) -> dict[str, str]:
    return {"value": value, "localizedValue": localized if localized is not None else value}


def _ticks(moment: datetime) -> int:
    """.NET ticks (100 ns since 0001-01-01), which Azure puts in an event's id."""
    delta = moment - datetime(1, 1, 1, tzinfo=UTC)
    return delta.days * 864_000_000_000 + delta.seconds * 10_000_000 + delta.microseconds * 10


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _claims(claims: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in claims.items():
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        out[_CLAIM_NAMES.get(key, key)] = text
    return out


def _id_parts(resource_id: str) -> dict[str, str]:
    """Subscription, group, provider, type and name of a resource id (what the event's fields are made from)."""
    segs = [s for s in resource_id.split("/") if s]
    out = {"subscription": "", "group": "", "provider": "", "type": "", "name": segs[-1] if segs else ""}
    low = [s.lower() for s in segs]
    if "subscriptions" in low:
        out["subscription"] = segs[low.index("subscriptions") + 1]
    if "resourcegroups" in low and low.index("resourcegroups") + 1 < len(segs):
        out["group"] = segs[low.index("resourcegroups") + 1]
    if "providers" in low:
        at = len(low) - 1 - low[::-1].index("providers")  # the last provider: an extension resource's own type
        rest = segs[at + 1 :]
        if rest:
            out["provider"] = rest[0]
            out["type"] = "/".join([rest[0], *rest[1::2]])
    elif out["group"]:
        out["provider"], out["type"] = "Microsoft.Resources", "Microsoft.Resources/subscriptions/resourceGroups"
    elif out["subscription"]:
        out["provider"], out["type"] = "Microsoft.Resources", "Microsoft.Resources/subscriptions"
    return out


def caller_of(principal: dict[str, Any]) -> str:
    return str(principal.get("upn") or principal.get("object_id") or "")


def event_for(state: State, op: Operation) -> dict[str, Any]:
    """The activity-log event (EventData) for one Operation."""
    moment = parse_time(op.time)
    parts = _id_parts(op.resource_id)
    failed = op.status.lower() != "succeeded"
    status_name = STATUS_NAMES.get(op.status_code, str(op.status_code))
    event_id = new_id()
    hierarchy = f"{state.tenant_id}/{parts['subscription']}"
    props: dict[str, str] = {
        "statusCode": status_name,
        "serviceRequestId": new_id(),
        "eventCategory": "Administrative",
        "entity": op.resource_id,
        "message": op.operation_name,
        "hierarchy": hierarchy,
    }
    error = getattr(op, "error", None)  # failure records may carry the error answered
    if error:
        props["statusMessage"] = json.dumps({"error": error}) if isinstance(error, dict) else str(error)
    authorization = dict(op.authorization) if op.authorization else {}
    authorization.setdefault("action", op.operation_name)
    authorization.setdefault("scope", op.resource_id)
    return {
        "authorization": authorization,
        "caller": caller_of(op.principal),
        "channels": "Operation",
        "claims": _claims(op.claims),
        "correlationId": op.correlation_id,
        "description": "",
        "eventDataId": event_id,
        "eventName": _localized("EndRequest", "End request"),
        "category": _localized("Administrative"),
        "eventTimestamp": iso(moment),
        "httpRequest": {"clientRequestId": new_id(), "clientIpAddress": "127.0.0.1", "method": op.http_method},
        "id": f"{op.resource_id}/events/{event_id}/ticks/{_ticks(moment)}",
        "level": "Error" if failed else "Informational",
        "resourceGroupName": parts["group"],
        "resourceProviderName": _localized(parts["provider"]),
        "resourceId": op.resource_id,
        "resourceType": _localized(parts["type"]),
        "operationId": new_id(),
        "operationName": _localized(op.operation_name),
        "properties": props,
        "status": _localized("Failed" if failed else "Succeeded"),
        "subStatus": _localized(status_name, f"{status_name} (HTTP Status Code: {op.status_code})"),
        "submissionTimestamp": state.clock.iso(),
        "subscriptionId": parts["subscription"],
        "tenantId": state.tenant_id,
        "relatedEvents": [],
    }


def record(state: State, op: Operation) -> dict[str, Any]:
    event = event_for(state, op)
    state.table(TABLE).setdefault("events", []).append(event)
    return event


def events(state: State) -> list[dict[str, Any]]:
    return list(state.table(TABLE).get("events", []))


def _bad_filter(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message)


def parse_filter(text: str | None) -> tuple[datetime, datetime | None, list[tuple[str, str]]]:
    """(start, end or None, [(event field, value)]) from an activity-log $filter; 400 on anything else."""
    if not text or not text.strip():
        raise _bad_filter(
            "The $filter query parameter is required and must contain at least the start of the time range: "
            "$filter=eventTimestamp ge '<start>'."
        )
    start = end = None
    fields: list[tuple[str, str]] = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(clause)
        if m is None:
            raise _bad_filter(f"The $filter clause '{clause.strip()}' is not valid.")
        name, op, value = m.group(1).lower(), m.group(2).lower(), m.group(3)
        if name == "eventtimestamp" and op in ("ge", "le"):
            try:
                moment = parse_time(value)
            except ValueError as exc:
                raise _bad_filter(f"The value '{value}' of eventTimestamp is not a valid date/time.") from exc
            if op == "ge":
                start = moment
            else:
                end = moment
        elif name in _FILTER_FIELDS and op == "eq":
            fields.append((_FILTER_FIELDS[name], value))
        else:
            raise _bad_filter(f"The $filter field '{m.group(1)}' with operator '{m.group(2)}' is not supported.")
    if start is None:
        raise _bad_filter("The $filter must contain the start of the time range: eventTimestamp ge '<start>'.")
    if end is not None and end < start:
        raise _bad_filter("The end of the time range is before its start.")
    return start, end, fields


def _field(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    return str(value.get("value", "")) if isinstance(value, dict) else str(value or "")


def _select(event: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return event
    wanted = {s.strip().lower() for s in select.split(",") if s.strip()}
    unknown = wanted - {s.lower() for s in SELECTABLE}
    if unknown:
        raise _bad_filter(f"The $select property '{sorted(unknown)[0]}' is not supported.")
    return {k: v for k, v in event.items() if k.lower() in wanted}


@register
class ActivityLog(ResourceType):
    """GET /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values."""

    type = "Microsoft.Insights/eventtypes/values"
    api_versions = ACTIVITY_API

    def parent_exists(self, call: Call) -> bool:
        return call.path.parent.lower().endswith("/eventtypes/management")

    def list(self, call: Call) -> list[dict[str, Any]]:
        if not self.parent_exists(call):
            raise ArmError(404, "NotFound", f"The event type '{call.path.parent.rsplit('/', 1)[-1]}' is not known.")
        start, end, fields = parse_filter(call.query.get("$filter"))
        if end is None:  # pin the window's end so that $skiptoken offsets stay valid on later pages
            end = call.state.clock.now()
            call.query["$filter"] = f"{call.query['$filter']} and eventTimestamp le '{iso(end)}'"
        oldest = call.state.clock.now() - RETENTION
        sub = (call.path.subscription or "").lower()
        out = []
        for event in reversed(events(call.state)):
            moment = parse_time(event["eventTimestamp"])
            if moment < start or moment > end or moment < oldest or event["subscriptionId"].lower() != sub:
                continue
            if fields and not all(self._matches(event, name, value) for name, value in fields):
                continue
            out.append(_select(event, call.query.get("$select")))
        return out

    @staticmethod
    def _matches(event: dict[str, Any], name: str, value: str) -> bool:
        return _field(event, name).lower() == value.lower()
