"""Event Grid events, pure: ARM operations and Key Vault key changes as the events Azure publishes, the handshake
event, the CloudEvents form, dead-letter records, and event subscription filters.

Shapes follow Microsoft's examples (tests/data/azure-specs/examples/eventgrid/): `resource_*_success.json` for the
subscription's system topic (`Microsoft.Resources.*`, dataVersion "2"), and `secret_new_version_created.json` (spec)
and its docs twin for Key Vault (dataVersion "1"). Key Vault data keys are PascalCase (`Id`, `VaultName`, ...,
`NBF`, `EXP` as strings), as both examples and Azure's deliveries have them; the data-plane OpenAPI schema's
camelCase with numeric nbf/exp is not what arrives. The docs example's stray spaces (`"ObjectName "`,
`" ee05..."`) are typos and are not copied.

Resource events carry `data.httpRequest` on every kind: the delete and action examples have it and Azure sends it on
writes too (the write example omits it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

RESOURCES = "Microsoft.Resources"
KEYVAULT = "Microsoft.KeyVault"
RESOURCE_EVENT_TYPES = tuple(
    f"{RESOURCES}.Resource{kind}{outcome}"
    for kind in ("Write", "Delete", "Action")
    for outcome in ("Success", "Failure", "Cancel")
)
KEY_EVENT_TYPES = (f"{KEYVAULT}.KeyNewVersionCreated", f"{KEYVAULT}.KeyNearExpiry", f"{KEYVAULT}.KeyExpired")
VALIDATION_EVENT_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"

# Azure AD v1 token claims as ARM writes them into events and the activity log: the WS-Fed claim URIs.
_CLAIM_URIS = {
    "oid": "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "sub": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "tid": "http://schemas.microsoft.com/identity/claims/tenantid",
    "scp": "http://schemas.microsoft.com/identity/claims/scope",
    "idp": "http://schemas.microsoft.com/identity/claims/identityprovider",
    "amr": "http://schemas.microsoft.com/claims/authnmethodsreferences",
    "acr": "http://schemas.microsoft.com/claims/authnclassreference",
    "upn": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "unique_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "given_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "family_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "deviceid": "http://schemas.microsoft.com/2012/01/devicecontext/claims/identifier",
}
_OUTCOMES = {"succeeded": "Success", "failed": "Failure", "canceled": "Cancel", "cancelled": "Cancel"}


def resource_event_type(http_method: str, status: str) -> str:
    """`Microsoft.Resources.Resource{Write|Delete|Action}{Success|Failure|Cancel}` for an operation."""
    method = http_method.upper()
    kind = "Delete" if method == "DELETE" else "Action" if method == "POST" else "Write"
    return f"{RESOURCES}.Resource{kind}{_OUTCOMES.get(status.lower(), 'Failure')}"


def subscription_of(resource_id: str) -> str | None:
    parts = resource_id.split("/")
    return parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else None


def event_claims(claims: Mapping[str, Any], issued_at: int | None = None) -> dict[str, str]:
    """Token claims as events show them: claim URIs for the WS-Fed claims, every value a string (lists joined with
    commas). `issued_at` replaces a zero `iat` (moving nbf/exp with it)."""
    shift = 0
    if issued_at is not None and not claims.get("iat"):
        shift = issued_at - int(claims.get("iat") or 0)
    out: dict[str, str] = {}
    for key, value in claims.items():
        if key in ("iat", "nbf", "exp") and isinstance(value, int | float):
            value = int(value) + shift
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        out[_CLAIM_URIS.get(key, key)] = text
    return out


def evidence(assignment: Mapping[str, Any] | None, role_name: str | None) -> dict[str, str] | None:
    """`authorization.evidence` from the role assignment that granted the action (ids without dashes, as ARM
    writes them)."""
    if assignment is None:
        return None
    props = assignment.get("properties", assignment)
    return {
        "role": role_name or "",
        "roleAssignmentScope": props["scope"],
        "roleAssignmentId": str(assignment.get("name") or assignment["id"].rsplit("/", 1)[-1]).replace("-", ""),
        "roleDefinitionId": props["roleDefinitionId"].rstrip("/").rsplit("/", 1)[-1].replace("-", ""),
        "principalId": props["principalId"].replace("-", ""),
        "principalType": props.get("principalType") or "ServicePrincipal",
    }


def resource_event(
    *,
    operation_name: str,
    resource_id: str,
    status: str,
    http_method: str,
    url: str,
    claims: Mapping[str, Any],
    correlation_id: str,
    time: str,
    tenant_id: str,
    event_id: str,
    client_request_id: str,
    topic: str | None = None,
    evidence: Mapping[str, str] | None = None,
    client_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """One `Microsoft.Resources.*` event in Event Grid schema (topic: the subscription unless given)."""
    subscription = subscription_of(resource_id) or ""
    authorization: dict[str, Any] = {"scope": resource_id, "action": operation_name}
    if evidence is not None:
        authorization["evidence"] = dict(evidence)
    issued = int(datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp()) - 300
    return {
        "subject": resource_id,
        "eventType": resource_event_type(http_method, status),
        "eventTime": time,
        "id": event_id,
        "data": {
            "authorization": authorization,
            "claims": event_claims(claims, issued),
            "correlationId": correlation_id,
            "httpRequest": {
                "clientRequestId": client_request_id,
                "clientIpAddress": client_ip,
                "method": http_method.upper(),
                "url": url,
            },
            "resourceProvider": operation_name.split("/", 1)[0],
            "resourceUri": resource_id,
            "operationName": operation_name,
            "status": status,
            "subscriptionId": subscription,
            "tenantId": tenant_id,
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": topic if topic is not None else f"/subscriptions/{subscription}",
    }


def key_event(
    event_type: str,
    *,
    vault_id: str,
    vault_name: str,
    key_id: str,
    key_name: str,
    version: str,
    nbf: int | None,
    exp: int | None,
    time: str,
    event_id: str,
) -> dict[str, Any]:
    """A Key Vault key event (`KeyNewVersionCreated`, `KeyNearExpiry`, `KeyExpired`) in Event Grid schema."""
    return {
        "id": event_id,
        "topic": vault_id,
        "subject": key_name,
        "eventType": event_type if "." in event_type else f"{KEYVAULT}.{event_type}",
        "eventTime": time,
        "data": {
            "Id": key_id,
            "VaultName": vault_name,
            "ObjectType": "Key",
            "ObjectName": key_name,
            "Version": version,
            "NBF": None if nbf is None else str(int(nbf)),
            "EXP": None if exp is None else str(int(exp)),
        },
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def validation_event(*, topic: str, code: str, validation_url: str, time: str, event_id: str) -> dict[str, Any]:
    """The SubscriptionValidationEvent POSTed (in an array) when a webhook subscription is created."""
    return {
        "id": event_id,
        "topic": topic,
        "subject": "",
        "data": {"validationCode": code, "validationUrl": validation_url},
        "eventType": VALIDATION_EVENT_TYPE,
        "eventTime": time,
        "metadataVersion": "1",
        "dataVersion": "1",
    }


def to_cloud_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The same event in CloudEvents 1.0 JSON (eventDeliverySchema CloudEventSchemaV1_0)."""
    return {
        "id": event["id"],
        "source": event["topic"],
        "specversion": "1.0",
        "type": event["eventType"],
        "subject": event["subject"],
        "time": event["eventTime"],
        "data": event["data"],
    }


