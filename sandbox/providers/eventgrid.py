"""Microsoft.EventGrid/eventSubscriptions on the subscription's system topic (`Microsoft.Resources.Subscriptions`),
a resource group, or a key vault (`Microsoft.KeyVault.vaults`): an extension resource at that scope.

Only WebHook destinations. A PUT answers 201 with provisioningState Creating and an Azure-AsyncOperation URL, as Event
Grid does; the validation handshake then runs on the server's loop (sandbox/delivery.py) and the operation ends
Succeeded, or Failed with Event Grid's "Url validation" error. GET shows `endpointBaseUrl` (the URL without its
query), never the full `endpointUrl`; `POST .../getFullUrl` answers it.

`SystemTopics` publishes: one Microsoft.Resources event per ARM operation, Key Vault key events; sandbox/delivery.py
delivers them.

Admin routes (`admin_table`, which `install` registers with the core): /_sandbox/eventSubscriptions (GET list, POST
create, DELETE ?id=), /_sandbox/deadletters, /_sandbox/deliveries.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from sandbox import delivery, events, rbac
from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers import keyvault_store
from sandbox.providers.keyvault import vault_uri
from sandbox.state import Operation, new_id

if TYPE_CHECKING:
    from starlette.requests import Request

    from sandbox.server import Sandbox

ES_TYPE = delivery.ES_TYPE
API_VERSIONS = (
    "2017-06-15-preview",
    "2017-09-15-preview",
    "2018-01-01",
    "2018-05-01-preview",
    "2018-09-15-preview",
    "2019-01-01",
    "2019-02-01-preview",
    "2019-06-01",
    "2020-01-01-preview",
    "2020-04-01-preview",
    "2020-06-01",
    "2020-10-15-preview",
    "2021-06-01-preview",
    "2021-10-15-preview",
    "2021-12-01",
    "2022-06-15",
    "2023-06-01-preview",
    "2023-12-15-preview",
    "2024-06-01-preview",
    "2024-12-15-preview",
    "2025-02-15",
    "2025-04-01-preview",
    "2025-07-15-preview",
)
ADMIN_API = "2025-02-15"
SCHEMAS = {"eventgridschema": "EventGridSchema", "cloudeventschemav1_0": "CloudEventSchemaV1_0"}


def _bad(message: str, code: str = "InvalidRequest") -> ArmError:
    return ArmError(400, code, message)


def topic_of(scope: str) -> tuple[str, str]:
    """(topic type, topic) for an event subscription's scope; ArmError for a scope without a system topic here."""
    parts = [p for p in scope.split("/") if p]
    low = [p.lower() for p in parts]
    if len(parts) == 2 and low[0] == "subscriptions":
        return "Microsoft.Resources.Subscriptions", scope
    if len(parts) == 4 and low[0] == "subscriptions" and low[2] == "resourcegroups":
        return "Microsoft.Resources.ResourceGroups", scope
    if len(parts) == 8 and low[4:7] == ["providers", "microsoft.keyvault", "vaults"]:
        return "Microsoft.KeyVault.vaults", scope
    raise _bad(
        f"The topic '{scope}' is not supported by the sandbox: event subscriptions may be created on a subscription, "
        "a resource group or a key vault."
    )


def _int(value: Any, name: str, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"The value of {name} must be between {low} and {high}. Value provided: {value}.")
    return value


