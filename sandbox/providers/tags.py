"""Microsoft.Resources/tags/default: the whole tag set of a subscription, resource group or resource.

Not a resource of its own: every verb reads or rewrites the `tags` of the body underneath, so a later GET of the
resource shows them. PUT replaces the set, PATCH merges / replaces / selectively deletes, DELETE removes all tags.
Writes answer as ARM's long-running operations (202 + Location), as azure-mgmt-resource 26's `begin_*` expect, and
each one is recorded as its own `Microsoft.Resources/tags/write` (or `/delete`) operation by the core.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers.resources import RESOURCES_API

TAGS_API = tuple(v for v in RESOURCES_API if v >= "2019-10-01")
MAX_TAGS = 50
MAX_NAME = 512
MAX_NAME_STORAGE = 128
MAX_VALUE = 256
_RESERVED = set("<>%&\\?/")


def _has_bad_chars(name: str) -> bool:
    return any(c in _RESERVED or ord(c) < 32 or ord(c) == 127 for c in name)


def validate_tags(tags: Any, target_type: str = "") -> dict[str, str]:
    """ARM's checks on a tag set (names: reserved characters, length; values: length; count)."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ArmError(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'Error converting value to type "
            "'System.Collections.Generic.Dictionary`2[System.String,System.String]'. Path 'properties.tags'.'.",
        )
    bad = [k for k in tags if _has_bad_chars(str(k))]
    if bad:
        raise ArmError(
            400,
            "InvalidTagNameCharacters",
            f"The tag names '{', '.join(bad)}' have reserved characters '<,>,%,&,\\,?,/' or control characters.",
        )
    limit = MAX_NAME_STORAGE if target_type.lower() == "microsoft.storage/storageaccounts" else MAX_NAME
    long_names = [k for k in tags if len(str(k)) > limit]
    if long_names:
        raise ArmError(
            400,
            "InvalidTagName",
            f"Tag key too large. Following tag name '{', '.join(long_names)}' exceeded the maximum length. Maximum "
            f"allowed length for tag name - '{limit}' characters.",
        )
    long_values = [str(v) for v in tags.values() if v is not None and len(str(v)) > MAX_VALUE]
    if long_values:
        raise ArmError(
            400,
            "InvalidTagValueLength",
            f"Tag value too large. Following tag value '{', '.join(long_values)}' exceeded the maximum length. "
            f"Maximum allowed length for tag value - '{MAX_VALUE}' characters.",
        )
    out = {str(k): "" if v is None else str(v) for k, v in tags.items()}
    _check_count(out)
    return out


def _check_count(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise ArmError(
            400,
            "InvalidTagCount",
            f"The number of tags '{len(tags)}' exceeds the maximum allowed number of tags '{MAX_TAGS}'.",
        )


def _find(tags: dict[str, str], name: str) -> str | None:
    """The existing key matching `name` (tag names are case-insensitive)."""
    lower = name.lower()
    return next((k for k in tags if k.lower() == lower), None)


@register
class TagsAtScope(ResourceType):
    type = "Microsoft.Resources/tags"
    api_versions = TAGS_API
    extension = True
    lro = frozenset({"PUT", "PATCH", "DELETE"})
    async_operation_header = False  # 202 + Location alone, as Microsoft's examples (sandbox/arm.py)

    # -- the body underneath ----------------------------------------------------------------------------------
    @staticmethod
    def _is_subscription(call: Call) -> bool:
        return call.path.parent.lower().rstrip("/") == f"/subscriptions/{call.path.subscription}".lower()

    def _target(self, call: Call) -> dict[str, Any] | None:
        if not call.path.parent or (call.path.name or "").lower() != "default":
            return None
        if self._is_subscription(call):
            return call.state.subscriptions.get((call.path.subscription or "").lower())
        return call.state.get(call.path.parent)

    def _store(self, call: Call, target: dict[str, Any], tags: dict[str, str]) -> None:
        updated = copy.deepcopy(target)  # never mutate a stored body in place
        updated["tags"] = tags
        if self._is_subscription(call):
            call.state.subscriptions[(call.path.subscription or "").lower()] = updated
        else:
            call.state.put(updated)

    def _view(self, call: Call, tags: dict[str, str]) -> dict[str, Any]:
        return {
            "id": call.path.id,
            "name": "default",
            "type": "Microsoft.Resources/tags",
            "properties": {"tags": dict(tags)},
        }

    def current(self, call: Call) -> dict[str, Any] | None:
        target = self._target(call)
        return None if target is None else self._view(call, target.get("tags") or {})

    def _require_target(self, call: Call) -> dict[str, Any]:
        if (call.path.name or "").lower() != "default":
            raise ArmError(
                400,
                "InvalidResourceName",
                f"The tags resource name '{call.path.name}' is invalid. The only supported name is 'default'.",
            )
        target = self._target(call)
        if target is None:
            raise ArmError(404, "ResourceNotFound", f"The scope '{call.path.parent}' was not found.")
        return target

    # -- verbs ----------------------------------------------------------------------------------------------------
    def read(self, call: Call) -> dict[str, Any]:
        return self._view(call, self._require_target(call).get("tags") or {})

    def _tags_in(self, call: Call) -> Any:
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties")
        if not isinstance(props, dict) or "tags" not in props:
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: 'Required property 'properties' "
                "not found in JSON.'.",
            )
        return props["tags"]

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        target = self._require_target(call)
        tags = validate_tags(self._tags_in(call), str(target.get("type", "")))
        self._store(call, target, tags)
        return Answer(200, self._view(call, tags))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        target = self._require_target(call)
        body = call.body if isinstance(call.body, dict) else {}
        operation = str(body.get("operation") or "")
        given = validate_tags(self._tags_in(call), str(target.get("type", "")))
        tags = dict(target.get("tags") or {})
        op = operation.lower()
        if op == "replace":
            tags = given
        elif op == "merge":
            for name, value in given.items():
                tags[_find(tags, name) or name] = value
        elif op == "delete":
            for name, value in given.items():
                key = _find(tags, name)
                if key is not None and (value == "" or tags[key] == value):
                    del tags[key]
        else:
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: 'Error converting value "
                f"\"{operation}\" to type 'TagsPatchOperation'. Path 'operation'.'. The supported operations are "
                "'Merge', 'Replace' and 'Delete'.",
            )
        _check_count(tags)
        self._store(call, target, tags)
        return Answer(200, self._view(call, tags))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        target = self._require_target(call)
        self._store(call, target, {})
        return Answer(200)
