"""Event Grid events and activity-log alerts, turned into work items or refused with a precise reason. Pure: no I/O.

    batch = parse_eventgrid(body)   # an HTTP delivery (JSON array), one event, or the decoded JSON
    batch.items                     # WorkItem per resource to re-evaluate
    batch.ignored                   # WorkItem with `.reason`: other event or resource types; acknowledged, not queued
    batch.rejected                  # EventRejected per malformed event; the rest of the batch is kept
    batch.validation                # ValidationAnswer for a SubscriptionValidationEvent (`.response` is the reply)
    batch = parse_alert(body)       # common alert schema: one WorkItem per data.essentials.alertTargetIDs entry

Problems with the body as a whole (over 1 MB, not JSON, over 5,000 events, not the common alert schema) raise
EventRejected. A write to a lock, the tags or a diagnostic setting of a resource is a change of that resource: the
extension id `{vault}/providers/Microsoft.Authorization/locks/x` becomes `{vault}`. Nothing here returns or logs a
token or a signed URL: claims are reduced to four identifiers, reasons name fields and never quote values, and the
validation URL only appears with its query string removed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from remediations.changes import Caller
from remediations.errors import EventRejected, redact
from remediations.payload import (
    MAX_BODY_BYTES as MAX_BODY_BYTES,  # re-exported: the limit is part of the contract
)
from remediations.payload import (
    from_epoch,
    get_object,
    get_str,
    get_time,
    kind_of,
    load_json,
)
from remediations.work import SOURCES as SOURCES
from remediations.work import WorkItem

log = logging.getLogger(__name__)

MAX_EVENTS = 5000  # Event Grid's largest batch (maxEventsPerBatch is at most 5,000)
# An activity-log alert fires once per activity-log event; its targets are the resource that event is about (one, in
# every alert we have seen). More than a few is not an alert but a way to make the bot read and record on request.
MAX_ALERT_TARGETS = 20

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
ACTION_SUCCESS = "Microsoft.Resources.ResourceActionSuccess"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
KEY_EVENTS = (
    "Microsoft.KeyVault.KeyNearExpiry",
    "Microsoft.KeyVault.KeyNewVersionCreated",
    "Microsoft.KeyVault.KeyExpired",
)
# A secret's or certificate's expiry (Microsoft Learn, "Azure Key Vault as Event Grid source": SecretNearExpiry /
# CertificateNearExpiry "triggered when the current version ... is about to expire (30 days before)", and the
# *Expired events; data schema azure-rest-api-specs eventgrid Microsoft.KeyVault: id, vaultName, objectType,
# objectName, version, nbf, exp). A hint to re-read the vault: its items are read from ARM, never from the event.
ITEM_EVENTS = {
    "Microsoft.KeyVault.SecretNearExpiry": "secret",
    "Microsoft.KeyVault.SecretExpired": "secret",
    "Microsoft.KeyVault.CertificateNearExpiry": "certificate",
    "Microsoft.KeyVault.CertificateExpired": "certificate",
}
ALERT_SCHEMA = "azureMonitorCommonAlertSchema"
ADMINISTRATIVE = "Activity Log - Administrative"
DEALLOCATE = "microsoft.compute/virtualmachines/deallocate/action"

VAULT = "microsoft.keyvault/vaults"
KEY = "microsoft.keyvault/vaults/keys"
VM = "microsoft.compute/virtualmachines"
WATCHED = frozenset({VAULT, KEY, "microsoft.compute/disks", "microsoft.compute/diskencryptionsets", VM})
# Extension resources whose writes change the resource they sit on.
EXTENSIONS = frozenset(
    {"microsoft.authorization/locks", "microsoft.resources/tags", "microsoft.insights/diagnosticsettings"}
)
# Child resources whose writes change their parent (Azure Disk Encryption is a VM extension).
CHILDREN = frozenset({"microsoft.compute/virtualmachines/extensions"})

_CLAIMS = {
    "upn": ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn"),
    "name": ("name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "unique_name"),
    "appid": ("appid", "azp"),
    "oid": ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid"),
}
# What an ARM id never holds: dot segments (an HTTP client would resolve `rg1/../rg2` to `rg2`, outside the scope the
# prefix check saw), percent-encoding, backslashes, query or fragment marks, white space and control characters.
_UNSAFE_SEGMENT = re.compile(r"[%\\?#\s\x00-\x1f\x7f]")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _without_query(url: str) -> str:
    return url.split("?", 1)[0] + ("?<redacted>" if "?" in url else "")


def _short(text: str, limit: int = 120) -> str:
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ValidationAnswer:
    """The reply to a SubscriptionValidationEvent: answer `response` in the HTTP 200 body. The event's manual
    validation URL carries a code, so only `redacted_url` (no query string, for logs) is kept."""

    code: str = field(repr=False)
    redacted_url: str | None = None

    @property
    def response(self) -> dict[str, str]:
        return {"validationResponse": self.code}


@dataclass(frozen=True)
class Batch:
    """What one delivery yields: work, acknowledged inputs, rejections, and the handshake answer if there was one."""

    items: tuple[WorkItem, ...] = ()
    ignored: tuple[WorkItem, ...] = ()
    rejected: tuple[EventRejected, ...] = ()
    validation: ValidationAnswer | None = None


def parse_eventgrid(body: bytes | str | list[Any] | dict[str, Any]) -> Batch:
    """An Event Grid delivery (Event Grid schema): a JSON array of events, or one event. Never raises for one bad
    event (it lands in `rejected`); raises EventRejected when the body as a whole is unusable."""
    data = load_json(body, "body") if isinstance(body, bytes | bytearray | memoryview | str) else body
    events = data if isinstance(data, list) else [data]
    if isinstance(data, list) and len(data) > MAX_EVENTS:
        raise EventRejected("body", f"{len(data)} events in one delivery; at most {MAX_EVENTS} are accepted")
    items: list[WorkItem] = []
    ignored: list[WorkItem] = []
    rejected: list[EventRejected] = []
    validation: ValidationAnswer | None = None
    for i, event in enumerate(events):
        where = f"[{i}]" if isinstance(data, list) else "event"
        try:
            out = parse_event(event, where)
            if isinstance(out, ValidationAnswer) and validation is not None:
                raise EventRejected(f"{where}.eventType", "only one SubscriptionValidationEvent per delivery")
        except EventRejected as e:
            e.index = i if isinstance(data, list) else None
            rejected.append(e)
            continue
        if isinstance(out, ValidationAnswer):
            validation = out
        elif out.reason is None:
            items.append(out)
        else:
            log.debug("ignored event %s: %s", _short(out.event_id, 60), out.reason)
            ignored.append(out)
    return Batch(tuple(items), tuple(ignored), tuple(rejected), validation)


def parse_event(event: Any, where: str = "event") -> WorkItem | ValidationAnswer:
    """One event in Event Grid schema (a decoded JSON object). Raises EventRejected when it is malformed."""
    if not isinstance(event, dict):
        raise EventRejected(where, f"expected an event object, got {kind_of(event)}")
    if "specversion" in event and "eventType" not in event:
        raise EventRejected(f"{where}.specversion", "CloudEvents schema is not accepted; expected Event Grid schema")
    event_type = get_str(event, "eventType", where)
    event_id = get_str(event, "id", where)
    event_time = get_time(event, "eventTime", where)
    subject = get_str(event, "subject", where, required=False) or ""
    base = WorkItem("eventgrid", subject, event_type=event_type, event_id=event_id, event_time=event_time)
    if event_type == VALIDATION:
        data = get_object(event, "data", where)
        url = get_str(data, "validationUrl", f"{where}.data", required=False)
        return ValidationAnswer(
            get_str(data, "validationCode", f"{where}.data"), None if url is None else _without_query(url)
        )
    if event_type in KEY_EVENTS:
        return _key_event(event, base, where)
    if event_type in ITEM_EVENTS:
        return _item_event(event, base, where)
    if event_type not in (WRITE_SUCCESS, ACTION_SUCCESS):
        return _replace(base, reason=f"event type {_short(event_type)} is not watched")
    data = get_object(event, "data", where)
    at = f"{where}.data"
    resource_id = get_str(data, "resourceUri", at, required=False) or subject
    if not resource_id:
        raise EventRejected(f"{at}.resourceUri", "missing; expected the resource id (or a non-empty subject)")
    operation = get_str(data, "operationName", at, required=event_type == ACTION_SUCCESS) or ""
    item = _replace(
        base,
        resource_id=resource_id,
        operation=operation,
        correlation_id=get_str(data, "correlationId", at, required=False),
        caller=_actor(data.get("claims"), f"{at}.claims"),
    )
    item = _resolve(item)
    if event_type == ACTION_SUCCESS and item.reason is None:
        if operation.lower() != DEALLOCATE or item.resource_type != VM:
            return _replace(item, reason=f"action {_short(operation)} is not watched")
        return _replace(item, deallocated=True)
    return item


def parse_alert(body: bytes | str | dict[str, Any]) -> Batch:
    """An action group webhook body in the common alert schema, from an activity-log alert on administrative
    operations: one WorkItem per alert target. Raises EventRejected when the payload is not such a body."""
    data = load_json(body, "body") if isinstance(body, bytes | bytearray | memoryview | str) else body
    if not isinstance(data, dict):
        raise EventRejected("body", f"expected a JSON object, got {kind_of(data)}")
    if data.get("schemaId") != ALERT_SCHEMA:
        raise EventRejected(
            "schemaId", f"expected {ALERT_SCHEMA!r} (enable the common alert schema on the action group)"
        )
    inner = get_object(data, "data", "")
    essentials = get_object(inner, "essentials", "data")
    service = get_str(essentials, "monitoringService", "data.essentials")
    targets = essentials.get("alertTargetIDs")
    if not isinstance(targets, list):
        raise EventRejected(
            "data.essentials.alertTargetIDs", f"expected a list of resource ids, got {kind_of(targets)}"
        )
    if len(targets) > MAX_ALERT_TARGETS:
        raise EventRejected("data.essentials.alertTargetIDs", f"{len(targets)} targets; at most {MAX_ALERT_TARGETS}")
    context = get_object(inner, "alertContext", "data")
    at = "data.alertContext"
    event_id = (
        get_str(context, "eventDataId", at, required=False)
        or get_str(essentials, "originAlertId", "data.essentials", required=False)
        or get_str(essentials, "alertId", "data.essentials", required=False)
        or ""
    )
    when = get_time(context, "eventTimestamp", at, required=False) or get_time(
        essentials, "firedDateTime", "data.essentials", required=False
    )
    operation = get_str(context, "operationName", at, required=False) or ""
    base = WorkItem(
        source="alert",
        resource_id="",
        operation=operation,
        event_type=ALERT_SCHEMA,
        event_id=event_id,
        event_time=when,
        correlation_id=get_str(context, "correlationId", at, required=False),
        caller=_alert_actor(context, at),
        deallocated=operation.lower() == DEALLOCATE,
    )
    items: list[WorkItem] = []
    ignored: list[WorkItem] = []
    rejected: list[EventRejected] = []
    for i, target in enumerate(targets):
        if not isinstance(target, str) or not target:
            rejected.append(EventRejected(f"data.essentials.alertTargetIDs[{i}]", "expected a resource id", i))
            continue
        item = _resolve(_replace(base, resource_id=target))
        if service != ADMINISTRATIVE:
            item = _replace(item, reason=f"monitoring service {_short(service)} is not watched")
        elif operation.lower().endswith("/delete"):
            item = _replace(item, reason="deletes are not remediated")
        if item.reason is not None:
            log.debug("ignored alert target %s: %s", _short(item.resource_id), item.reason)
        (items if item.reason is None else ignored).append(item)
    return Batch(tuple(items), tuple(ignored), tuple(rejected))


def work_item(resource_id: str, source: str, *, operation: str = "", now: datetime | None = None) -> WorkItem:
    """A work item the bot makes itself (`sweep`, `rotation`), for a resource id it read from Azure."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    return _resolve(WorkItem(source=source, resource_id=resource_id, operation=operation, event_time=now))


