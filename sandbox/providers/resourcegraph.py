"""Microsoft.ResourceGraph: `POST /providers/Microsoft.ResourceGraph/resources` over the sandbox's state.

Wire shape: Azure/azure-rest-api-specs specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/stable/
2021-03-01/resourcegraph.json (Resources; QueryRequest `{subscriptions, managementGroups, query, options: {$top,
$skip, $skipToken, resultFormat}}`, QueryResponse `{totalRecords, count, resultTruncated, $skipToken, data,
facets}`) and its example ResourcesBasicQuery.json (`type` lower-cased, `id` as written, `resultTruncated` the
string "false"). 2021-03-01 is what azure-mgmt-resourcegraph 8.0.1 sends; `data` is an object array.

Tables (Learn, "Azure Resource Graph table and resource type reference"): `resources` (tracked and child resources),
`resourcecontainers` (subscriptions and resource groups), `authorizationresources` (role assignments and
definitions). Rows carry `id, name, type, tenantId, kind, location, resourceGroup, subscriptionId, managedBy, sku,
plan, properties, tags, identity, zones, extendedLocation`; a row is visible to a caller who may read its type at
its scope (ARG answers only what the caller can read; by subscription here, then by group, then by resource).

Quota (Learn, "Guidance for throttled requests in Azure Resource Graph",
https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests): "a user can
send at most 15 queries within every 5-second window"; every answer carries `x-ms-user-quota-remaining` (int) and
`x-ms-user-quota-resets-after` (hh:mm:ss); groups of fewer than 300 subscriptions a query are recommended. Over
quota: 429 (the body and Retry-After below are # unverified). Paging: `$skipToken` in the answer while more rows
remain; page size `options.$top`, at most 1000 (resourcegraph.json QueryRequestOptions `$top` maximum 1000), default
1000 (Learn, "Working with large Azure resource data sets": "By default, Resource Graph limits any query to returning
only 1,000 records"). Every page takes one query of the quota: "When using ResourceGraph SDK, you need to handle
pagination by passing the skip token ... In this case, each paginated query you send takes one query quota" (the
throttling page above, section "Pagination"; MicrosoftDocs/azure-docs articles/governance/resource-graph/concepts/
guidance-for-throttled-requests.md).

Errors: a query outside the subset answers 400 BadRequest with `details` as Resource Graph does (a real answer quoted
in Azure/azure-powershell#13762: code BadRequest, message "Please provide below info when asking for support:
timestamp = ..., correlationId = ...", details [{InvalidQuery, "Query is invalid. Please refer to the documentation
for the Azure Resource Graph service and fix the error before retrying."}, {code, message, line,
characterPositionInLine, token}]; the second detail's code ParserFailure as quoted in
scautomation/AzureResourceGraph-Examples#2).

Role assignments (`authorizationresources`, type `microsoft.authorization/roleassignments`): rows as ARM lists them
(`properties.roleDefinitionId`, `principalId`, `principalType`, `scope` — the columns Microsoft's sample "Get role
assignments with key properties" reads, MicrosoftDocs/azure-docs articles/governance/resource-graph/includes/
samples-by-category/query/authorization-resources-role-assignments-key-properties.md; the rest as ARM answers, #
unverified), only those the caller may read ("The queries used in this article only return role assignments or
custom roles that you have permissions to read": Learn, "Troubleshoot Azure RBAC limits"). Which scopes relative to
the query's subscriptions: `options.authorizationScopeFilter` (resourcegraph.json 2022-10-01 and later:
AtScopeAndBelow by default, AtScopeAndAbove, AtScopeExact, AtScopeAboveAndBelow; "Set authorization scope ... to At,
above and below" to see assignments above, the same Learn page); above a subscription are its management groups
and the root `/`, whose rows have no subscriptionId (that page's queries keep `id startswith "/subscriptions"` to
leave them out). Earlier api-versions have no such option: it is ignored there, AtScopeAndBelow (# unverified).
Subscription rows of `resourcecontainers` carry `properties.managementGroupAncestorsChain`, `{name, displayName}`
nearest group first (Microsoft's samples "Count of subscriptions per management group" (`mgParent[0].name`) and
"List all management group ancestors for a specified subscription", includes/samples-by-category/
management-groups.md).

Replication lag: Resource Graph is updated from ARM's change notifications, not at once ("Resource Graph ... data
is updated ... within seconds" — Learn, "Overview of Azure Resource Graph"; the bot must not verify a fix through
it). `resource_graph_lag_seconds` (sandbox clock; 0 by default) keeps a resource written less than that long ago as
the previous query saw it (absent if no query had seen it).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox import arm, kql
from sandbox.arm import ArmError

if TYPE_CHECKING:
    from sandbox.server import Sandbox
    from sandbox.state import Operation

__all__ = ["API_VERSIONS", "PATH", "install"]

PATH = "/providers/Microsoft.ResourceGraph/resources"
API_VERSIONS = ("2019-04-01", "2020-04-01-preview", "2021-03-01", "2022-10-01", "2024-04-01")
CONTAINER_TYPES = ("microsoft.resources/subscriptions", "microsoft.resources/subscriptions/resourcegroups")
AUTHORIZATION_TYPES = ("microsoft.authorization/roleassignments", "microsoft.authorization/roledefinitions")
_TYPES = {"microsoft.resources/resourcegroups": "microsoft.resources/subscriptions/resourcegroups"}
NOT_HELD = ("microsoft.insights/diagnosticsettings",)  # what Resource Graph does not index (the bot reads it per vault)
MAX_TOP, DEFAULT_TOP = 1000, 1000
SCOPE_FILTERS = ("AtScopeAndBelow", "AtScopeAndAbove", "AtScopeExact", "AtScopeAboveAndBelow")
KEPT = 32  # result snapshots kept for paging
RESULTS_TTL = 60.0  # seconds a query's rows are reused while nothing is written (a management group move is not)
_numbers = itertools.count(1)


class _Graph:
    """One sandbox's Resource Graph: the replicated view (with lag), quota windows and paging snapshots."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.seen: dict[str, dict[str, Any]] = {}  # lower id -> the body as last replicated
        self.pending: dict[str, float] = {}  # lower id -> sandbox time its last write replicates
        self.quota: dict[str, tuple[float, int]] = {}  # object id -> (window start, queries used)
        self.snapshots: OrderedDict[int, tuple[str, list[dict[str, Any]]]] = OrderedDict()
        self.rows: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}  # lower id -> (stamp, row)
        # A query's rows while nothing was written, for the pages asked by `$skip` (each a query of its own): Azure
        # answers those from its index; recomputing 100,000 rows a page here would measure the sandbox, not the bot.
        self.results: OrderedDict[str, tuple[tuple[int, int, int], float, list[dict[str, Any]]]] = OrderedDict()

    def reset(self) -> None:
        self.seen.clear()
        self.pending.clear()
        self.quota.clear()
        self.snapshots.clear()
        self.rows.clear()
        self.results.clear()

    def on_operation(self, op: Operation) -> None:
        lag = self.sb.state.settings.resource_graph_lag_seconds
        if lag > 0:
            self.pending[op.resource_id.lower()] = self.sb.state.clock.timestamp() + lag

    # -- the replicated view -------------------------------------------------------------------------------------
    def bodies(self) -> list[dict[str, Any]]:
        state, now = self.sb.state, self.sb.state.clock.timestamp()
        pending = {k: due for k, due in self.pending.items() if due > now}
        self.pending = pending
        out = []
        for key, body in state.resources.items():
            if key in pending:
                old = self.seen.get(key)
                if old is not None:
                    out.append(old)
                continue
            self.seen[key] = body
            out.append(body)
        for key in [k for k in self.seen if k not in state.resources]:
            if key in pending:
                out.append(self.seen[key])
            else:
                del self.seen[key]
        return out

    def row(self, body: dict[str, Any]) -> dict[str, Any]:
        """What Resource Graph holds of a resource: ARM's GET answer (the provider's view of the stored body)."""
        key = str(body["id"]).lower()
        rt = arm.REGISTRY.get(str(body.get("type", "")).lower())
        derived = rt is not None and type(rt).view is not arm.ResourceType.view
        # Resource Graph is an index built ahead of the query: a row is kept while its body is the same object and,
        # for a view computed from other state (a disk's owner VM), while no write happened anywhere since.
        stamp = (id(body), len(self.sb.state.operations) if derived else 0)
        cached = self.rows.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        if derived and rt is not None:
            body = rt.view(self._call, body)
        rid = str(body["id"])
        parts = rid.split("/")
        sub = parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""
        group = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
        row = {
            "id": rid,
            "name": body.get("name"),
            "type": _TYPES.get(str(body.get("type", "")).lower(), str(body.get("type", "")).lower()),
            "tenantId": self.sb.state.tenant_id,
            "kind": body.get("kind", ""),
            "location": str(body.get("location", "")).replace(" ", "").lower(),
            "resourceGroup": group.lower(),
            "subscriptionId": sub,
            "managedBy": body.get("managedBy", ""),
            "sku": body.get("sku"),
            "plan": body.get("plan"),
            "properties": body.get("properties"),
            "tags": body.get("tags"),
            "identity": body.get("identity"),
            "zones": body.get("zones"),
            "extendedLocation": body.get("extendedLocation"),
        }
        self.rows[key] = (stamp, row)
        return row

    @property
    def _call(self) -> arm.Call:
        """A GET at the newest api-version (the body ARM answers today), without the running sandbox: views that
        would allocate runtime services (a vault's data-plane port) answer what is stored."""
        state = self.sb.state
        path = arm.ArmPath("Microsoft.ResourceGraph/resources", "collection", "")
        return arm.Call(state, path, "GET", self.sb.base_url, "", "9999-12-31", {}, None, {}, "")

    def tables(
        self, principal: Any, subscriptions: list[str] | None, scope_filter: str = "AtScopeAndBelow"
    ) -> dict[str, list[dict[str, Any]]]:
        wanted = {s.lower() for s in subscriptions} if subscriptions else None
        visible = _Visibility(self.sb, principal)
        tables: dict[str, list[dict[str, Any]]] = {
            "resources": [],
            "resourcecontainers": [],
            "authorizationresources": [],
        }
        above = self._above(wanted) if "Above" in scope_filter else set()
        below = scope_filter.endswith("Below")
        for body in self.bodies():
            row = self.row(body)
            sub = row["subscriptionId"].lower()
            kind = row["type"]
            if kind in AUTHORIZATION_TYPES:
                scope = str((row.get("properties") or {}).get("scope") or "").lower().rstrip("/") or "/"
                if not sub:  # a management group's or the root's: above subscriptions only
                    if (wanted is None or scope in above) and visible.at(row, scope):
                        tables["authorizationresources"].append(row)
                    continue
                if (wanted is not None and sub not in wanted) or (not below and scope != f"/subscriptions/{sub}"):
                    continue
                table = "authorizationresources"
            elif not sub or (wanted is not None and sub not in wanted) or kind in NOT_HELD:
                continue
            elif kind in CONTAINER_TYPES:
                table = "resourcecontainers"
            else:
                table = "resources"
            if visible(row):
                tables[table].append(row)
        for sub_body in self.sb.state.subscriptions.values():
            sid = str(sub_body["subscriptionId"])
            if wanted is not None and sid.lower() not in wanted:
                continue
            row = {
                "id": sub_body["id"],
                "name": sub_body.get("displayName"),
                "type": "microsoft.resources/subscriptions",
                "tenantId": self.sb.state.tenant_id,
                "subscriptionId": sid,
                "resourceGroup": "",
                "location": "",
                "properties": {
                    "state": sub_body.get("state", "Enabled"),
                    "managementGroupAncestorsChain": self._chain(sid),
                },
                "tags": sub_body.get("tags") or {},
            }
            if visible(row):
                tables["resourcecontainers"].append(row)
        return tables

    def _above(self, wanted: set[str] | None) -> set[str]:
        """The scopes above the query's subscriptions: their management groups (lower-cased ids) and the root."""
        out = {"/"}
        for sub in wanted or ():
            out.update(self.sb.hooks.scopes_above(f"/subscriptions/{sub}"))
        return out

    def _chain(self, subscription_id: str) -> list[dict[str, str]]:
        """A subscription's management groups, nearest first, as `{name, displayName}`."""
        chain = []
        for gid in self.sb.hooks.scopes_above(f"/subscriptions/{subscription_id}"):
            group = self.sb.state.get(gid) or {}
            name = gid.rsplit("/", 1)[-1]
            display = (group.get("properties") or {}).get("displayName") or name
            chain.append({"name": str(group.get("name") or name), "displayName": str(display)})
        return chain

    # -- quota -----------------------------------------------------------------------------------------------------
    def take_quota(self, principal: Any) -> dict[str, str]:
        s = self.sb.state.settings
        now = self.sb.throttler.now()
        start, used = self.quota.get(principal.object_id, (now, 0))
        if now - start >= s.resource_graph_window_seconds:
            start, used = now, 0
        resets = max(0.0, start + s.resource_graph_window_seconds - now)
        clock = f"{int(resets // 3600):02}:{int(resets % 3600 // 60):02}:{math.ceil(resets % 60):02}"
        if used >= s.resource_graph_quota and s.throttle:
            headers = {
                "x-ms-user-quota-remaining": "0",
                "x-ms-user-quota-resets-after": clock,
                "Retry-After": str(max(1, math.ceil(resets))),  # unverified
            }
            raise ArmError(
                429,
                "RateLimiting",  # unverified
                _support_message(self.sb),
                headers,
                details=[
                    {
                        "code": "RateLimiting",  # unverified
                        "message": "Client application has been throttled and should not attempt to repeat the "
                        "request until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-"
                        "throttling for help.",
                    }
                ],
            )
        used += 1
        self.quota[principal.object_id] = (start, used)
        remaining = max(0, s.resource_graph_quota - used)
        return {"x-ms-user-quota-remaining": str(remaining), "x-ms-user-quota-resets-after": clock}

    # -- one query -------------------------------------------------------------------------------------------------
    def answer(self, principal: Any, body: dict[str, Any], version: str = "2021-03-01") -> dict[str, Any]:
        options = body.get("options") or {}
        scope_filter = "AtScopeAndBelow"
        if version >= "2022-10-01" and options.get("authorizationScopeFilter") is not None:
            scope_filter = str(options["authorizationScopeFilter"])
            if scope_filter not in SCOPE_FILTERS:
                raise _bad_request(  # unverified: the wording of Azure's refusal of another value
                    self.sb,
                    "InvalidParameter",
                    f"The value of 'authorizationScopeFilter' must be one of {', '.join(SCOPE_FILTERS)}.",
                )
        top = options.get("$top", DEFAULT_TOP)
        skip = int(options.get("$skip") or 0)
        if not isinstance(top, int) or not 1 <= top <= MAX_TOP:
            raise _bad_request(self.sb, "InvalidParameter", f"The value of '$top' must be between 1 and {MAX_TOP}.")
        text = str(body.get("query") or "")
        fingerprint = json.dumps([principal.object_id, text, body.get("subscriptions"), scope_filter], sort_keys=True)
        token = options.get("$skipToken")
        rows: list[dict[str, Any]] | None = None
        if token:
            number, skip = _read_token(self.sb, token)
            snap = self.snapshots.get(number)
            if snap is not None and snap[0] == fingerprint:
                rows = snap[1]
        else:
            number = next(_numbers)
        state = self.sb.state
        stamp = (state.writes, len(state.operations), len(state.subscriptions))
        if rows is None and not self.pending:
            hit = self.results.get(fingerprint)
            if hit is not None and hit[0] == stamp and time.monotonic() - hit[1] < RESULTS_TTL:
                rows = hit[2]
        if rows is None:
            try:
                rows = kql.run(text, self.tables(principal, body.get("subscriptions"), scope_filter))
            except kql.KqlError as e:
                raise _parser_failure(self.sb, e) from e
            if not self.pending:
                self.results[fingerprint] = (stamp, time.monotonic(), rows)
                while len(self.results) > KEPT:
                    self.results.popitem(last=False)
        chunk = rows[skip : skip + top]
        out: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(chunk),
            "resultTruncated": "false",
            "facets": [],
            "data": chunk,  # serialized at once, never changed: no copy
        }
        if skip + len(chunk) < len(rows):
            self.snapshots[number] = (fingerprint, rows)
            self.snapshots.move_to_end(number)
            while len(self.snapshots) > KEPT:
                self.snapshots.popitem(last=False)
            out["$skipToken"] = base64.b64encode(f"{number}|{skip + len(chunk)}".encode()).decode()
        else:
            self.snapshots.pop(number, None)
        return out


