"""The related resources AuditIfNotExists / DeployIfNotExists existence checks look at, read once per run.

    related = read_related(azure, reading, policies)     # after the reader, before evaluation
    related.of(resource_id, policy.existence)            # the related bodies, or why they could not be read

Only resources whose `if` holds are looked at (Azure evaluates the existence check only then), and each collection is
read once however many policies and resources ask for it: a vault's diagnostic settings are one list call
(`{vault}/providers/Microsoft.Insights/diagnosticSettings`: ARM has no cross-resource list of them), reused when the
reader already filled the vault's `cryptward.diagnosticSettings`; a child type (`{vm}/extensions`,
`{vault}/privateEndpointConnections`) is one list call per parent. A related type Cryptward does not read, or a list
that fails, leaves the check undecided: the finding says "could not read", never compliant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remediations.azure import Azure
from remediations.errors import AzureAccessError, ConditionError
from remediations.policy import aliases
from remediations.policy.existence import Existence
from remediations.policy.model import Policy
from remediations.resources import DIAGNOSTIC_SETTINGS_API, VAULT_API, VM_API

Progress = Callable[[str], None]
Bodies = Sequence[Mapping[str, Any]]

# The api-version each related collection is listed with (the parent type's, for a child type).
LIST_API = {
    aliases.DIAGNOSTIC_SETTINGS.lower(): DIAGNOSTIC_SETTINGS_API,
    aliases.VM_EXTENSION.lower(): VM_API,
    aliases.VAULT_PEC.lower(): VAULT_API,
}


@dataclass
class Related:
    """What the existence checks found: per ARM collection path (lower-cased), the bodies or why not read."""

    lists: dict[str, list[dict[str, Any]] | str] = field(default_factory=dict)
    calls: int = 0

    def of(self, primary: Mapping[str, Any], existence: Existence) -> Bodies | str:
        where = existence.where(primary)
        found = self.lists.get(where.path.lower())
        if found is None:
            return f"the related {where.related_type} were not read"
        return found


def read_related(
    azure: Azure,
    resources: Mapping[str, Mapping[str, Any]],
    policies: Sequence[Policy],
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Related:
    """Read, once each, the related collections the existence checks of `policies` need for `resources`."""
    related = Related()
    checks = [p for p in policies if p.existence is not None]
    if not checks:
        return related
    for body in resources.values():
        for policy in checks:
            assert policy.existence is not None
            try:
                if not (policy.applies_to(body) and policy.condition.matches(policy.subject(body), now=now)):
                    continue
            except ConditionError:
                continue  # the evaluation reports it
            _read(azure, body, policy.existence, related, progress)
    return related


def _read(
    azure: Azure, body: Mapping[str, Any], existence: Existence, related: Related, progress: Progress | None
) -> None:
    where = existence.where(body)
    key = where.path.lower()
    if key in related.lists:
        return
    rtype = where.related_type.lower()
    known = (body.get(aliases.CRYPTWARD) or {}).get("diagnosticSettings")
    if rtype == aliases.DIAGNOSTIC_SETTINGS.lower() and isinstance(known, list):
        related.lists[key] = known  # the reader already listed them
        return
    api = LIST_API.get(rtype)
    if api is None or where.kind not in ("extension", "child"):
        related.lists[key] = f"Cryptward does not read {where.related_type} ({where.kind} scope) for existence checks"
        return
    if progress:
        progress(f"{where.related_type} of {body.get('name')}")
    try:
        related.calls += 1
        related.lists[key] = [dict(item) for item in azure.list(where.path, api)]
    except AzureAccessError as e:
        related.lists[key] = f"{e.code}: {e.message}".rstrip(": ")


__all__ = ["Related", "read_related"]
