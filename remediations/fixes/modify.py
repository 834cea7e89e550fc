"""An Azure Policy Modify effect's operations as Cryptward changes: planned like any fix, never weakening a setting.

    changes = plan(policy, resource, ctx)   # FixDeclined when an operation would weaken, or cannot be done

Semantics (Learn, "Azure Policy definitions modify effect", https://learn.microsoft.com/azure/governance/policy/concepts/
effect-modify): `addOrReplace` sets the property or tag even when it exists with another value; `add` sets it when
absent (an existing different value is left alone: a conflict, # unverified); `remove` removes it, and "only tags can be
removed"; an operation whose `condition` is false is skipped ("not applicable"); an operation that cannot be applied
falls back to `conflictEffect` (audit: the resource is reported and the operation is not run; Cryptward cannot deny,
so deny is reported too; disabled: not run). `roleDefinitionIds` name the roles Azure's remediation identity needs:
Cryptward writes with its own role (infra/cryptward-role.json), never with roles a definition names.

Cryptward's own rules over Azure's: an operation on an alias runs only when its value is fixed by the definition and
its assignment (not read from the resource, whose tags anyone with tag rights writes), and when `GUARDS` holds a
never-weaken rule for that alias and the rule accepts the change (purge protection off, public network access
Enabled, a firewall that allows by default ... are refused with the reason); an alias without a rule is refused, since
Cryptward cannot show the change is not a weakening. Tags are written through the Tags API (Merge, or Delete for
`remove`); an alias through a PATCH of the resource carrying the whole top-level property it sits in (so a nested
change keeps its siblings).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from remediations.changes import MODIFY_FIX, Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.policy import aliases
from remediations.policy.fields import Context, tag_name
from remediations.policy.model import Modify, Policy
from remediations.resources import TAGS_API, name_of

NAME = MODIFY_FIX  # the fix name Modify changes carry (Change.fixes)

Rule = Callable[[Any, Any], str | None]  # (before, after) -> why this weakens, or None


def _stays_true(before: Any, after: Any) -> str | None:
    return None if after is True or (before is not True and after is not False) else "turns a protection off"


def _never(*weak: str) -> Rule:
    lowered = {w.lower() for w in weak}

    def rule(before: Any, after: Any) -> str | None:
        if str(after).lower() in lowered and str(before).lower() not in lowered:
            return f"sets {after!r}, which opens what {before!r} kept closed"
        return None

    return rule


def _ranked(*order: str) -> Rule:
    """Values from weakest to strongest: a change may only go up."""
    rank = {v.lower(): i for i, v in enumerate(order)}

    def rule(before: Any, after: Any) -> str | None:
        was, now = rank.get(str(before).lower(), -1), rank.get(str(after).lower())
        if now is None:
            return f"{after!r} is not one of {', '.join(order)}"
        return f"{after!r} is weaker than {before!r}" if now < was else None

    return rule


def _not_lower(before: Any, after: Any) -> str | None:
    if not isinstance(after, int) or isinstance(after, bool):
        return f"{after!r} is not a number"
    return f"lowers {before} to {after}" if isinstance(before, int) and after < before else None


def _set_once(before: Any, after: Any) -> str | None:
    """A reference Cryptward may set but not redirect: replacing one target with another routes access elsewhere."""
    return None if before in (None, "") or str(before).lower() == str(after).lower() else "points it elsewhere"


V, D, DES, VM = aliases.VAULT, aliases.DISK, aliases.DES, aliases.VM
# alias (lower-cased) -> the never-weaken rule for a Modify operation on it. Sources: the property descriptions in
# azure-rest-api-specs (keyvault.json VaultProperties, disk.json DiskProperties/NetworkAccessPolicy/DataAccessAuthMode).
GUARDS: dict[str, Rule] = {
    f"{V}/enablePurgeProtection".lower(): _stays_true,
    f"{V}/enableSoftDelete".lower(): _stays_true,
    f"{V}/enableRbacAuthorization".lower(): _stays_true,
    f"{V}/softDeleteRetentionInDays".lower(): _not_lower,
    f"{V}/publicNetworkAccess".lower(): _never("Enabled"),
    f"{V}/networkAcls.defaultAction".lower(): _never("Allow"),
    f"{V}/networkAcls.bypass".lower(): _never("AzureServices"),
    f"{V}/enabledForDeployment".lower(): _never("True"),
    f"{V}/enabledForTemplateDeployment".lower(): _never("True"),
    f"{V}/enabledForDiskEncryption".lower(): _never("True"),
    f"{D}/publicNetworkAccess".lower(): _never("Enabled"),
    f"{D}/networkAccessPolicy".lower(): _ranked("AllowAll", "AllowPrivate", "DenyAll"),
    f"{D}/dataAccessAuthMode".lower(): _ranked("None", "AzureActiveDirectory"),
    f"{D}/diskAccessId".lower(): _set_once,
    f"{DES}/rotationToLatestKeyVersionEnabled".lower(): _stays_true,
    f"{VM}/securityProfile.encryptionAtHost".lower(): _stays_true,
}


def plan(policy: Policy, resource: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    """The changes that run `policy.modify`'s operations on `resource`; FixDeclined when one cannot run."""
    modify = policy.modify
    assert modify is not None
    rid, rtype = str(resource["id"]), str(resource.get("type", "")).lower()
    outer = Context(resource, ctx.now)
    tags: dict[str, Any] = {}
    removed: dict[str, Any] = {}
    props: dict[str, tuple[tuple[str, ...], Any, Any]] = {}  # alias -> (body path, before, after)
    for op in modify.operations:
        if op.condition is not None and op.condition.fn(outer) is not True:
            continue  # Learn: "Not applicable" operations are skipped
        value = op.value.fn(outer) if op.value is not None else None
        tag = tag_name(op.field)
        if tag is not None:
            current = _tag(resource, tag)
            if op.operation == "remove":
                if current is not None:
                    removed[tag] = current
            elif op.operation == "add" and current is not None and current != value:
                _conflict(modify, rid, f"tag {tag!r} exists with {current!r}; `add` does not replace it")
            elif current != value:
                tags[tag] = value
            continue
        if op.operation == "remove":
            _conflict(modify, rid, f"{op.field}: only tags can be removed (Learn, Modify effect)", weakening=True)
        if op.value is not None and not op.value.const:
            # Never a confused deputy: a value read from the resource (a tag anyone with tag rights sets) must not
            # become a setting its writer could not set themselves.
            raise FixDeclined(
                SkipReason.WEAKENING,
                f"{op.field}: its value is read from the resource, not fixed by the definition and its assignment; "
                "Cryptward sets a property only to a value its operator chose",
            )
        alias = aliases.lookup(op.field).get(rtype)
        if alias is None or aliases.STAR in alias.path or not alias.path or alias.path[0] not in ("properties",):
            _conflict(modify, rid, f"{op.field} cannot be written on {rtype or 'this resource'} by Cryptward")
        assert alias is not None
        before = _get(resource, alias.path)
        if op.operation == "add" and before is not None and before != value:
            _conflict(modify, rid, f"{op.field} is {before!r}; `add` does not replace it")
        rule = GUARDS.get(op.field.lower())
        if rule is None:
            raise FixDeclined(
                SkipReason.WEAKENING,
                f"{op.field}: Cryptward has no never-weaken rule for this alias, so it does not set it to {value!r}",
            )
        why = rule(before, value) if before != value else None
        if before is True and value is not True:
            why = why or "turns off what is on"  # the applier refuses any True turned False
        if why:
            raise FixDeclined(SkipReason.WEAKENING, f"{op.field} {why}: Cryptward never weakens a setting")
        if before != value:
            props[op.field] = (alias.path, before, value)
    return [*_tag_changes(rid, resource, tags, removed), *_property_change(rid, rtype, resource, props)]