def dead_letter_record(
    event: Mapping[str, Any],
    *,
    reason: str,
    attempts: int,
    last_outcome: str,
    publish_time: str,
    last_attempt_time: str,
) -> dict[str, Any]:
    """A dead-lettered event as Event Grid writes it to the blob: the event plus the delivery facts."""
    return {
        **event,
        "deadLetterReason": reason,
        "deliveryAttempts": attempts,
        "lastDeliveryOutcome": last_outcome,
        "publishTime": publish_time,
        "lastDeliveryAttemptTime": last_attempt_time,
    }


# -- filters -------------------------------------------------------------------------------------------------------

STRING_OPERATORS = (
    "StringIn",
    "StringNotIn",
    "StringBeginsWith",
    "StringNotBeginsWith",
    "StringEndsWith",
    "StringNotEndsWith",
    "StringContains",
    "StringNotContains",
)
NUMBER_OPERATORS = (
    "NumberIn",
    "NumberNotIn",
    "NumberLessThan",
    "NumberGreaterThan",
    "NumberLessThanOrEquals",
    "NumberGreaterThanOrEquals",
)
OTHER_OPERATORS = ("BoolEquals", "IsNullOrUndefined", "IsNotNull")
OPERATORS = STRING_OPERATORS + NUMBER_OPERATORS + OTHER_OPERATORS
_MISSING = object()