def is_own_identity(item: WorkItem, bot_ids: Iterable[str]) -> bool:
    """True when the change was made by the bot itself (its client id as appid, or its object id as oid)."""
    ids = {i.strip().lower() for i in bot_ids if i and i.strip()}
    return any(v is not None and v.strip().lower() in ids for v in (item.caller.appid, item.caller.oid))


def owner_of(resource_id: str) -> tuple[str, str]:
    """(id, lower-case type) of the resource a change to `resource_id` belongs to: an extension resource (lock, tags,
    diagnostic setting) or a VM extension maps to the resource it sits on. Raises ValueError for a malformed id."""
    segs = resource_id.strip().rstrip("/").split("/")
    if len(segs) < 3 or segs[0] != "" or segs[1].lower() != "subscriptions" or not segs[2]:
        raise ValueError("expected an ARM id starting /subscriptions/{id}")
    if any(s in (".", "..") or _UNSAFE_SEGMENT.search(s) for s in segs[1:]):
        raise ValueError("an ARM id has no dot segments, encoded characters, white space or control characters")
    providers = [i for i in range(1, len(segs), 2) if segs[i].lower() == "providers"]
    if not providers:
        if len(segs) not in (3, 5) or any(not s for s in segs[1:]):
            raise ValueError("expected a subscription, resource group or provider resource id")
        return "/".join(segs), "microsoft.resources/subscriptions" + ("/resourcegroups" if len(segs) == 5 else "")
    p = providers[-1]
    rest = segs[p + 1 :]
    if len(rest) < 3 or len(rest) % 2 == 0 or any(not s for s in rest):
        raise ValueError("expected providers/{namespace}/{type}/{name}[/{type}/{name}...]")
    rtype = "/".join([rest[0], *rest[1::2]]).lower()
    if len(providers) > 1 and rtype in EXTENSIONS:
        return owner_of("/".join(segs[:p]))
    if rtype in CHILDREN:
        return "/".join(segs[:-2]), rtype.rsplit("/", 1)[0]
    return "/".join(segs), rtype


