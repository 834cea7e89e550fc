"""Fault injection: seeded, reproducible failures of the kinds Azure's clients must survive.

Rules come through the admin API (`POST /_sandbox/faults`); each names a `kind` and what it matches:

    {"kind": "503", "rate": 0.3, "method": "GET|PUT", "path": "/vaults/", "principal": "bot", "count": 2}

Request kinds: `500` and `503` (ARM's InternalServerError / ServiceUnavailable bodies), `429` (with `retryAfter`
seconds, default 1), `reset` (the TCP connection is aborted with an RST before any answer), `slow` (the request is
handled, then the answer waits `delayMs`), `lroFailed` (a long-running write is accepted, its status poll reports
Failed with `code`/`message`, and the change is undone: a failed LRO did not happen). Delivery kinds (`"on":
"delivery"`, matched by `path` against the destination URL, asked by the Event Grid engine through
`Faults.for_delivery`): `timeout` (`delayMs`), `500`, `drop`.

Matching: `method` is a regular expression matched against the whole verb, `path` one searched in the path (or URL),
`principal` a principal's name, object id, client id or display name, `count` the most times the rule fires, `rate`
the chance it fires when everything else matches. Rules are tried in order and the first that matches fires. The
random draws come from `random.Random(seed)` and are made only for rules whose filters match and whose rate is
below 1, so one seed and one sequence of requests give one sequence of faults. Faults never touch the admin API; the
token endpoint only meets rules whose `path` pattern names `msi/token` (a token endpoint's 500 is real).

How a connection is reset: uvicorn does not hand the transport to the ASGI app, but its server keeps every live
connection's protocol (`server_state.connections`), each knowing its transport and the (client, server) addresses
that uvicorn also puts in the request's scope. The matching transport's socket gets `SO_LINGER` (on, 0 s) and is
aborted: the kernel sends an RST and the client sees "connection reset by peer" (azure-core: ServiceResponseError).
"""

from __future__ import annotations

import asyncio
import copy
import re
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import TYPE_CHECKING, Any

from sandbox import arm

if TYPE_CHECKING:
    from starlette.requests import Request

    from sandbox.server import Sandbox
    from sandbox.state import State

REQUEST_KINDS = ("500", "503", "429", "reset", "slow", "lroFailed")
DELIVERY_KINDS = ("timeout", "500", "drop")
TOKEN_PATH = "/msi/token"


@dataclass(frozen=True)
class Fault:
    """A fault that fired: what to do, and which rule said so."""

    kind: str
    rule: int
    delay_ms: int = 0
    retry_after: int | None = None
    code: str | None = None
    message: str | None = None


_RULE_FIELDS = {  # JSON name -> attribute
    "kind": "kind",
    "on": "on",
    "rate": "rate",
    "method": "method",
    "path": "path",
    "principal": "principal",
    "count": "count",
    "delayMs": "delay_ms",
    "retryAfter": "retry_after",
    "code": "code",
    "message": "message",
}