def lookup(event: Mapping[str, Any], key: str) -> Any:
    """The value an advanced filter's key names: `subject`, `eventType`, `data.a.b`... (missing: a sentinel)."""
    value: Any = event
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return _MISSING
        match = next((k for k in value if k.lower() == part.lower()), None)
        if match is None:
            return _MISSING
        value = value[match]
    return value


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(v).lower() for v in items if v is not None and v is not _MISSING and not isinstance(v, Mapping)]


def advanced_match(flt: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """One advanced filter. String comparisons ignore case; an array value matches when any element does."""
    op = flt.get("operatorType", "")
    value = lookup(event, str(flt.get("key", "")))
    if op == "IsNullOrUndefined":
        return value is _MISSING or value is None
    if op == "IsNotNull":
        return value is not _MISSING and value is not None
    if value is _MISSING:
        return op in ("StringNotIn", "StringNotBeginsWith", "StringNotEndsWith", "StringNotContains", "NumberNotIn")
    if op == "BoolEquals":
        return value is flt.get("value") or (isinstance(value, list) and flt.get("value") in value)
    if op.startswith("Number"):
        return _number_match(op, flt, value)
    wanted = [str(v).lower() for v in flt.get("values") or []]
    have = _strings(value)
    negate = op.startswith("StringNot")
    test = {
        "In": lambda h: h in wanted,
        "BeginsWith": lambda h: any(h.startswith(w) for w in wanted),
        "EndsWith": lambda h: any(h.endswith(w) for w in wanted),
        "Contains": lambda h: any(w in h for w in wanted),
    }.get(op.removeprefix("StringNot").removeprefix("String"))
    if test is None:
        raise ValueError(f"unknown advanced filter operator {op!r}; valid: {list(OPERATORS)}")
    hit = any(test(h) for h in have)
    return not hit if negate else hit


def _number_match(op: str, flt: Mapping[str, Any], value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    numbers = [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]
    if op in ("NumberIn", "NumberNotIn"):
        wanted = {float(v) for v in flt.get("values") or []}
        hit = any(n in wanted for n in numbers)
        return not hit if op == "NumberNotIn" else hit
    bound = float(flt.get("value", 0))
    compare = {
        "NumberLessThan": lambda n: n < bound,
        "NumberGreaterThan": lambda n: n > bound,
        "NumberLessThanOrEquals": lambda n: n <= bound,
        "NumberGreaterThanOrEquals": lambda n: n >= bound,
    }[op]
    return any(compare(n) for n in numbers)


def matches(flt: Mapping[str, Any] | None, event: Mapping[str, Any]) -> bool:
    """Whether an event subscription's `filter` lets an Event Grid schema event through."""
    if not flt:
        return True
    included = flt.get("includedEventTypes")
    if included and event["eventType"].lower() not in {t.lower() for t in included}:
        return False
    subject = str(event.get("subject", ""))
    begins, ends = flt.get("subjectBeginsWith") or "", flt.get("subjectEndsWith") or ""
    if not flt.get("isSubjectCaseSensitive"):
        subject, begins, ends = subject.lower(), begins.lower(), ends.lower()
    if not subject.startswith(begins) or not subject.endswith(ends):
        return False
    return all(advanced_match(f, event) for f in flt.get("advancedFilters") or [])


def batches(
    events: Iterable[Mapping[str, Any]], max_events: int, max_kilobytes: int, size: Any = None
) -> list[list[Mapping[str, Any]]]:
    """Split events into delivery batches: at most `max_events` each and, past the first event, at most
    `max_kilobytes` of JSON (an event larger than that still goes alone)."""
    measure = size or (lambda e: len(json.dumps(e)))
    out: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    used = 0
    for event in events:
        n = measure(event)
        if current and (len(current) >= max_events or used + n > max_kilobytes * 1024):
            out.append(current)
            current, used = [], 0
        current.append(event)
        used += n
    if current:
        out.append(current)
    return out
