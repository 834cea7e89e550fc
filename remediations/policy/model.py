"""What the loader produces: `Policy` (one loaded policy), the definitions it refused, and their parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from remediations.errors import ConditionError, Problem
from remediations.policy import aliases, dataplane
from remediations.policy.conditions import Condition
from remediations.policy.existence import Existence
from remediations.policy.expressions import Expr

# Effects that evaluate nothing on their own resource: the definition loads and reports nothing.
INACTIVE = "Disabled"
_KEYS_DATA = dataplane.MODE.lower()


@dataclass(frozen=True)
class FixRef:
    """The fix a policy applies: a registered fix name and its parameters."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class References:
    seed: str | None = None
    cis: str | None = None
    azure_policy: str | None = None


@dataclass(frozen=True)
class Operation:
    """One Modify operation, validated at load: `addOrReplace`, `add` or `remove` of an alias or a tag."""

    operation: str
    field: str
    value: Expr | None  # None for remove
    condition: Expr | None  # the operation applies only when this evaluates to true


@dataclass(frozen=True)
class Modify:
    """A Modify effect's `details` (https://learn.microsoft.com/azure/governance/policy/concepts/effect-modify)."""

    operations: tuple[Operation, ...]
    role_definition_ids: tuple[str, ...]
    conflict_effect: str  # audit (default), deny or disabled


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy. `condition` holding means the resource is non-compliant."""

    id: str
    title: str
    description: str
    severity: str
    resource_type: str | None  # None: an Azure definition whose `if` does not pin one type
    condition: Condition
    parameters: Mapping[str, Any]
    fix: FixRef | None
    mode: str
    irreversible: bool
    references: References
    source: Path
    effect: str | None = None  # an Azure definition's effect (Audit, Deny, AuditIfNotExists, Modify, ...)
    related: Mapping[str, Any] | None = None  # AuditIfNotExists/DeployIfNotExists `then.details`, as written
    immutable: bool = False  # the checked property cannot be changed once the resource exists
    azure_mode: str | None = None  # an Azure definition's mode: Indexed or All (None: a policy.yaml)
    not_scopes: tuple[str, ...] = ()  # the assignment's notScopes: resources under them are not evaluated
    enforced: bool = True  # False: the assignment's enforcementMode is DoNotEnforce (reported, never fixed)
    modify: Modify | None = None  # a Modify effect's operations, validated (run as fixes: not yet)
    message: str | None = None  # the assignment's non-compliance message
    existence: Existence | None = None  # AuditIfNotExists/DeployIfNotExists: the existence check, compiled

    def subject(self, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        """What the definition evaluates for `resource`: a `Microsoft.KeyVault.Data` definition sees a key as the
        data plane presents it (policy/dataplane.py); every other definition sees the body itself."""
        return dataplane.evaluated(resource) if self.azure_mode == _KEYS_DATA else resource

    def applies_to(self, resource: Mapping[str, Any]) -> bool:
        if self.effect == INACTIVE:
            return False
        resource = self.subject(resource)
        kind = resource.get("type")
        kind = kind.lower() if isinstance(kind, str) else ""
        if self.resource_type is not None and kind != self.resource_type.lower():
            return False
        if self.azure_mode == "indexed" and kind not in aliases.INDEXED_TYPES:
            return False
        if self.not_scopes:
            rid = str(resource.get("id", "")).lower()
            if any(rid == s or rid.startswith(s + "/") for s in self.not_scopes):
                return False
        return True

    def noncompliant(
        self,
        resource: Mapping[str, Any],
        *,
        now: datetime | None = None,
        related: Sequence[Mapping[str, Any]] | None = None,
    ) -> bool:
        """True when the policy applies to `resource`, its `if` condition holds and, for an existence check, no
        `related` resource (those of `existence.related_type` where the check looks) satisfies it. An existence check
        without `related` raises `ConditionError`: what was not read decides nothing."""
        if not (self.applies_to(resource) and self.condition.matches(self.subject(resource), now=now)):
            return False
        if self.existence is None:
            return True
        if related is None:
            raise ConditionError("policyRule.then.details", f"the related {self.existence.related_type} were not read")
        return not self.existence.satisfied(resource, related, now=now)


@dataclass(frozen=True)
class Refused:
    """An Azure Policy definition that did not load, with every problem found in it."""

    id: str
    source: Path
    problems: tuple[Problem, ...]

    def __str__(self) -> str:
        return f"{self.id} ({self.source}): " + "; ".join(
            f"{p.field or '(document)'}: {p.message}" for p in self.problems
        )


class Policies(list[Policy]):
    """The loaded policies, and `refused`: the Azure definitions that did not load (the others run)."""

    def __init__(self, policies: Sequence[Policy] = (), refused: Sequence[Refused] = ()) -> None:
        super().__init__(policies)
        self.refused: tuple[Refused, ...] = tuple(refused)