@dataclass
class Rule:
    kind: str
    on: str = "request"  # "request" | "delivery"
    rate: float = 1.0
    method: str | None = None
    path: str | None = None
    principal: str | None = None
    count: int | None = None
    delay_ms: int = 0
    retry_after: int | None = None
    code: str | None = None
    message: str | None = None
    id: int = 0
    fired: int = 0
    _method: re.Pattern[str] | None = field(default=None, repr=False)
    _path: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], rule_id: int) -> Rule:
        if not isinstance(data, dict):
            raise ValueError(f"a fault rule is an object, not {data!r}")
        unknown = set(data) - set(_RULE_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault rule fields {sorted(unknown)}; valid: {sorted(_RULE_FIELDS)}")
        rule = cls(**{_RULE_FIELDS[k]: v for k, v in data.items()}, id=rule_id)
        rule.kind = str(rule.kind)
        kinds = DELIVERY_KINDS if rule.on == "delivery" else REQUEST_KINDS
        if rule.on not in ("request", "delivery"):
            raise ValueError(f"fault rule 'on' must be 'request' or 'delivery', not {rule.on!r}")
        if rule.kind not in kinds:
            raise ValueError(f"unknown {rule.on} fault kind {rule.kind!r}; valid: {list(kinds)}")
        rule.rate = float(rule.rate)
        if not 0 <= rule.rate <= 1:
            raise ValueError(f"fault rule rate must be between 0 and 1, not {rule.rate}")
        if rule.count is not None and int(rule.count) < 0:
            raise ValueError("fault rule count must not be negative")
        try:
            rule._method = re.compile(rule.method, re.IGNORECASE) if rule.method else None
            rule._path = re.compile(rule.path, re.IGNORECASE) if rule.path else None
        except re.error as exc:
            raise ValueError(f"fault rule pattern is not a valid regular expression: {exc}") from exc
        return rule

    def to_json(self) -> dict[str, Any]:
        out = {name: getattr(self, attr) for name, attr in _RULE_FIELDS.items() if getattr(self, attr) is not None}
        return {"id": self.id, **out, "fired": self.fired}

    def spent(self) -> bool:
        return self.count is not None and self.fired >= int(self.count)

    def matches(self, method: str, where: str, principal_of: Callable[[], Any] | None) -> bool:
        if self._method is not None and not self._method.fullmatch(method):
            return False
        if self._path is not None and not self._path.search(where):
            return False
        if self.principal is not None:
            principal = principal_of() if principal_of else None
            if principal is None:
                return False
            wanted = self.principal.lower()
            names = (principal.object_id, principal.client_id, principal.name, principal.display_name)
            if wanted not in {str(n).lower() for n in names if n}:
                return False
        return True


class Faults:
    """The rule set, its seeded random source, and the history of what fired."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.seed = 0
        self.rng = Random(0)
        self.history: list[dict[str, Any]] = []
        self._next_id = 1
        self.active = False  # any request rule: the request path's fast check

    def configure(self, body: Any) -> dict[str, Any]:
        """`[rule, ...]` or `{"seed": n, "rules": [...], "append": false}`: replace (or extend) the rules and reseed."""
        if isinstance(body, list):
            body = {"rules": body}
        if not isinstance(body, dict):
            raise ValueError("expected a list of rules or {seed, rules, append}")
        unknown = set(body) - {"seed", "rules", "append"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; valid: ['append', 'rules', 'seed']")
        rules = [Rule.from_json(r, self._next_id + i) for i, r in enumerate(body.get("rules") or [])]
        self._next_id += len(rules)
        if not body.get("append"):
            self.rules, self.history = [], []
            self.seed = int(body.get("seed", 0))
            self.rng = Random(self.seed)
        elif "seed" in body:
            self.seed = int(body["seed"])
            self.rng = Random(self.seed)
        self.rules.extend(rules)
        self.active = any(r.on == "request" for r in self.rules)
        return self.to_json()

    def clear(self) -> None:
        self.rules, self.history, self.active = [], [], False
        self.seed, self.rng = 0, Random(0)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [r.to_json() for r in self.rules], "history": self.history}

    def _pick(
        self, on: str, method: str, where: str, principal_of: Callable[[], Any] | None, token: bool = False
    ) -> Rule | None:
        for rule in self.rules:
            if rule.on != on or rule.spent() or (rule.kind == "lroFailed" and method in ("GET", "HEAD")):
                continue  # (reads have no LRO to fail: they may meet the next rule)
            if token and (rule.path is None or TOKEN_PATH[1:] not in rule.path.lower()):
                continue  # the token endpoint is only hit by rules whose path names it
            if not rule.matches(method, where, principal_of):
                continue
            if rule.rate < 1 and self.rng.random() >= rule.rate:
                continue
            return rule
        return None

    def for_request(
        self, method: str, path: str, principal_of: Callable[[], Any] | None = None, *, token: bool = False
    ) -> Fault | None:
        """The fault for this request, if a rule fires. An `lroFailed` fault only counts once `applied`."""
        rule = self._pick("request", method, path, principal_of, token)
        if rule is None:
            return None
        fault = _fault(rule)
        if rule.kind != "lroFailed":
            self.applied(fault, method, path)
        return fault

    def for_delivery(self, destination_url: str) -> Fault | None:
        """Called by the event delivery engine before each attempt: `timeout` (wait `delay_ms`, then count the
        attempt as timed out), `500` (the destination answered 500) or `drop` (no attempt happens), or None."""
        rule = self._pick("delivery", "POST", destination_url, None)
        if rule is None:
            return None
        fault = _fault(rule)
        self.applied(fault, "POST", destination_url)
        return fault

    def applied(self, fault: Fault, method: str, where: str) -> None:
        rule = next((r for r in self.rules if r.id == fault.rule), None)
        if rule is not None:
            rule.fired += 1
        self.history.append({"rule": fault.rule, "kind": fault.kind, "method": method, "path": where})


def _fault(rule: Rule) -> Fault:
    return Fault(rule.kind, rule.id, int(rule.delay_ms or 0), rule.retry_after, rule.code, rule.message)


# -- what a request fault answers ----------------------------------------------------------------------------------


def error_for(
    fault: Fault, method: str, *, subscription: str | None, correlation_id: str, now: str, data_plane: bool
) -> arm.ArmError:
    """The ArmError a `500`, `503` or `429` fault answers with: ARM's bodies, or Key Vault's for its data plane."""
    headers = {}
    if fault.kind == "429":
        retry_after = 1 if fault.retry_after is None else fault.retry_after
        headers["Retry-After"] = str(retry_after)
        if data_plane:
            code = "Throttled"
            message = (
                "Request was not processed because too many requests were received. Reason: "
                "VaultRequestTypeLimitReached"
            )
        else:
            code = "SubscriptionRequestsThrottled"
            op = "read" if method in ("GET", "HEAD") else "delete" if method == "DELETE" else "write"
            message = (
                f"Number of '{op}' requests for subscription '{subscription or ''}' exceeded. Please try again after "
                f"'{retry_after}' seconds after additional tokens are available. Refer to "
                "https://aka.ms/arm-throttling for additional information."
            )
        return arm.ArmError(429, fault.code or code, fault.message or message, headers)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if fault.kind == "503":
        # Wording not verified against a captured answer; the code is ARM's.
        message = "The service is currently unavailable. Please try again later."
        return arm.ArmError(503, fault.code or "ServiceUnavailable", fault.message or message, headers)
    stamp = now.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
    message = (
        f"Encountered internal server error. Diagnostic information: timestamp '{stamp}', subscription id "
        f"'{subscription or ''}', tracking id '{correlation_id}', request correlation id '{correlation_id}'."
    )
    return arm.ArmError(500, fault.code or "InternalServerError", fault.message or message, headers)


async def reset_connection(sb: Sandbox, request: Request) -> bool:
    """Abort the request's TCP connection with an RST (see the module docstring). False if it was not found."""
    server = getattr(sb.listeners, "_server", None)  # the running uvicorn.Server (set when it started)
    client, local = request.scope.get("client"), request.scope.get("server")
    if server is None or client is None:
        return False
    for proto in list(server.server_state.connections):
        if tuple(proto.client or ()) == tuple(client) and tuple(proto.server or ()) == tuple(local or ()):
            transport = proto.transport
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            for _ in range(3):  # let connection_lost run, so uvicorn drops whatever the app sends next
                await asyncio.sleep(0)
            return True
    return False


# -- undoing a write whose LRO is made to fail ------------------------------------------------------------------


def snapshot(state: State) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return copy.deepcopy((state.resources, state.meta, state.tables))


def restore(state: State, snap: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]) -> None:
    resources, meta, tables = snap
    for key in list(state.resources):
        state.remove(key)
    for body in resources.values():
        state.put(body)
    state.meta.clear()
    state.meta.update(meta)
    for name in list(state.tables):
        if name not in tables:
            del state.tables[name]
    for name, content in tables.items():
        table = state.tables.setdefault(name, {})
        table.clear()
        table.update(content)
