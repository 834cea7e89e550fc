"""A read-only ARM over HTTPS that answers with recorded Azure bodies, verbatim, for the bot's real SDK clients.

Part (b) and (c) of "Real Azure I/II" hold the engine to real bodies: the bot reads them exactly as it reads Azure
(`remediations.azure.Azure` -> the pinned SDK clients and their models -> `as_body` -> the reader's `cryptward`
blocks -> the policies), so whatever the SDK's deserialisation or the reader drops or keeps counts too. This server
is not the sandbox (the sandbox rewrites what it stores: a real body would not survive a PUT into it); it only
replays.

What it answers to a GET (the path compared case-insensitively, as ARM does; the api-version is not checked, the
same recorded body answers at any version):

- a resource id -> the recorded body with that id;
- a recorded list's path -> that list, as recorded;
- a collection of vaults, disks, disk encryption sets, VMs, snapshots, scale sets or images (under a subscription or
  resource group) with no recorded list -> `{"value": [...]}` of the recorded bodies of that type under that scope:
  the estate replayed is exactly the recorded resources;
- role assignments under or above a scope -> the recorded assignments (`atScope()`: at the scope and above);
- anything else (locks, diagnostic settings, keys, ... that nobody recorded) -> 404 `NotRecorded`, so the bot meets
  "cannot read", never an invented answer.

Writes answer 405: a replay is read-only (the tests plan, they never apply).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

COLLECTIONS = {
    "microsoft.keyvault/vaults",
    "microsoft.compute/disks",
    "microsoft.compute/diskencryptionsets",
    "microsoft.compute/virtualmachines",
    "microsoft.compute/snapshots",
    "microsoft.compute/virtualmachinescalesets",
    "microsoft.compute/images",
}
_COLLECTION = re.compile(r"^(/subscriptions/[^/]+(?:/resourcegroups/[^/]+)?)/providers/([^/]+/[^/]+)$")
_ROLE_LIST = "/providers/microsoft.authorization/roleassignments"


def scope_of_assignment(ra: dict[str, Any]) -> str:
    scope = (ra.get("properties") or {}).get("scope")
    if scope:
        return str(scope).lower().rstrip("/") or "/"
    return str(ra["id"]).lower().rsplit(_ROLE_LIST + "/", 1)[0] or "/"


def _above_or_at(scope: str, target: str) -> bool:
    """`scope` is `target` or one of its ancestors ("/" is the root of everything)."""
    return scope == "/" or target == scope or target.startswith(scope + "/")


@dataclass
class Estate:
    """The recorded bodies one replay serves: resources by id, recorded lists by path, role assignments."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    assignments: list[dict[str, Any]] = field(default_factory=list)

    def add(self, body: Any, list_path: str | None = None) -> None:
        """One recorded body: a resource, or a list (`{"value": [...]}`) recorded at `list_path`."""
        if isinstance(body, dict) and isinstance(body.get("value"), list):
            items = [dict(i) for i in body["value"]]
            if list_path and "/roleassignments" not in list_path.lower():
                self.lists[list_path.lower().rstrip("/")] = items
            for item in items:
                self.add(item)
            return
        if str(body.get("type") or "").lower() == "microsoft.authorization/roleassignments":
            self.assignments.append(body)
            return
        rid = "/" + str(body["id"]).strip("/")
        self.bodies[rid.lower()] = body

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        path = unquote(path).lower().rstrip("/")
        if path in self.bodies:
            return 200, self.bodies[path]
        if path in self.lists:
            return 200, {"value": self.lists[path]}
        if path.endswith(_ROLE_LIST):
            scope = path[: -len(_ROLE_LIST)] or "/"
            at_scope = "atscope()" in query.get("$filter", "").lower()
            picked = [
                ra
                for ra in self.assignments
                if _above_or_at(scope_of_assignment(ra), scope)
                or (not at_scope and scope_of_assignment(ra).startswith(scope + "/"))
            ]
            return 200, {"value": picked}
        m = _COLLECTION.match(path)
        if m and m.group(2) in COLLECTIONS:
            prefix, kind = m.group(1) + "/", m.group(2)
            picked = [
                b
                for rid, b in self.bodies.items()
                if rid.startswith(prefix) and str(b.get("type") or "").lower() == kind
            ]
            return 200, {"value": picked}
        return 404, {"error": {"code": "NotRecorded", "message": f"no recorded answer for GET {path}"}}


def estate_of(recordings: Iterable[dict[str, Any]], transform: Callable[[Any], Any] | None = None) -> Estate:
    """An estate from conformance recordings (`{"request", "body", ...}`); `transform` rewrites each body first."""
    estate = Estate()
    for rec in recordings:
        body = transform(rec["body"]) if transform else rec["body"]
        estate.add(body, rec["request"]["path"])
    return estate


class _Handler(BaseHTTPRequestHandler):
    estate: Estate

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", "replay")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self._send(*self.server.estate.answer(url.path, query))  # type: ignore[attr-defined]

    def _refuse(self) -> None:
        self._send(405, {"error": {"code": "ReadOnlyReplay", "message": "the replay of recordings is read-only"}})

    do_PUT = do_PATCH = do_POST = do_DELETE = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticToken:
    """A credential for the replay: any bearer token will do (nothing is checked)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("replay", 4102444800)


@contextmanager
def serving(estate: Estate, certs: tuple[Path, Path, Path]) -> Iterator[str]:
    """Serve `estate` over HTTPS on a free loopback port; yields the base URL. `certs`: (ca, cert, key)."""
    _, cert, key = certs
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.estate = estate  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
