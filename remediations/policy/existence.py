"""AuditIfNotExists / DeployIfNotExists existence checks: `then.details` compiled, and judged over related resources.

    check = compile_existence(details, scope, path)     # at load
    check.where(primary)                                 # which related resources to read (engine/related.py reads)
    check.satisfied(primary, related, now=now)           # True: a related resource qualifies, the effect is not fired

Semantics (Learn, "Azure Policy effect: auditIfNotExists", https://learn.microsoft.com/azure/governance/policy/concepts/
effect-audit-if-not-exists, and "deployIfNotExists", .../effect-deploy-if-not-exists): `type` is the related type; a
type underneath the `if` resource is queried within its scope, any other type in its resource group (or
`resourceGroupName`), or subscription with `existenceScope: Subscription`; `name` picks one related resource by exact
name (`parent/?` for any last segment); `existenceCondition` is evaluated on each related resource, and one on which
it holds satisfies the check (without it, any related resource does); in it `field` reads the related resource and
`[field()]` the resource the `if` matched. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remediations.errors import ConditionError
from remediations.policy import aliases
from remediations.policy.conditions import Condition, compile_condition
from remediations.policy.expressions import Expr, compile_value
from remediations.policy.fields import Context, Scope

SCOPES = ("ResourceGroup", "Subscription")
# An extension resource type Azure reads at the scope of the evaluated resource itself ({id}/providers/<type>).
EXTENSION_TYPES = frozenset({aliases.DIAGNOSTIC_SETTINGS.lower()})


@dataclass(frozen=True)
class Where:
    """Which related resources an existence check reads for one primary resource. `kind` is `extension`
    ({id}/providers/<type>), `child` ({id}/<last type segment>), `group` or `subscription` (a list of the type in
    that scope); `path` is the ARM collection to list."""

    kind: str
    related_type: str
    path: str


@dataclass(frozen=True)
class Existence:
    """A compiled `then.details` of AuditIfNotExists / DeployIfNotExists."""

    related_type: str
    name: Expr | None
    resource_group: Expr | None
    scope: str  # ResourceGroup or Subscription (existenceScope)
    condition: Condition | None

    def where(self, primary: Mapping[str, Any]) -> Where:
        rid = str(primary.get("id", "")).rstrip("/")
        ptype = str(primary.get("type", "")).lower()
        rtype = self.related_type
        if rtype.lower() in EXTENSION_TYPES:
            return Where("extension", rtype, f"{rid}/providers/{rtype}")
        if ptype and rtype.lower().startswith(ptype + "/") and rtype.count("/") == ptype.count("/") + 1:
            return Where("child", rtype, f"{rid}/{rtype.rsplit('/', 1)[1]}")
        parts = rid.split("/")
        sub = f"/subscriptions/{parts[2]}" if len(parts) > 2 else ""
        if self.scope == "Subscription":
            return Where("subscription", rtype, f"{sub}/providers/{rtype}")
        group = self.resource_group.fn(Context(primary)) if self.resource_group else None
        group = group or (parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else "")
        return Where("group", rtype, f"{sub}/resourceGroups/{group}/providers/{rtype}")

    def satisfied(
        self, primary: Mapping[str, Any], related: Sequence[Mapping[str, Any]], *, now: datetime | None = None
    ) -> bool:
        """True when one of `related` (the resources of `related_type` where the check looks) has the wanted name and
        meets the existence condition."""
        outer = Context(primary, now)
        wanted = self.name.fn(outer) if self.name is not None else None
        for candidate in related:
            if wanted is not None and not _named(candidate, str(wanted)):
                continue
            if self.condition is None or self.condition.matches(candidate, now=now, primary=outer):
                return True
        return False


def _named(resource: Mapping[str, Any], wanted: str) -> bool:
    """The related resource's name against `details.name`: exact (case-insensitive, as ARM names are), comparing the
    last segment of a nested `parent/child` name; `?` as the last segment matches any."""
    last = wanted.rsplit("/", 1)[-1]
    return last == "?" or str(resource.get("name", "")).rsplit("/", 1)[-1].lower() == last.lower()


def compile_existence(details: Any, scope: Scope, path: str) -> Existence:
    """Compile `then.details`; raises `ConditionError` naming the field."""
    if not isinstance(details, dict):
        raise ConditionError(path, "AuditIfNotExists / DeployIfNotExists needs details with a type")
    keys = {k.lower(): k for k in details}
    rtype = details.get(keys.get("type", ""))
    if not isinstance(rtype, str) or "/" not in rtype:
        raise ConditionError(f"{path}.type", f"needs the related resource type, got {rtype!r}")
    known = next((t for t in aliases.RELATED_TYPES if t.lower() == rtype.lower()), None)
    raw_scope = str(details.get(keys.get("existencescope", ""), "ResourceGroup"))
    exist_scope = next((s for s in SCOPES if s.lower() == raw_scope.lower()), None)
    if exist_scope is None:
        raise ConditionError(f"{path}.existenceScope", f"{raw_scope!r} is not valid", SCOPES)
    name = compile_value(details[keys["name"]], scope, f"{path}.name") if "name" in keys else None
    group_key = keys.get("resourcegroupname")
    group = compile_value(details[group_key], scope, f"{path}.resourceGroupName") if group_key else None
    condition = None
    if "existencecondition" in keys:
        condition = compile_condition(
            details[keys["existencecondition"]],
            parameters={n: v for n, v in scope.parameters.values()},
            resource_type=known,  # None: a type Cryptward does not read, whose aliases select nothing
            path=f"{path}.{keys['existencecondition']}",
            policy=scope.policy,
            related=True,
        )
    return Existence(known or rtype, name, group, exist_scope, condition)