class _Visibility:
    """Whether the caller may read a row: `{type}/read` at its subscription, else its group, else itself."""

    def __init__(self, sb: Sandbox, principal: Any) -> None:
        self.sb, self.oid = sb, principal.object_id
        self.cache: dict[tuple[str, str], bool] = {}

    def __call__(self, row: dict[str, Any]) -> bool:
        kind = row["type"]
        action = "Microsoft.Resources/subscriptions/read" if kind in CONTAINER_TYPES[:1] else f"{kind}/read"
        sub = f"/subscriptions/{row['subscriptionId']}".lower()
        for scope in (sub, f"{sub}/resourcegroups/{row.get('resourceGroup') or ''}".lower()):
            if scope.endswith("/"):
                continue
            hit = self.cache.get((scope, action))
            if hit is None:
                hit = self.cache[(scope, action)] = self.sb.allowed(self.oid, action, scope)
            if hit:
                return True
        return str(row["id"]).lower().count("/") > 4 and self.sb.allowed(self.oid, action, str(row["id"]))

    def at(self, row: dict[str, Any], scope: str) -> bool:
        """Whether the caller may read a row held at a scope above subscriptions (a management group, the root)."""
        action = f"{row['type']}/read"
        hit = self.cache.get((scope, action))
        if hit is None:
            hit = self.cache[(scope, action)] = self.sb.allowed(self.oid, action, scope)
        return hit