def _conflict(modify: Modify, rid: str, why: str, *, weakening: bool = False) -> None:
    effect = modify.conflict_effect
    reason = SkipReason.WEAKENING if weakening else SkipReason.CONFLICT
    raise FixDeclined(reason, f"{name_of(rid)}: {why} (conflictEffect {effect}: the operations are not run)")


def _tag(resource: Mapping[str, Any], tag: str) -> Any:
    tags = resource.get("tags") or {}
    return next((v for k, v in tags.items() if str(k).lower() == tag.lower()), None)


def _get(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, Mapping):
            return None
        body = next((v for k, v in body.items() if str(k).lower() == key.lower()), None)
    return body


def _tag_changes(rid: str, resource: Mapping[str, Any], tags: dict[str, Any], removed: dict[str, Any]) -> list[Change]:
    path = f"{rid}/providers/Microsoft.Resources/tags/default"
    out = []
    if tags:
        listed = ", ".join(f"{k}={v}" for k, v in tags.items())
        out.append(
            Change(
                resource_id=rid,
                summary=f"Tag {name_of(rid)} with {listed}, as the Modify policy says.",
                operation=Operation("PATCH", path, TAGS_API, {"operation": "Merge", "properties": {"tags": tags}}),
                before={f"properties.tags.{k}": _tag(resource, k) for k in tags},
                after={f"properties.tags.{k}": v for k, v in tags.items()},
            )
        )
    if removed:
        body = {"operation": "Delete", "properties": {"tags": removed}}
        out.append(
            Change(
                resource_id=rid,
                summary=f"Remove the tag(s) {', '.join(removed)} from {name_of(rid)}, as the Modify policy says.",
                operation=Operation("PATCH", path, TAGS_API, body),
                before={f"properties.tags.{k}": v for k, v in removed.items()},
                after={f"properties.tags.{k}": None for k in removed},
            )
        )
    return out


def _property_change(
    rid: str, rtype: str, resource: Mapping[str, Any], props: dict[str, tuple[tuple[str, ...], Any, Any]]
) -> list[Change]:
    if not props:
        return []
    body: dict[str, Any] = {"properties": {}}
    for path, _before, after in props.values():
        top = path[1]
        if top not in body["properties"]:
            current = _get(resource, path[:2])
            body["properties"][top] = copy.deepcopy(current) if isinstance(current, Mapping) else {}
        if len(path) == 2:
            body["properties"][top] = after
            continue
        target = body["properties"][top]
        for key in path[2:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = after
    api = next(v for t, v in aliases.API_VERSIONS.items() if t.lower() == rtype)
    listed = "; ".join(f"{'.'.join(p[1:])}: {b!r} -> {a!r}" for p, b, a in props.values())
    return [
        Change(
            resource_id=rid,
            summary=f"Set {listed} on {name_of(rid)}, as the Modify policy says.",
            operation=Operation("PATCH", rid, api, body),
            before={".".join(p): b for p, b, _ in props.values()},
            after={".".join(p): a for p, _, a in props.values()},
        )
    ]


__all__ = ["GUARDS", "NAME", "plan"]