def _resolve(item: WorkItem) -> WorkItem:
    try:
        resource_id, rtype = owner_of(item.resource_id)
    except ValueError as e:
        return _replace(item, reason=f"not a resource id ({e})")
    item = _replace(item, resource_id=resource_id, resource_type=rtype)
    if rtype not in WATCHED:
        return _replace(item, reason=f"resource type {_short(rtype)} is not watched")
    return item


def _key_event(event: dict[str, Any], base: WorkItem, where: str) -> WorkItem:
    vault_id = get_str(event, "topic", where)
    try:
        vault_id, rtype = owner_of(vault_id)
    except ValueError as e:
        raise EventRejected(f"{where}.topic", f"expected the key vault's resource id ({e})") from None
    if rtype != VAULT:
        raise EventRejected(f"{where}.topic", "expected a key vault's resource id (Microsoft.KeyVault/vaults)")
    raw = get_object(event, "data", where)
    # Key Vault writes PascalCase keys (the docs example even has "ObjectName "); accept any case and stray spaces.
    data = {str(k).strip().lower(): v.strip() if isinstance(v, str) else v for k, v in raw.items()}
    at = f"{where}.data"
    object_type = get_str(data, "objecttype", at, required=False, label="ObjectType")
    if object_type is not None and object_type.lower() != "key":
        raise EventRejected(f"{at}.ObjectType", "expected 'Key' for a key event")
    name = get_str(data, "objectname", at, label="ObjectName")
    if not name or "/" in name:
        raise EventRejected(f"{at}.ObjectName", "expected a key name")
    return _replace(
        base,
        resource_id=f"{vault_id}/keys/{name}",
        resource_type=KEY,
        operation=base.event_type.rsplit(".", 1)[-1],
        key_version=get_str(data, "version", at, required=False, label="Version") or None,
        key_expires=from_epoch(data.get("exp"), f"{at}.EXP"),
    )