def _support_message(sb: Sandbox) -> str:
    from sandbox.state import new_id

    return (
        f"Please provide below info when asking for support: timestamp = {sb.state.clock.iso()}, correlationId = "
        f"{new_id()}."
    )


def _bad_request(sb: Sandbox, code: str, message: str) -> ArmError:
    return ArmError(400, "BadRequest", _support_message(sb), details=[{"code": code, "message": message}])


def _parser_failure(sb: Sandbox, error: kql.KqlError) -> ArmError:
    return ArmError(
        400,
        "BadRequest",
        _support_message(sb),
        details=[
            {
                "code": "InvalidQuery",
                "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service "
                "and fix the error before retrying.",
            },
            {
                "code": "ParserFailure",
                "message": error.message,
                "line": error.line,
                "characterPositionInLine": error.column,
                "token": error.token,
            },
        ],
    )


def _read_token(sb: Sandbox, raw: Any) -> tuple[int, int]:
    try:
        number, offset = base64.b64decode(str(raw).encode()).decode().split("|")
        return int(number), int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad_request(sb, "InvalidSkipToken", "The $skipToken is not valid.") from exc  # unverified


def install(sb: Sandbox) -> None:
    graph = _Graph(sb)
    sb.state.on_reset(graph.reset)
    sb.state.on_operation(graph.on_operation)
    sb.resource_graph = graph  # type: ignore[attr-defined]

    async def handle(sandbox: Sandbox, request: Request) -> Response:
        principal = request.state.principal
        version = request.query_params.get("api-version")
        if version not in API_VERSIONS:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'global' and API version '{version}' for type "
                f"'resources'. The supported api-versions are '{', '.join(API_VERSIONS)}'. The supported locations "
                "are ''.",
            )
        headers = graph.take_quota(principal)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise ArmError(400, "InvalidRequestContent", f"The request content was invalid: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise _bad_request(sb, "InvalidParameter", "The request must have a query.")  # unverified
        try:
            out = graph.answer(principal, body, str(version))
        except ArmError as e:
            e.headers = {**headers, **e.headers}
            raise
        return JSONResponse(out, 200, headers)

    sb.hooks.post(PATH, handle)