def _filter(raw: Any, topic_type: str) -> dict[str, Any]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _bad("The filter must be an object.")
    advanced = raw.get("advancedFilters") or []
    if not isinstance(advanced, list) or len(advanced) > 25:
        raise _bad("The number of advanced filters cannot exceed 25.")
    for flt in advanced:
        op = (flt or {}).get("operatorType")
        if op not in events.OPERATORS:
            raise _bad(f"Invalid operatorType '{op}'. Valid values: {', '.join(events.OPERATORS)}.")
        if not (flt or {}).get("key"):
            raise _bad("The key of an advanced filter is required.")
        values = flt.get("values")
        if op in (*events.STRING_OPERATORS, "NumberIn", "NumberNotIn") and (not isinstance(values, list) or not values):
            raise _bad(f"The advanced filter '{op}' on key '{flt['key']}' needs a non-empty 'values' array.")
    included = raw.get("includedEventTypes")
    if included is not None and (not isinstance(included, list) or not all(isinstance(t, str) for t in included)):
        raise _bad("includedEventTypes must be an array of strings.")
    return {
        "subjectBeginsWith": raw.get("subjectBeginsWith") or "",
        "subjectEndsWith": raw.get("subjectEndsWith") or "",
        "includedEventTypes": list(included) if included else None,
        "isSubjectCaseSensitive": bool(raw.get("isSubjectCaseSensitive", False)),
        "enableAdvancedFilteringOnArrays": bool(raw.get("enableAdvancedFilteringOnArrays", True)),
        "advancedFilters": [dict(f) for f in advanced],
    }


