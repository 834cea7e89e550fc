"""Microsoft.Authorization/locks: management locks at any scope (subscription, resource group, resource).

The locks are plain resources here; their enforcement (ScopeLocked on writes and deletes under a lock) is in the
ARM core (`arm.enforce_locks`), which never applies to the lock type itself, so locks can always be removed.

List semantics (ARM): a list at a scope answers the locks that apply to it, i.e. those at the scope and above it
(inherited), plus those on anything below it. `$filter=atScope()` keeps only the locks at the scope or above it.
"""

from __future__ import annotations

from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register

LOCK_API = ("2015-01-01", "2016-09-01", "2017-04-01", "2020-05-01")
LEVELS = {"cannotdelete": "CanNotDelete", "readonly": "ReadOnly"}
_LOCKS = "/providers/Microsoft.Authorization/locks/"
_BAD_NAME_CHARS = set("<>%&:\\?/")


def lock_scope(lock_id: str) -> str:
    """The scope a lock sits on (the id before `/providers/Microsoft.Authorization/locks/{name}`)."""
    return lock_id[: lock_id.lower().rindex(_LOCKS.lower())]


def relation(item_scope: str, target: str) -> str | None:
    """How an item's scope relates to a target scope: "at", "above" (it covers the target), "below" or None."""
    item, tgt = item_scope.lower().rstrip("/"), target.lower().rstrip("/")
    if item == tgt:
        return "at"
    if tgt.startswith(item + "/"):
        return "above"
    if item.startswith(tgt + "/"):
        return "below"
    return None


@register
class ManagementLocks(ResourceType):
    type = "Microsoft.Authorization/locks"
    api_versions = LOCK_API
    extension = True

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise ArmError(404, "LockNotFound", f"The lock '{call.path.name}' could not be found.")
        return self.view(call, body)

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        name = call.path.name or ""
        if len(name) > 260 or any(c in _BAD_NAME_CHARS for c in name):
            raise ArmError(
                400,
                "LockNameInvalid",
                f"The lock name '{name}' is invalid. A lock name can have at most 260 characters and cannot contain "
                "'<', '>', '%', '&', ':', '\\', '?', '/'.",
            )
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties")
        if not isinstance(props, dict) or not props.get("level"):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: 'Required property 'level' not found "
                "in JSON. Path 'properties'.'.",
            )
        level = LEVELS.get(str(props["level"]).lower())
        if level is None:
            raise ArmError(
                400,
                "LockLevelInvalid",
                f"The lock level '{props['level']}' is invalid. The supported lock levels are 'CanNotDelete' and "
                "'ReadOnly'.",
            )
        notes = props.get("notes")
        if notes is not None and len(str(notes)) > 512:
            raise ArmError(400, "LockNotesTooLong", "The lock notes can have at most 512 characters.")
        stored_props: dict[str, Any] = {"level": level}
        if notes is not None:
            stored_props["notes"] = str(notes)
        owners = props.get("owners")
        if owners:
            stored_props["owners"] = [{"applicationId": o.get("applicationId")} for o in owners if isinstance(o, dict)]
        stored = {
            "properties": stored_props,
            "id": f"{call.path.parent}{_LOCKS}{name}",
            "type": self.type,
            "name": name,
        }
        if existing is not None:  # keep the id as first spelled
            stored["id"], stored["name"] = existing["id"], existing["name"]
        call.state.put(stored)
        return Answer(200 if existing else 201, self.view(call, stored))

    def list(self, call: Call) -> list[dict[str, Any]]:
        target = call.path.parent
        flt = (call.query.get("$filter") or "").strip()
        if flt and flt.replace(" ", "").lower() != "atscope()":
            raise ArmError(
                400,
                "InvalidFilterInQueryString",
                f"The filter '{flt}' is not valid. The supported filter is 'atScope()'.",
            )
        wanted = {"at", "above"} if flt else {"at", "above", "below"}
        out = []
        for lock in call.state.of_type(self.type):
            if relation(lock_scope(lock["id"]), target) in wanted:
                out.append(self.view(call, lock))
        return out
