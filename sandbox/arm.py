"""The ARM core every provider uses: resource-id paths, the error envelope, the type registry, LROs and paging.

A provider subclasses `ResourceType`, sets `type` and `api_versions`, overrides the verbs it supports, and calls
`register()`. The dispatcher (`handle`) does what ARM does for every type: api-version check, existence of the
subscription / group / parent, RBAC, locks, LRO answers, paging, and one `Operation` per successful write.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sandbox.state import Operation, State, new_id


def copy_body(value: Any) -> Any:
    """A deep copy of a stored body for an answer: what `copy.deepcopy` gives for JSON (dicts, lists, strings,
    numbers, booleans, null), at a fraction of its CPU (no memo, no dispatch by type); anything else by deepcopy.
    Every GET and list item of the sandbox is copied, so its views can change their copy freely."""
    kind = type(value)
    if kind is dict:
        return {k: copy_body(v) for k, v in value.items()}
    if kind is list:
        return [copy_body(v) for v in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})

LOCK_TYPE = "microsoft.authorization/locks"


class ArmError(Exception):
    """An ARM error answer: `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def not_found(path: ArmPath) -> ArmError:
    short = path.type.split("/", 1)[1] if "/" in path.type else path.type
    where = f" under resource group '{path.resource_group}'" if path.resource_group else ""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{path.type.split('/')[0]}/{short}/{path.name}'{where} was not found. For more details "
        "please go to https://aka.ms/ARMResourceNotFoundFix",
    )


@dataclass
class ArmPath:
    """A parsed ARM request path.

    kind is item | collection | action. `parent` is where the resource lives: the subscription or group for a
    top-level resource, the owning resource for a child (`.../vaults/v/keys/k`) or the scope of an extension
    resource (`{scope}/providers/Microsoft.Authorization/locks/l`). `id` is the item's id as the caller spelled it.
    """

    type: str
    kind: str
    parent: str
    name: str | None = None
    action: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    id: str = ""
    child: bool = False


def parse_path(path: str, method: str) -> ArmPath:
    """Parse an ARM path. A POST on `{resource}/{word}` is the action `word` on that resource."""
    segs = [s for s in path.split("/") if s]
    if not segs or segs[0].lower() not in ("subscriptions", "providers"):
        raise ArmError(404, "InvalidRequestUri", f"The request URI '{path}' is not valid.")
    pos, scope, sub, rg = 0, "", None, None
    if segs[0].lower() == "subscriptions":
        if len(segs) == 1:
            return ArmPath("Microsoft.Resources/subscriptions", "collection", "")
        sub = segs[1]
        scope = f"/subscriptions/{sub}"
        if len(segs) == 2:
            return ArmPath("Microsoft.Resources/subscriptions", "item", "", sub, subscription=sub, id=scope)
        pos = 2
        if segs[2].lower() == "resourcegroups":
            if len(segs) == 3:
                return ArmPath("Microsoft.Resources/resourceGroups", "collection", scope, subscription=sub)
            rg = segs[3]
            rg_id = f"{scope}/resourceGroups/{rg}"
            if len(segs) == 4:
                return ArmPath("Microsoft.Resources/resourceGroups", "item", scope, rg, None, sub, rg, rg_id)
            if len(segs) == 5 and segs[4].lower() != "providers":
                # group-level collections outside providers: /resources
                return ArmPath(
                    f"Microsoft.Resources/{segs[4]}", "collection", rg_id, subscription=sub, resource_group=rg
                )
            scope, pos = rg_id, 4
        elif segs[2].lower() != "providers":
            # subscription-level collections outside providers: /resources, /locations, /tagNames
            return ArmPath(f"Microsoft.Resources/{segs[2]}", "collection", scope, subscription=sub)
    result: ArmPath | None = None
    if sub and rg is None and segs[pos].lower() == "providers" and len(segs) in (4, 5):
        # A resource provider itself (resources.json, Providers_Get / Providers_Register): GET .../providers/{ns},
        # POST .../providers/{ns}/register (its operation is {ns}/register/action).
        ns, pid = segs[3], f"{scope}/providers/{segs[3]}"
        if len(segs) == 4:
            return ArmPath(ns, "item", scope, ns, None, sub, None, pid)
        if method == "POST":
            return ArmPath(ns, "action", scope, ns, segs[4], sub, None, pid)
    while pos < len(segs):
        if segs[pos].lower() != "providers" or pos + 2 >= len(segs):
            raise ArmError(400, "InvalidResourceType", f"The resource path '{path}' is not valid.")
        ns = segs[pos + 1]
        pos += 2
        rtype = ns
        if ns.lower() == "microsoft.features" and pos + 2 < len(segs) and segs[pos].lower() == "providers":
            # Microsoft.Features names the provider a feature belongs to (features.json: .../providers/
            # Microsoft.Features/providers/{resourceProviderNamespace}/features/{featureName}).
            rtype, ns, pos = f"{ns}/providers", f"{ns}/providers/{segs[pos + 1]}", pos + 2
        elif pos < len(segs) and segs[pos].lower() == "providers":  # `/providers/{ns}/providers/...`: no type
            raise ArmError(400, "InvalidResourceType", f"The resource path '{path}' is not valid.")
        parent, first = scope, True
        while pos < len(segs) and segs[pos].lower() != "providers":
            rtype = f"{rtype}/{segs[pos]}"
            if pos + 1 == len(segs):
                result = ArmPath(rtype, "collection", parent, None, None, sub, rg, "", not first)
                pos += 1
                break
            name = segs[pos + 1]
            rid = f"{parent}/providers/{ns}/{segs[pos]}/{name}" if first else f"{parent}/{segs[pos]}/{name}"
            result = ArmPath(rtype, "item", parent, name, None, sub, rg, rid, not first)
            parent, first = rid, False
            pos += 2
        assert result is not None
        scope = result.id
    assert result is not None
    if method == "POST" and result.kind == "collection" and result.child:
        owner_type, _, action = result.type.rpartition("/")
        owner_parent, _, owner_name = result.parent.rpartition("/")
        owner_parent = owner_parent.rsplit("/", 1)[0]
        child = len(owner_type.split("/")) > 2
        if not child:
            owner_parent = owner_parent.rsplit("/providers/", 1)[0]
        return ArmPath(owner_type, "action", owner_parent, owner_name, action, sub, rg, result.parent, child)
    return result


@dataclass
class Call:
    """What a verb handler gets: the state, the caller, the parsed path, query and body."""

    state: State
    path: ArmPath
    method: str
    base_url: str
    url: str
    api_version: str
    query: dict[str, str]
    principal: Any
    claims: dict[str, Any]
    correlation_id: str
    body: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)
    sandbox: Any = None  # the running Sandbox (for runtime services such as vault listeners)

    def op_url(self, resource_id: str, kind: str, op_id: str, location: str = "global") -> str:
        ns = self.path.type.split("/")[0]
        sub = self.path.subscription or ""
        return (
            f"{self.base_url}/subscriptions/{sub}/providers/{ns}/locations/{location}/{kind}/{op_id}"
            f"?{urlencode({'api-version': self.api_version})}"
        )


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class ResourceType:
    """Base for one ARM resource type. Override the verbs the type supports; the rest answer as ARM does."""

    type: str = ""
    api_versions: tuple[str, ...] = ()
    lro: frozenset[str] = frozenset()  # verbs answered as LROs: "PUT", "PATCH", "DELETE", or an action name
    extension: bool = False  # lives at any scope (locks, tags, role assignments, diagnostic settings)
    singleton: bool = False  # a fixed sub-object at {resource}/{word} (a VM's instanceView): GET answers read()
    # Where a PUT/PATCH LRO's `Location` header points: ARM's operationResults URL, or the resource itself, as
    # DiskRP answers (azure-rest-api-specs, specification/compute/resource-manager/Microsoft.Compute/DiskRP/stable/
    # 2025-01-02/examples/diskExamples/Disk_Update_ChangeTier.json and diskEncryptionSetExamples/
    # DiskEncryptionSet_Update.json: 202 with `Location: .../disks/myDisk?api-version=...`, body
    # `provisioningState: Updating`; the 200 of the GET that follows says `Succeeded`).
    location_is_resource: bool = False
    # Whether an LRO answer carries Azure-AsyncOperation besides Location. Tags at a scope answer 202 with `location`
    # (.../operationresults/...) alone (azure-rest-api-specs, Microsoft.Resources/resources/stable/2025-04-01/examples/
    # PutTagsResource.json, PatchTagsResource.json).
    async_operation_header: bool = True

    def current(self, call: Call) -> dict[str, Any] | None:
        """The stored body a write acts on (None: a create). Virtual types (tags at a scope) override it."""
        return call.state.get(call.path.id) if call.path.id else None

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise not_found(call.path)
        return self.view(call, body)

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        return copy_body(body)

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        raise _method_not_allowed(call)

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        raise _method_not_allowed(call)

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        call.state.remove(existing["id"])
        return Answer(200)

    def attributes(self, call: Call) -> Mapping[tuple[str, str], tuple[str, ...]] | None:
        """The ABAC attributes role assignment conditions read for this request (sandbox/conditions.py): None for
        types no condition reads. Asked before the authorization check, so before the body is validated."""
        return None

    def parent_exists(self, call: Call) -> bool:
        """Whether what a child or location-scoped resource lives under exists (else ParentResourceNotFound).
        Types whose parent is not a stored resource (`.../locations/{l}`, a view over a provider table) override.
        An extension resource (a role assignment, a lock) may sit on any resource, stored or a view: its scope's
        own type says whether it exists. Role assignments at a key's scope (`.../vaults/{v}/keys/{k}`) are how Key
        Vault RBAC grants one key (Microsoft Learn, "Provide access to Key Vault keys, certificates, and secrets
        with Azure role-based access control", key scope role assignment)."""
        parent = call.path.parent
        if call.state.get(parent) is not None:
            return True
        if not self.extension:
            return False
        try:
            owner = lookup(parse_path(parent, "GET"))
        except ArmError:
            return False
        return owner.exists(call.state, parent)

    def exists(self, state: State, resource_id: str) -> bool:
        """Whether the resource with this id exists: stored resources are in the state; view types override."""
        return state.get(resource_id) is not None

    def list(self, call: Call) -> list[dict[str, Any]]:
        """Items of this type under the parent: a whole subscription or group, or one owner's children."""
        items = call.state.of_type(self.type, under=call.path.parent or None)
        if call.path.child:
            parent = call.path.parent.lower()
            items = (b for b in items if b["id"].lower().rsplit("/", 2)[0] == parent)
        return [self.view(call, b) for b in items]

    def action(self, call: Call, name: str, existing: dict[str, Any]) -> Answer:
        raise ArmError(404, "InvalidResourceType", f"The resource type '{self.type}' has no action '{name}'.")


def _method_not_allowed(call: Call) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The {call.method} method is not allowed for resource type '{call.path.type}'."
    )


REGISTRY: dict[str, ResourceType] = {}


def register(cls: type[ResourceType]) -> type[ResourceType]:
    """Class decorator: one instance per type, found by the dispatcher by lower-cased type."""
    REGISTRY[cls.type.lower()] = cls()
    return cls


# ARM's answers for a route no provider serves. Sources (public error output quoted in issues):
# - InvalidResourceNamespace "The resource namespace '<ns>' is invalid.": Azure/aci-connector-k8s#13,
#   JulianHayward/Azure-MG-Sub-Governance-Reporting#52. Its status, 400, is # unverified (no recorded status found).
# - InvalidResourceType, 404, "The resource type '<type>' could not be found in the namespace '<ns>' for api version
#   '<version>'.": JulianHayward/Azure-MG-Sub-Governance-Reporting#297 (StatusCode '404' with that code and text),
#   Azure/acs-engine#4037 (same text for 'roleAssignments'; wrapped as NotFound by a deployment).
# - NoRegisteredProviderFound, 400, for a served type at an api-version it does not serve: check_api_version below.


def lookup(path: ArmPath, api_version: str | None = None) -> ResourceType:
    rt = REGISTRY.get(path.type.lower())
    if rt is None:
        ns = path.type.split("/")[0]
        known = {t.split("/")[0] for t in REGISTRY}
        if ns.lower() not in known:
            raise ArmError(400, "InvalidResourceNamespace", f"The resource namespace '{ns}' is invalid.")
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{path.type.split('/', 1)[1]}' could not be found in the namespace '{ns}' for api "
            f"version '{api_version or ''}'.",
        )
    return rt


def tracked_location(call: Call, existing: dict[str, Any] | None) -> str:
    """The `location` of a PUT on a tracked resource, checked as ARM does: required, and a resource cannot move
    (the same name in another location is refused). Returns it as the caller wrote it."""
    body = call.body if isinstance(call.body, dict) else {}
    location = str(body.get("location") or "")
    if not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    wanted = location.replace(" ", "").lower()
    if existing is not None and wanted != existing["location"]:
        raise ArmError(
            409,
            "InvalidResourceLocation",
            f"The resource '{existing['name']}' already exists in location '{existing['location']}' in resource "
            f"group '{call.path.resource_group}'. A resource with the same name cannot be created in location "
            f"'{wanted}'. Please select a new resource name.",
        )
    return location


def check_api_version(rt: ResourceType, path: ArmPath, api_version: str | None) -> str:
    if not api_version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if rt.api_versions and api_version not in rt.api_versions:
        short = path.type.split("/", 1)[1] if "/" in path.type else path.type
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location 'global' and API version '{api_version}' for type "
            f"'{short}'. The supported api-versions are '{', '.join(sorted(rt.api_versions))}'. The supported "
            "locations are ''.",
        )
    return api_version


# -- locks, enforced here for every type ---------------------------------------------------------------------


def _ancestors(resource_id: str) -> list[str]:
    """The id itself and every scope above it (resource -> group -> subscription), lower-cased."""
    rid = resource_id.lower().rstrip("/")
    out = [rid]
    while True:
        if "/providers/" in rid:
            rid = rid.rsplit("/providers/", 1)[0]
        elif "/resourcegroups/" in rid:
            rid = rid.rsplit("/resourcegroups/", 1)[0]
        else:
            break
        out.append(rid)
    return out


def locks_over(state: State, resource_id: str, *, include_below: bool = False) -> list[dict[str, Any]]:
    scopes = set(_ancestors(resource_id))
    if not include_below:  # the locks at each scope above: an index lookup each, not a scan of every lock
        return [lock for scope in _ancestors(resource_id) for lock in state.at_scope(LOCK_TYPE, scope)]
    found = []
    for lock in state.of_type("Microsoft.Authorization/locks"):
        scope = lock["id"].lower().rsplit("/providers/microsoft.authorization/locks/", 1)[0]
        if scope in scopes or (include_below and scope.startswith(resource_id.lower().rstrip("/") + "/")):
            found.append(lock)
    return found


def enforce_locks(state: State, method: str, resource_id: str, rtype: str) -> None:
    if rtype.lower() == LOCK_TYPE:
        return
    deleting = method == "DELETE"
    for lock in locks_over(state, resource_id, include_below=deleting):
        level = lock["properties"]["level"]
        if deleting or level == "ReadOnly":
            scope = lock["id"].rsplit("/providers/Microsoft.Authorization/locks/", 1)[0]
            verb = "delete" if deleting else "write"
            raise ArmError(
                409,
                "ScopeLocked",
                f"The scope '{resource_id}' cannot perform {verb} operation because following scope(s) are locked: "
                f"'{scope}'. Please remove the lock and try again.",
            )


# -- LROs -----------------------------------------------------------------------------------------------------


def lro_answer(call: Call, resource_id: str, result: Answer, location: str = "global") -> Answer:
    """Turn a completed change into ARM's asynchronous answer: 202 + Azure-AsyncOperation + Location."""
    op_id = new_id()
    polls = call.state.settings.lro_in_progress_polls
    call.state.lros[op_id] = {
        "status": "Succeeded",
        "resourceId": resource_id,
        "method": call.method,
        "result": result.body,
        "resultStatus": result.status,
        "startTime": call.state.clock.iso(),
        "pollsLeft": polls,
    }
    rt = REGISTRY.get(call.path.type.lower(), ResourceType)
    on_resource = call.method in ("PUT", "PATCH") and rt.location_is_resource
    if polls > 0 and call.method in ("PUT", "PATCH"):
        call.state.lro_busy[resource_id.lower()] = op_id  # the resource reads provisioningState Updating meanwhile
    headers = {
        "Location": (
            f"{call.base_url}{resource_id}?{urlencode({'api-version': call.api_version})}"
            if on_resource
            else call.op_url(resource_id, "operationResults", op_id, location)
        ),
        "retry-after-ms": str(call.state.settings.lro_delay_ms),
    }
    if rt.async_operation_header:
        headers["Azure-AsyncOperation"] = call.op_url(resource_id, "operations", op_id, location)
    return Answer(202, None, headers)


def updating(state: State, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A resource read while a PUT/PATCH LRO on it runs says `provisioningState: Updating` (DiskRP's examples, see
    `ResourceType.location_is_resource`); each such read is a poll too, as the SDK's Location polling reads it."""
    op_id = state.lro_busy.get(resource_id.lower())
    op = state.lros.get(op_id) if op_id else None
    if op is None or op["pollsLeft"] <= 0:
        state.lro_busy.pop(resource_id.lower(), None)
        return body
    op["pollsLeft"] -= 1
    if op["pollsLeft"] <= 0:
        state.lro_busy.pop(resource_id.lower(), None)
    if isinstance(body.get("properties"), dict) and "provisioningState" in body["properties"]:
        body["properties"]["provisioningState"] = "Updating"
    return body


def operation_status(state: State, op_id: str, results: bool) -> Answer:
    op = state.lros.get(op_id)
    if op is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
    headers = {"retry-after-ms": str(state.settings.lro_delay_ms)}
    if op["pollsLeft"] > 0:
        op["pollsLeft"] -= 1
        if op["pollsLeft"] <= 0:
            state.lro_busy.pop(str(op["resourceId"]).lower(), None)
        if results:
            return Answer(202, None, headers)
        return Answer(200, {"name": op_id, "status": "InProgress", "startTime": op["startTime"]}, headers)
    if results:
        if op["status"] != "Succeeded":
            raise ArmError(500, op.get("errorCode", "InternalOperationError"), op.get("errorMessage", "failed"))
        if op["result"] is None:
            return Answer(200 if op["method"] == "POST" else 204)
        return Answer(200, op["result"])
    body: dict[str, Any] = {
        "name": op_id,
        "status": op["status"],
        "startTime": op["startTime"],
        "endTime": state.clock.iso(),
    }
    if op["status"] != "Succeeded":
        body["error"] = {"code": op.get("errorCode", "InternalOperationError"), "message": op.get("errorMessage", "")}
    return Answer(200, body)


OperationHook = Callable[[Call, str, str], None]


def record(call: Call, operation_name: str, resource_id: str, status_code: int, status: str = "Succeeded") -> None:
    call.state.record(
        Operation(
            operation_name=operation_name,
            resource_id=resource_id,
            status=status,
            http_method=call.method,
            url=call.url,
            principal=call.principal.to_dict() if hasattr(call.principal, "to_dict") else {},
            claims=call.claims,
            correlation_id=call.correlation_id,
            time=call.state.clock.iso(),
            status_code=status_code,
        )
    )