def _destination(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad("The destination of the event subscription is required.", "InvalidDestination")
    kind = str(raw.get("endpointType", ""))
    if kind.lower() != "webhook":
        raise _bad(f"The endpoint type '{kind}' is not supported by the sandbox: use WebHook.", "InvalidDestination")
    props = raw.get("properties") or {}
    url = props.get("endpointUrl")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname:
        raise _bad("The destination endpoint URL is missing or not a valid URL.", "InvalidDestination")
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise _bad(
            f"The attempt to validate the provided endpoint {url} failed: the webhook endpoint must use HTTPS "
            "(the sandbox also accepts http://127.0.0.1).",
            "InvalidDestination",
        )
    return {
        "endpointType": "WebHook",
        "properties": {
            "endpointUrl": url,
            "maxEventsPerBatch": _int(props.get("maxEventsPerBatch"), "maxEventsPerBatch", 1, 5000, 1),
            "preferredBatchSizeInKilobytes": _int(
                props.get("preferredBatchSizeInKilobytes"), "preferredBatchSizeInKilobytes", 1, 1024, 64
            ),
            "azureActiveDirectoryTenantId": props.get("azureActiveDirectoryTenantId"),
            "azureActiveDirectoryApplicationIdOrUri": props.get("azureActiveDirectoryApplicationIdOrUri"),
            "deliveryAttributeMappings": props.get("deliveryAttributeMappings"),
            "minimumTlsVersionAllowed": props.get("minimumTlsVersionAllowed"),
        },
    }


def _dead_letter(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or str(raw.get("endpointType", "")).lower() != "storageblob":
        raise _bad("The dead letter destination must be of endpointType StorageBlob.", "InvalidDeadLetterDestination")
    props = raw.get("properties") or {}
    if not props.get("resourceId") or not props.get("blobContainerName"):
        raise _bad(
            "A StorageBlob dead letter destination needs properties.resourceId and properties.blobContainerName.",
            "InvalidDeadLetterDestination",
        )
    return {
        "endpointType": "StorageBlob",
        "properties": {"resourceId": props["resourceId"], "blobContainerName": props["blobContainerName"]},
    }


def build(scope: str, name: str, body: Any) -> dict[str, Any]:
    """The stored event subscription for a PUT body, validated as Event Grid does; ArmError otherwise."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise _bad("The request content is missing the 'properties' of the event subscription.")
    if not 3 <= len(name) <= 64 or not all(c.isalnum() or c == "-" for c in name):
        raise _bad(
            f"Event subscription name '{name}' is invalid: it must be 3 to 64 characters long and may contain only "
            "letters, digits and '-'.",
            "InvalidEventSubscriptionName",
        )
    topic_type, topic = topic_of(scope)
    props = body["properties"]
    schema_in = str(props.get("eventDeliverySchema") or "EventGridSchema")
    schema = SCHEMAS.get(schema_in.lower())
    if schema is None:
        raise _bad(
            f"The event delivery schema '{schema_in}' is not supported: use EventGridSchema or CloudEventSchemaV1_0."
        )
    retry = props.get("retryPolicy") or {}
    return {
        "properties": {
            "topic": topic,
            "provisioningState": "Creating",
            "destination": _destination(props.get("destination")),
            "filter": _filter(props.get("filter"), topic_type),
            "labels": list(props.get("labels") or []),
            "expirationTimeUtc": props.get("expirationTimeUtc"),
            "eventDeliverySchema": schema,
            "retryPolicy": {
                "maxDeliveryAttempts": _int(retry.get("maxDeliveryAttempts"), "maxDeliveryAttempts", 1, 30, 30),
                "eventTimeToLiveInMinutes": _int(
                    retry.get("eventTimeToLiveInMinutes"), "eventTimeToLiveInMinutes", 1, 1440, 1440
                ),
            },
            "deadLetterDestination": _dead_letter(props.get("deadLetterDestination")),
        },
        "id": f"{scope}/providers/Microsoft.EventGrid/eventSubscriptions/{name}",
        "name": name,
        "type": ES_TYPE,
    }


def view(body: dict[str, Any]) -> dict[str, Any]:
    """What GET answers: the endpoint's base URL only (the query may hold a secret), and no empty dead letter."""
    out = copy.deepcopy(body)
    dest = out["properties"]["destination"]["properties"]
    url = dest.pop("endpointUrl", "")
    parts = urlsplit(url)
    dest["endpointBaseUrl"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    if out["properties"].get("deadLetterDestination") is None:
        out["properties"].pop("deadLetterDestination", None)
    return out


@register
class EventSubscriptions(ResourceType):
    type = ES_TYPE
    api_versions = API_VERSIONS
    extension = True

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise ArmError(
                404, "ResourceNotFound", f"The Resource '{ES_TYPE}/{call.path.name}' under scope was not found."
            )
        return view(body)

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        return view(body)

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        stored = build(call.path.parent, call.path.name or "", call.body)
        if existing is not None:
            stored["id"], stored["name"] = existing["id"], existing["name"]
            stored["properties"]["provisioningState"] = "Updating"
        call.state.put(stored)
        op_id = new_id()
        call.state.lros[op_id] = {
            "status": "InProgress",
            "resourceId": stored["id"],
            "method": "PUT",
            "result": None,
            "resultStatus": 201,
            "startTime": call.state.clock.iso(),
            "pollsLeft": 1 << 62,  # InProgress until the handshake ends (delivery.Engine.finish_validation)
        }
        delivery.engine_for(call.sandbox).validate(stored["id"], op_id)
        headers = {
            "Azure-AsyncOperation": call.op_url(stored["id"], "operations", op_id),
            "retry-after-ms": str(call.state.settings.lro_delay_ms),
        }
        return Answer(201, view(stored), headers)

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        call.state.remove(existing["id"])
        delivery.engine_for(call.sandbox).forget(existing["id"])
        return Answer(200)

    def list(self, call: Call) -> list[dict[str, Any]]:
        parent = call.path.parent.lower().rstrip("/")
        at_subscription = parent.count("/") == 2
        out = []
        for body in call.state.of_type(ES_TYPE):
            scope = delivery.scope_of(body["id"]).lower()
            rg_under_sub = at_subscription and scope.startswith(parent + "/resourcegroups/") and scope.count("/") == 4
            if scope == parent or rg_under_sub:
                out.append(view(body))
        return out

    def action(self, call: Call, name: str, existing: dict[str, Any]) -> Answer:
        if name.lower() == "getfullurl":
            return Answer(200, {"endpointUrl": existing["properties"]["destination"]["properties"]["endpointUrl"]})
        if name.lower() == "getdeliveryattributes":
            return Answer(200, {"value": []})
        return super().action(call, name, existing)


# -- admin API -------------------------------------------------------------------------------------------------------


def admin_table(sb: Sandbox) -> list[tuple[str, Callable[[Request, Any], Any], list[str]]]:
    """Routes for sandbox/admin.py's table: manage subscriptions without ARM, read dead letters and deliveries."""
    from sandbox import scenarios

    engine = delivery.engine_for(sb)

    def subscriptions(request: Request, body: Any) -> dict[str, Any]:
        if request.method == "POST":
            scope = body.get("scope") or f"/subscriptions/{next(iter(sb.state.subscriptions))}"
            props: dict[str, Any] = {
                "destination": {
                    "endpointType": "WebHook",
                    "properties": {
                        "endpointUrl": body["endpointUrl"],
                        "maxEventsPerBatch": body.get("maxEventsPerBatch"),
                        "preferredBatchSizeInKilobytes": body.get("preferredBatchSizeInKilobytes"),
                    },
                },
                "filter": body.get("filter") or {},
                "eventDeliverySchema": body.get("eventDeliverySchema"),
                "retryPolicy": body.get("retryPolicy") or {},
                "deadLetterDestination": body.get("deadLetterDestination"),
            }
            path = f"{scope}/providers/Microsoft.EventGrid/eventSubscriptions/{body['name']}"
            scenarios.arm(sb, "PUT", path, {"properties": props}, api_version=ADMIN_API, who=body.get("as", "admin"))
            return engine.describe(sb.state.get(path) or {})
        if request.method == "DELETE":
            rid = request.query_params["id"]
            scenarios.arm(sb, "DELETE", rid, api_version=ADMIN_API, who="admin")
            return {"deleted": rid}
        return {"value": [engine.describe(b) for b in sb.state.of_type(ES_TYPE)]}

    def deadletters(request: Request, body: Any) -> dict[str, Any]:
        wanted = request.query_params.get("subscription", "").lower()
        rows = [r for r in engine.dead_letters() if not wanted or r["eventSubscriptionId"].lower() == wanted]
        return {"value": rows}

    def deliveries(request: Request, body: Any) -> dict[str, Any]:
        since = int(request.query_params.get("since", "0"))
        log = engine.log
        return {"value": log[since:], "next": len(log)}

    return [
        ("/_sandbox/eventSubscriptions", subscriptions, ["GET", "POST", "DELETE"]),
        ("/_sandbox/deadletters", deadletters, ["GET"]),
        ("/_sandbox/deliveries", deliveries, ["GET"]),
    ]


# -- the system topics: what gets published ----------------------------------------------------------------------------

NEAR_EXPIRY = 30 * 86400
NOTIFIED = "eventgrid.keyevents"  # key version -> the expiry events already published for it
_TOPICS: weakref.WeakKeyDictionary[Any, SystemTopics] = weakref.WeakKeyDictionary()


class SystemTopics:
    """The subscription's topic (one Microsoft.Resources event per ARM operation, as Azure emits them) and each
    vault's topic (KeyNewVersionCreated; KeyNearExpiry 30 days before `exp` and KeyExpired at `exp`, by the sandbox
    clock, once per current key version). Events go to the delivery engine; nothing is built while nobody listens."""

    def __init__(self, sb: Sandbox, engine: delivery.Engine) -> None:
        self._sb = weakref.ref(sb)
        self.state, self.engine = sb.state, engine
        self.state.on_operation(self.on_operation)
        self.state.clock.on_tick(self.publish_key_expiry)

    @property
    def sb(self) -> Sandbox:
        sb = self._sb()
        assert sb is not None
        return sb

    def on_operation(self, op: Operation) -> None:
        subscription = events.subscription_of(op.resource_id)
        if subscription is None:
            return
        targets = [es for es in self.engine.active() if _hears(delivery.scope_of(es["id"]), op.resource_id)]
        if not targets:
            return  # nothing subscribed: no evidence lookup, no event
        event = events.resource_event(
            operation_name=op.operation_name,
            resource_id=op.resource_id,
            status=op.status,
            http_method=op.http_method,
            url=op.url,
            claims=op.claims,
            correlation_id=op.correlation_id,
            time=op.time,
            tenant_id=self.state.tenant_id,
            event_id=new_id(),
            client_request_id=new_id(),
            evidence=self.evidence(op),
        )
        for es in targets:
            scope = delivery.scope_of(es["id"])
            topic = scope if "/resourcegroups/" in scope.lower() else f"/subscriptions/{subscription}"
            self.engine.publish(es, {**event, "topic": topic})

    def evidence(self, op: Operation) -> dict[str, str] | None:
        """The role assignment that granted the operation, as `authorization.evidence` names it."""
        oid = op.principal.get("object_id")
        if not oid or op.status != "Succeeded":
            return None
        definitions = self.sb.role_definitions()
        assignment = rbac.explain(
            oid,
            op.operation_name,
            op.resource_id,
            data_action=False,
            assignments=list(self.state.of_type("Microsoft.Authorization/roleAssignments")),
            role_definitions=definitions,
        )
        if assignment is None:
            return None
        guid = assignment["properties"]["roleDefinitionId"].rstrip("/").rsplit("/", 1)[-1].lower()
        role = (definitions.get(guid) or {}).get("properties", {}).get("roleName")
        return events.evidence(assignment, role)

    def publish_key_event(self, event_type: str, vault: dict[str, Any], key_name: str, version: dict[str, Any]) -> None:
        targets = [es for es in self.engine.active() if delivery.scope_of(es["id"]).lower() == vault["id"].lower()]
        if not targets:
            return
        attrs = version.get("attributes", {})
        event = events.key_event(
            event_type,
            vault_id=vault["id"],
            vault_name=vault["name"],
            key_id=f"{vault_uri(self.sb, vault['name'])}keys/{key_name}/{version['version']}",
            key_name=key_name,
            version=version["version"],
            nbf=attrs.get("nbf"),
            exp=attrs.get("exp"),
            time=self.state.clock.iso(),
            event_id=new_id(),
        )
        for es in targets:
            self.engine.publish(es, event)

    def on_new_version(self, vault: dict[str, Any], entry: dict[str, Any], version: dict[str, Any]) -> None:
        self.publish_key_event("KeyNewVersionCreated", vault, entry["name"], version)
        self.publish_key_expiry([entry])

    def publish_key_expiry(self, entries: list[dict[str, Any]] | None = None) -> None:
        """KeyNearExpiry and KeyExpired for each key's current version whose moment has come, once each."""
        now = self.state.clock.timestamp()
        notified = self.state.table(NOTIFIED)
        for entry in entries if entries is not None else list(keyvault_store.keys(self.state).values()):
            if not entry.get("versions"):
                continue
            version = entry["versions"][-1]
            exp = version.get("attributes", {}).get("exp")
            if exp is None or now < exp - NEAR_EXPIRY:
                continue
            done = notified.setdefault(version["version"], [])
            vault = self.state.get(entry["vaultId"])
            for kind, due in (("KeyNearExpiry", exp - NEAR_EXPIRY), ("KeyExpired", exp)):
                if now >= due and kind not in done:
                    done.append(kind)
                    if vault is not None:
                        self.publish_key_event(kind, vault, entry["name"], version)


def _hears(scope: str, resource_id: str) -> bool:
    """Whether a subscription at `scope` (a subscription or a group) hears about `resource_id`; a vault's topic
    carries only Key Vault events."""
    s, rid = scope.lower().rstrip("/"), resource_id.lower()
    if s.count("/") == 2 or (s.count("/") == 4 and "/resourcegroups/" in s):
        return rid == s or rid.startswith(s + "/")
    return False


@keyvault_store.on_new_version
def _on_new_version(vault: dict[str, Any], entry: dict[str, Any], version: dict[str, Any]) -> None:
    for topics in list(_TOPICS.values()):  # the hook is process-wide: find the sandbox holding this vault
        if topics.state.get(vault["id"]) is vault:
            topics.on_new_version(vault, entry, version)


def install(sb: Sandbox) -> None:
    _TOPICS[sb] = SystemTopics(sb, delivery.install(sb))
    sb.hooks.admin(admin_table)
