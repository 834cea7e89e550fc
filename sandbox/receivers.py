"""The receiving ends of what the bot sends, served on the sandbox's HTTPS port under `/_receivers/...`:

- `POST /_receivers/teams/{name}`: a Teams Workflows webhook ("Post to a channel when a webhook request is
  received"). Adaptive Card envelopes only, 28 KB at most, 4 requests a second; answers 202 like the flow's HTTP
  trigger. See `_teams` for what is stricter than the real service and why.
- `POST|PUT /_receivers/webhook/{name}`: a generic webhook that keeps method, headers and the raw body (to check
  HMAC signatures), answering a configurable status sequence after a configurable delay; it answers Event Grid's
  subscription-validation handshake by itself unless told not to.
- `POST /_receivers/eventgrid/{topic}/api/events`: an Event Grid custom topic endpoint (aeg-sas-key or
  aeg-sas-token), Event Grid schema or CloudEvents 1.0 per the topic's input schema, with Event Grid's answers.

Admin API (X-Sandbox-Key): `PUT /_sandbox/receivers/{kind}/{name}` configures one (an Event Grid topic must be
created so, which gives its key), `GET /_sandbox/receivers` lists them, `GET|DELETE /_sandbox/received?receiver=
kind/name` reads or clears what arrived (everything without `receiver`), and `GET|DELETE /_sandbox/alerts`,
`GET|PATCH /_sandbox/alerts/config` expose fired activity-log alerts and their deliveries (sandbox/alerts.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import alerts
from sandbox.state import new_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sandbox.server import Sandbox

TEAMS_MAX_BYTES = 28 * 1024
TEAMS_PER_SECOND = 4
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
EVENTGRID_MAX_BYTES = 1024 * 1024
EVENTGRID_SCHEMA, CLOUDEVENT_SCHEMA = "EventGridSchema", "CloudEventSchemaV1_0"
_TEAMS_FLOW_ERROR = (
    "The execution of template action 'Send_each_adaptive_card' failed: the result of the evaluation of 'foreach' "
    "expression '@triggerOutputs()?['body']?['attachments']' is of type 'Null'. The result must be a valid array."
)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status, headers)


def _raw(body: bytes) -> dict[str, Any]:
    return {"body": body.decode("utf-8", "replace"), "bodyBase64": base64.b64encode(body).decode()}


class Receivers:
    """Configuration and what arrived, per receiver (`teams/NAME`, `webhook/NAME`, `eventgrid/TOPIC`)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.configs: dict[str, dict[str, Any]] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.windows: dict[str, deque[float]] = {}
        sb.state.on_reset(self.clear)

    def clear(self) -> None:
        self.configs.clear()
        self.received.clear()
        self.windows.clear()

    def keep(self, key: str, request: Request, item: dict[str, Any]) -> dict[str, Any]:
        record = {
            "receiver": key,
            "time": self.sb.state.clock.iso(),
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": dict(request.headers),
            **item,
        }
        self.received.setdefault(key.lower(), []).append(record)
        return record

    # -- Teams -------------------------------------------------------------------------------------------------
    async def teams(self, request: Request) -> Response:
        """Power Automate's HTTP trigger answers 202 to any body and the run fails afterwards (for a MessageCard:
        `_TEAMS_FLOW_ERROR` in the run history), which a sender never sees. The sandbox refuses such bodies at
        once with 400 (the flow's error in the message) so that the bot's tests see the failure. Action.Submit
        is accepted and flagged (`warnings`): Workflows posts the card, but its buttons cannot reach the sender."""
        key = f"teams/{request.path_params['name']}"
        config = self.configs.get(key.lower(), {})
        raw = await request.body()
        limit = int(config.get("maxPerSecond", TEAMS_PER_SECOND))
        now = time.monotonic()
        window = self.windows.setdefault(key.lower(), deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            wait = max(1, int(window[0] + 1.0 - now + 0.999))
            self.keep(key, request, {"status": 429, **_raw(raw)})
            return _error(
                429,
                "TooManyRequests",
                f"Rate limit is exceeded: at most {limit} requests per second to one webhook. Try again in {wait} "
                "seconds.",
                {"Retry-After": str(wait)},
            )
        window.append(now)
        response, item = self._teams_check(raw, int(config.get("maxBytes", TEAMS_MAX_BYTES)))
        self.keep(key, request, {"status": response.status_code, **item, **_raw(raw)})
        return response

    def _teams_check(self, raw: bytes, max_bytes: int) -> tuple[Response, dict[str, Any]]:
        if len(raw) > max_bytes:
            message = f"The message is {len(raw)} bytes; a Teams message can be at most {max_bytes} bytes (28 KB)."
            return _error(413, "RequestEntityTooLarge", message), {"error": message}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            message = f"The request body is not valid JSON: {exc}."
            return _error(400, "InvalidRequestContent", message), {"error": message}
        problem = _envelope_problem(body)
        if problem:
            message = f"{problem} (Sandbox: the real webhook answers 202 and the flow run fails: {_TEAMS_FLOW_ERROR})"
            return _error(400, "InvalidRequestContent", message), {"json": body, "error": problem}
        warnings = [
            f"{kind} at {where}: Teams Workflows cannot deliver its submit back to the sender; use Action.OpenUrl"
            for kind, where in _actions(body, "$", {"Action.Submit", "Action.Execute"})
        ]
        run_id = new_id().replace("-", "")[:30]
        return Response(status_code=202, headers={"x-ms-workflow-run-id": run_id}), {
            "json": body,
            "warnings": warnings,
            "runId": run_id,
        }

    # -- generic webhook ---------------------------------------------------------------------------------------
    async def webhook(self, request: Request) -> Response:
        key = f"webhook/{request.path_params['name']}"
        config = self.configs.setdefault(key.lower(), {"statuses": [], "status": 200, "delayMs": 0})
        raw = await request.body()
        if config.get("delayMs"):
            await asyncio.sleep(float(config["delayMs"]) / 1000)
        if config.get("autoValidate", True) and request.headers.get("aeg-event-type") == "SubscriptionValidation":
            try:
                code = json.loads(raw)[0]["data"]["validationCode"]
            except (ValueError, LookupError, TypeError):
                code = None
            if code:
                self.keep(key, request, {"status": 200, "validation": True, **_raw(raw)})
                return JSONResponse({"validationResponse": code})
        status = int(config["statuses"].pop(0)) if config["statuses"] else int(config.get("status", 200))
        self.keep(key, request, {"status": status, **_raw(raw)})
        return Response(status_code=status)

    # -- Event Grid custom topic -------------------------------------------------------------------------------
    async def eventgrid(self, request: Request) -> Response:
        topic = request.path_params["topic"]
        key = f"eventgrid/{topic}"
        config = self.configs.get(key.lower())
        host = f"{topic}.sandbox-1.eventgrid.azure.net".upper()
        if config is None:
            return _error(
                404, "NotFound", f"The topic '{topic}' does not exist (create it: PUT /_sandbox/receivers/{key})."
            )
        problem = self._eventgrid_auth(request, config, host)
        if problem:
            return _error(
                401,
                "Unauthorized",
                f"{problem} Report '{new_id()}:{_now()}' to our forums for assistance or raise a support ticket.",
            )
        raw = await request.body()
        if len(raw) > EVENTGRID_MAX_BYTES:
            return _eventgrid_bad(
                413, "PayloadTooLarge", f"The maximum size ({EVENTGRID_MAX_BYTES}) has been exceeded."
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return _eventgrid_bad(400, "InputJsonInvalid", f"The input is not valid JSON: {exc}.")
        schema = CLOUDEVENT_SCHEMA if content_type.startswith("application/cloudevents") else EVENTGRID_SCHEMA
        if content_type == "application/cloudevents+json":
            body = [body]
        if schema != config["inputSchema"]:
            name = "CloudEventV10" if config["inputSchema"] == CLOUDEVENT_SCHEMA else "EventGridEvent"
            return _eventgrid_bad(
                400,
                "InputJsonInvalid",
                f"This resource is configured to receive event in '{name}' schema. The JSON received does not "
                f"conform to the expected schema (received {schema}, content type '{content_type}').",
            )
        if not isinstance(body, list):
            return _eventgrid_bad(400, "InputJsonInvalid", "The input must be a JSON array of events.")
        check = _cloudevent_problem if schema == CLOUDEVENT_SCHEMA else _eventgrid_problem
        for i, event in enumerate(body):
            problem = check(event, i)
            if problem:
                return _eventgrid_bad(400, "InputJsonInvalid", problem)
        for event in body:
            self.keep(key, request, {"status": 200, "schema": schema, "event": event})
        return Response(status_code=200)

    @staticmethod
    def _eventgrid_auth(request: Request, config: dict[str, Any], host: str) -> str | None:
        supplied = request.headers.get("aeg-sas-key")
        if supplied is not None:
            ok = hmac.compare_digest(supplied, config["key"])
            return (
                None
                if ok
                else (
                    f"The request authorization key is not authorized for {host}. This is due to the reason: The key "
                    "used for authorization is incorrect."
                )
            )
        token = request.headers.get("aeg-sas-token")
        if token is not None:
            return _sas_problem(token, config["key"], host)
        return "Request must contain one of the following authorization signature: aeg-sas-token, aeg-sas-key."

    # -- admin -------------------------------------------------------------------------------------------------
    def configure(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        key = f"{kind}/{name}".lower()
        if kind == "eventgrid":
            old = self.configs.get(key, {})
            schema = body.get("inputSchema", old.get("inputSchema", EVENTGRID_SCHEMA))
            if schema not in (EVENTGRID_SCHEMA, CLOUDEVENT_SCHEMA):
                raise ValueError(f"unknown inputSchema {schema!r}; valid: {[EVENTGRID_SCHEMA, CLOUDEVENT_SCHEMA]}")
            secret = body.get("key") or old.get("key") or base64.b64encode(secrets.token_bytes(32)).decode()
            config = {"key": secret, "inputSchema": schema}
            endpoint = f"{self.sb.base_url}/_receivers/eventgrid/{name}/api/events"
            self.configs[key] = config
            return {"receiver": f"eventgrid/{name}", "endpoint": endpoint, **config}
        allowed = {
            "webhook": {"statuses", "status", "delayMs", "autoValidate"},
            "teams": {"maxPerSecond", "maxBytes"},
        }.get(kind)
        if allowed is None:
            raise ValueError(f"unknown receiver kind {kind!r}; valid: ['eventgrid', 'teams', 'webhook']")
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown {kind} settings {sorted(unknown)}; valid: {sorted(allowed)}")
        config = {"statuses": [], "status": 200, "delayMs": 0} if kind == "webhook" else {}
        config.update(body)
        if kind == "webhook":
            config["statuses"] = [int(s) for s in config["statuses"]]
        self.configs[key] = config
        return {"receiver": f"{kind}/{name}", "url": f"{self.sb.base_url}/_receivers/{kind}/{name}", **config}


def _now() -> str:
    return datetime.now(UTC).strftime("%m/%d/%Y %I:%M:%S %p")


def _eventgrid_bad(status: int, detail_code: str, message: str) -> Response:
    """Event Grid's error body: `{"error": {"code", "message", "details": [{"code", "message"}]}}`."""
    text = f"{message} Report '{new_id()}:{_now()}' to our forums for assistance or raise a support ticket."
    code = "BadRequest" if status == 400 else detail_code
    return _error(status, code, text, details=[{"code": detail_code, "message": text}])


def _sas_problem(token: str, key: str, host: str) -> str | None:
    unsigned, sep, signature = token.rpartition("&s=")
    fields = dict(part.split("=", 1) for part in unsigned.split("&") if "=" in part)
    if not sep or "r" not in fields or "e" not in fields:
        return (
            f"Invalid key in aeg-sas-token. Valid format :r=UrlEncodedResource&e=UrlEncodedUtcExpiration&s="
            f"UrlEncodedSignature. Input sas string: {token}."
        )
    try:
        expected = base64.b64encode(
            hmac.new(base64.b64decode(key), unsigned.encode("ascii"), hashlib.sha256).digest()
        ).decode()
        expires = datetime.fromisoformat(unquote(fields["e"]))
    except ValueError:
        return "The aeg-sas-token could not be read."
    if not hmac.compare_digest(expected, unquote(signature)):
        return (
            f"The request authorization key is not authorized for {host}. This is due to the reason: The "
            "signature of the aeg-sas-token is incorrect."
        )
    if (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) < datetime.now(UTC):
        return (
            f"The request authorization key is not authorized for {host}. This is due to the reason: The "
            "aeg-sas-token has expired."
        )
    return None


def _envelope_problem(body: Any) -> str | None:
    """Why a body is not a Teams message carrying Adaptive Cards (None when it is)."""
    if not isinstance(body, dict):
        return "The body must be a JSON object: a message with Adaptive Card attachments."
    if str(body.get("@type", "")).lower() == "messagecard" or "@context" in body or "sections" in body:
        return (
            "MessageCard payloads (Office 365 connector cards) are not supported by Teams Workflows webhooks; send "
            "{'type': 'message', 'attachments': [{'contentType': 'application/vnd.microsoft.card.adaptive', "
            "'content': {'type': 'AdaptiveCard', ...}}]}."
        )
    if body.get("type") != "message":
        return 'The body must have "type": "message".'
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "The body must have a non-empty 'attachments' array."
    for i, att in enumerate(attachments):
        if not isinstance(att, dict) or att.get("contentType") != ADAPTIVE:
            return f"attachments[{i}].contentType must be '{ADAPTIVE}'."
        card = att.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            return f'attachments[{i}].content must be an object with "type": "AdaptiveCard".'
        if not isinstance(card.get("version"), str) or not card["version"]:
            return f"attachments[{i}].content.version must be a string such as '1.4'."
        if not isinstance(card.get("body"), list):
            return f"attachments[{i}].content.body must be an array of card elements."
    return None


def _actions(node: Any, where: str, kinds: set[str]) -> list[tuple[str, str]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") in kinds:
            found.append((str(node["type"]), where))
        for k, v in node.items():
            found += _actions(v, f"{where}.{k}", kinds)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _actions(v, f"{where}[{i}]", kinds)
    return found


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _eventgrid_problem(event: Any, i: int) -> str | None:
    if not isinstance(event, dict):
        return f"The event at index {i} is not a JSON object."
    for name in ("id", "subject", "eventType", "eventTime"):
        if not isinstance(event.get(name), str) or not event[name]:
            return f"Required property '{name}' was not set (event index {i})."
    if not _is_time(event["eventTime"]):
        return f"The event time property 'eventTime' was not a valid date/time (event index {i})."
    return None


def _cloudevent_problem(event: Any, i: int) -> str | None:
    if not isinstance(event, dict):
        return f"The event at index {i} is not a JSON object."
    for name in ("id", "source", "type", "specversion"):
        if not isinstance(event.get(name), str) or not event[name]:
            return f"Required property '{name}' was not set (event index {i})."
    if event["specversion"] != "1.0":
        return f"The specversion '{event['specversion']}' is not supported; only '1.0' is (event index {i})."
    if "time" in event and event["time"] is not None and not _is_time(event["time"]):
        return f"The property 'time' was not a valid date/time (event index {i})."
    if "data" in event and "data_base64" in event:
        return f"An event cannot have both 'data' and 'data_base64' (event index {i})."
    return None


def routes(sb: Sandbox) -> list[Route]:
    rx = Receivers(sb)

    def guarded(fn: Callable[[Request, Any], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.headers.get("x-sandbox-key") != sb.admin_key:
                return _error(403, "Forbidden", "X-Sandbox-Key is missing or wrong")
            raw = await request.body() if request.method in ("PUT", "PATCH", "POST") else b""
            try:
                result = fn(request, json.loads(raw) if raw else {})
            except (KeyError, ValueError, TypeError) as exc:
                return _error(400, "BadRequest", str(exc))
            return result if isinstance(result, Response) else JSONResponse(result)

        return endpoint

    def received(request: Request, body: Any) -> dict[str, Any]:
        which = request.query_params.get("receiver", "").strip("/").lower()
        keys = [which] if which else sorted(rx.received)
        items = [item for key in keys for item in rx.received.get(key, [])]
        if request.method == "DELETE":
            for key in keys:
                rx.received.pop(key, None)
        return {"value": items}

    def configure(request: Request, body: Any) -> dict[str, Any]:
        return rx.configure(request.path_params["kind"], request.path_params["name"], body or {})

    def listing(request: Request, body: Any) -> dict[str, Any]:
        return {"value": [{"receiver": k, **v} for k, v in sorted(rx.configs.items())]}

    def fired(request: Request, body: Any) -> dict[str, Any]:
        items = alerts.fired(sb)
        out = {"value": list(items)}
        if request.method == "DELETE":
            items.clear()
        return out

    def config(request: Request, body: Any) -> dict[str, Any]:
        return alerts.configure(sb, body or {})

    return [
        Route("/_receivers/teams/{name}", rx.teams, methods=["POST"]),
        Route("/_receivers/webhook/{name}", rx.webhook, methods=["POST", "PUT"]),
        Route("/_receivers/eventgrid/{topic}/api/events", rx.eventgrid, methods=["POST"]),
        Route("/_sandbox/receivers", guarded(listing), methods=["GET"]),
        Route("/_sandbox/receivers/{kind}/{name}", guarded(configure), methods=["PUT"]),
        Route("/_sandbox/received", guarded(received), methods=["GET", "DELETE"]),
        Route("/_sandbox/alerts", guarded(fired), methods=["GET", "DELETE"]),
        Route("/_sandbox/alerts/config", guarded(config), methods=["GET", "PATCH"]),
    ]