def _item_event(event: dict[str, Any], base: WorkItem, where: str) -> WorkItem:
    """A secret's or certificate's near-expiry or expiry: the vault is re-read (the topic names it)."""
    try:
        vault_id, rtype = owner_of(get_str(event, "topic", where))
    except ValueError as e:
        raise EventRejected(f"{where}.topic", f"expected the key vault's resource id ({e})") from None
    if rtype != VAULT:
        raise EventRejected(f"{where}.topic", "expected a key vault's resource id (Microsoft.KeyVault/vaults)")
    raw = get_object(event, "data", where)
    data = {str(k).strip().lower(): v.strip() if isinstance(v, str) else v for k, v in raw.items()}
    at, kind = f"{where}.data", ITEM_EVENTS[base.event_type]
    object_type = get_str(data, "objecttype", at, required=False, label="ObjectType")
    if object_type is not None and object_type.lower() != kind:
        raise EventRejected(f"{at}.ObjectType", f"expected {kind.title()!r} for a {kind} event")
    name = get_str(data, "objectname", at, label="ObjectName")
    if not name or "/" in name:
        raise EventRejected(f"{at}.ObjectName", f"expected a {kind} name")
    return _replace(base, resource_id=vault_id, resource_type=VAULT, operation=base.event_type.rsplit(".", 1)[-1])


def _actor(claims: Any, where: str) -> Caller:
    if claims is None:
        return Caller()
    if not isinstance(claims, dict):
        raise EventRejected(where, f"expected an object of token claims, got {kind_of(claims)}")
    found: dict[str, str | None] = {}
    for attr, names in _CLAIMS.items():
        found[attr] = None
        for name in names:
            value = claims.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise EventRejected(f"{where}.{name}", f"expected a string, got {kind_of(value)}")
            if value:
                found[attr] = value
                break
    return Caller(**found)


def _alert_actor(context: dict[str, Any], at: str) -> Caller:
    claims = context.get("claims")
    if isinstance(claims, str):
        try:
            claims = json.loads(claims) if claims.strip() else None
        except (ValueError, RecursionError):
            raise EventRejected(f"{at}.claims", "expected token claims as a JSON object in a string") from None
    actor = _actor(claims, f"{at}.claims")
    caller = get_str(context, "caller", at, required=False)
    if caller and "@" in caller and actor.upn is None:
        actor = replace(actor, upn=caller)
    elif caller and _GUID.match(caller) and actor.oid is None:
        actor = replace(actor, oid=caller)
    return actor


def _replace(item: WorkItem, **changes: Any) -> WorkItem:
    return replace(item, **changes)
