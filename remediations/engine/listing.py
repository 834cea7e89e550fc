"""The sweep's lists: one paged list per policy type and scope (through Resource Graph when the settings choose it,
engine/inventory.py), locks, snapshots and role assignments per subscription, the subscriptions in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.azure import Azure
from remediations.engine import inventory, machines, rgroles
from remediations.engine.found import (
    DES,
    DISK,
    KEY,
    VAULT,
    VM,
    Found,
    Needs,
    Progress,
    Scope,
    list_json,
    scope_of,
)
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import (
    LOCKS_API,
    ROLE_ASSIGNMENTS_API,
    VAULT_API,
    VM_API,
)


def graph_lists(
    azure: Azure, scope: Scope, needs: Needs, step: Progress, notes: list[str]
) -> dict[str, dict[str, dict[str, dict[str, Any]]]] | None:
    """The policy types of every subscription through Resource Graph when the settings choose it (engine/
    inventory.py); None: list through ARM per subscription (the settings say so, or Resource Graph is unavailable,
    which the progress and the report's notes then say)."""
    mode = getattr(azure, "inventory", "arm")
    if not inventory.uses_graph(mode, getattr(azure, "inventory_threshold", 10), scope.subscriptions):
        return None
    types = {what: provider for what, provider, _, _ in wanted_lists(needs) if what in GRAPH_LISTS}
    if not types:
        return None
    try:
        return inventory.through_graph(azure, scope.subscriptions, types, step, group=scope.resource_group)
    except inventory.GraphUnavailable as e:
        note = f"Resource Graph unavailable ({e}): listed through ARM per subscription"
        step(note)
        notes.append(note)
        return None


def graph_assignments(azure: Azure, scope: Scope, step: Progress, notes: list[str]) -> list[Found] | None:
    """Every subscription's role assignments through Resource Graph (engine/rgroles.py), when the inventory came from
    there; None: list them through ARM per subscription (Resource Graph unavailable: said in the notes)."""
    try:
        per_sub = rgroles.through_graph(azure, scope.subscriptions, scope.resource_group, step)
    except inventory.GraphUnavailable as e:
        note = f"Resource Graph unavailable for role assignments ({e}): listed through ARM per subscription"
        step(note)
        notes.append(note)
        return None
    group = f"/resourceGroups/{scope.resource_group}" if scope.resource_group else ""
    return [
        Found(
            assignments=found,
            inherited={f"/subscriptions/{sub}{group}".lower(): above},
            listed=[f"/subscriptions/{sub}{group}".lower()],
            assignments_from_graph=True,
        )
        for sub, (found, above) in per_sub.items()
    ]


GRAPH_LISTS = frozenset({"vaults", "sets", "disks", "vms", "snapshots"})


def list_subscription(
    azure: Azure,
    sub: str,
    group: str | None,
    needs: Needs,
    step: Progress,
    listed: Mapping[str, dict[str, dict[str, Any]]] | None = None,
) -> Found:
    """The lists of one subscription (or one group in it), made in parallel. A list of a policy type that fails
    raises; a failed lock list is recorded. What `listed` holds (Resource Graph's answer) is not listed again."""
    found = Found()
    scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{group}" if group else "")
    wanted = [item for item in wanted_lists(needs) if listed is None or item[0] not in listed]
    for what, bodies in (listed or {}).items():
        if what == "snapshots":
            found.snapshots = dict(bodies)
        else:
            getattr(found, what).update(bodies)

    def fetch(item: tuple[str, str, str, Mapping[str, str] | None]) -> dict[str, Any]:
        what, provider, api, query = item
        step(f"{what} in {scope}")
        return list_json(azure, f"{scope}/providers/{provider}", api, query)

    for (what, *_), result in zip(wanted, azure.each(fetch, wanted), strict=True):
        if what == "locks":
            if isinstance(result, AzureAccessError):
                found.lock_error = result
            else:
                found.locks = list(result.values())
        elif what == "snapshots":
            found.snapshots = result
        elif isinstance(result, AzureAccessError):
            raise result
        else:
            getattr(found, what).update(result)
    if found.vms:  # a VM list may not expand instanceView (ComputeRP spec): power states from statusOnly=true
        step(f"power states in {scope}")
        found.power.update(machines.power_states(azure, sub, group, [str(b["id"]) for b in found.vms.values()]))
    found.listed.append(scope.lower())
    return found


def wanted_lists(needs: Needs) -> list[tuple[str, str, str, Mapping[str, str] | None]]:
    """The lists a sweep needs: (what, provider path, api-version, query)."""
    wanted: list[tuple[str, str, str, Mapping[str, str] | None]] = []
    if needs.wants(VAULT, DES, KEY):
        wanted.append(("vaults", "Microsoft.KeyVault/vaults", VAULT_API, None))
    if needs.wants(DES, KEY) or "encryptionsets" in needs.blocks:
        wanted.append(("sets", "Microsoft.Compute/diskEncryptionSets", aliases.API_VERSIONS[DES], None))
    if needs.wants(DISK, VM):
        wanted.append(("disks", "Microsoft.Compute/disks", aliases.API_VERSIONS[DISK], None))
        wanted.append(("vms", "Microsoft.Compute/virtualMachines", VM_API, None))
    if "locks" in needs.blocks:
        wanted.append(("locks", "Microsoft.Authorization/locks", LOCKS_API, None))

    if needs.wants(DISK, VM):  # a disk's incremental snapshots bind its encryption (disk-cmk): recorded if it fails
        wanted.append(("snapshots", "Microsoft.Compute/snapshots", aliases.API_VERSIONS[DISK], None))
    return wanted


def list_assignments(azure: Azure, sub: str, group: str | None, step: Progress) -> Found:
    scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{group}" if group else "")
    step(f"role assignments in {scope}")
    try:
        listed = list_json(azure, f"{scope}/providers/Microsoft.Authorization/roleAssignments", ROLE_ASSIGNMENTS_API)
    except AzureAccessError as e:
        return Found(assignment_error=e)
    # The scopes above it its id does not spell (management groups, the root as ""), from the assignments the list
    # inherits: ARM answers them in a subscription's list, and they hold below it.
    above = {s for s in (scope_of(str(ra["id"]), "roleassignments") for ra in listed.values())}
    inherited = {scope.lower(): {s for s in above if not s.startswith("/subscriptions/")}}
    return Found(assignments=list(listed.values()), inherited=inherited)
