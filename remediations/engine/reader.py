"""Read what the policies need, with as few ARM calls as possible, and add the `cryptward` block to each body.

    reading = read_scope(azure, Scope(("<subscription id>",), "rg-app"), Needs.of(policies))
    reading = read_resource(azure, resource_id, Needs.of(policies))   # one resource (an event) and its relations

A sweep makes ONE paged list call per resource type and scope (vaults, disk encryption sets, disks, VMs with their
instance view, locks, role assignments), then the calls no list can replace:

- diagnostic settings: ARM has no cross-resource list, so one GET of `{vault}/providers/Microsoft.Insights/
  diagnosticSettings` per vault;
- keys: only the keys a disk encryption set uses, one management-plane GET each (its body carries `attributes`
  with created/exp and `rotationPolicy`, and it needs only the control-plane `vaults/keys/read`, where the data
  plane would need a Key Vault data role on every RBAC vault); a body without `rotationPolicy` (the management
  plane may leave it out: Microsoft's getKey/listKeys examples carry none) gets it from the data plane
  (`keyrotationpolicies/read`), when a policy reads it;
- a disk encryption set's vault, or a VM's disk, outside the swept scope: one GET each. A set names its vault by its
  key URL's host; `sourceVault` is only there when the vault is in the set's own subscription (DiskRP: it "cannot be
  used if the KeyVault subscription is not the same"), so a vault of another subscription is found by listing the
  vaults of the other subscriptions the bot can read, once per sweep.

Only the calls the policies need are made (`Needs`): no lock list when no policy reads `cryptward.locks`.
What cannot be read is recorded, never guessed: `Reading.unreadable[resource id][block]` holds the reason (an Azure
error code and message), where `block` is the `cryptward` block left unfilled, or `related` when a resource a fix
consults (a set's vault, a disk's VM, a key's vault) could not be read. The engine turns those into findings the
planner skips as `cannot-read`. What the ledger remembers about Azure Disk Encryption comes in as `ade_history`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from remediations import fixes, keyaccess
from remediations.azure import Azure, as_body, translated
from remediations.engine import adevaults, inventory, machines, rgroles, scalesets, subscription
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.policy.loader import Policy
from remediations.resources import (
    DIAGNOSTIC_SETTINGS_API,
    KEYVAULT_DATA_API,
    LOCKS_API,
    ROLE_ASSIGNMENTS_API,
    SUBSCRIPTIONS_API,
    VAULT_API,
    VM_API,
    get,
    key_origin,
    name_of,
    parent_of,
    versionless,
)

VAULT, KEY, DISK, DES, VM = aliases.VAULT, aliases.KEY, aliases.DISK, aliases.DES, aliases.VM
RELATED = "related"
# Blocks that need the role assignments over the disk encryption sets' keys; `encryptionsets` (a vault's sets, for
# the switch to RBAC) also needs the sets listed whatever the policies' resource types.
ASSIGNMENT_BLOCKS = frozenset({"keyvaultroleassignments", "keyaccess", "encryptionsets"})
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Scope:
    """Subscriptions, optionally narrowed to one resource group (by name, in each subscription). A management group's
    scope names the group and holds the subscriptions it was last expanded to (`remediations.scopes.expand`; none
    before); `excluded` are the lower-cased id prefixes of its not-scopes, which it does not contain."""

    subscriptions: tuple[str, ...]
    resource_group: str | None = None
    management_group: str | None = None
    excluded: tuple[str, ...] = ()

    def prefixes(self) -> tuple[str, ...]:
        group = f"/resourcegroups/{self.resource_group.lower()}" if self.resource_group else ""
        return tuple(f"/subscriptions/{s.lower()}{group}" for s in self.subscriptions)

    def contains(self, resource_id: str) -> bool:
        rid = resource_id.lower().rstrip("/")
        if any(rid == p or rid.startswith(p + "/") for p in self.excluded):
            return False
        return any(rid == p or rid.startswith(p + "/") for p in self.prefixes())


@dataclass(frozen=True)
class Needs:
    """What the policies read: resource types, and `cryptward` blocks (lower-cased)."""

    types: frozenset[str]
    blocks: frozenset[str]
    rotation_policy: bool = False  # a policy reads a key's rotationPolicy

    @classmethod
    def of(cls, policies: Iterable[Policy]) -> Needs:
        types: set[str] = set()
        blocks: set[str] = set()
        rotation = False
        for policy in policies:
            kind = policy.resource_type and aliases.READ_AS.get(policy.resource_type.lower(), policy.resource_type)
            types.update([kind] if kind else aliases.RESOURCE_TYPES)
            blocks.update(block_of(f) for f in policy.condition.fields if aliases.is_cryptward(f))
            if policy.fix:
                blocks.update(block_of(f) for f in fixes.reads(policy.fix.name))
            rotation = rotation or any("rotationpolicy" in f.lower() for f in policy.condition.fields)
        return cls(frozenset(types), frozenset(blocks), rotation)

    def wants(self, *types: str) -> bool:
        return any(t in self.types for t in types)


def block_of(field_name: str) -> str:
    """`cryptward.locks[*].properties.level` -> `locks` (lower-cased)."""
    return field_name.split(".")[1].split("[")[0].lower()


@dataclass
class Reading:
    """The bodies read (the five policy types, `cryptward` blocks filled), by id; what could not be read."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # in scope: what the policies evaluate
    related: dict[str, dict[str, Any]] = field(default_factory=dict)  # everything read, by lower-cased id
    unreadable: dict[str, dict[str, str]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # asked for by id, and Azure answered 404: it does not exist (now)
    notes: list[str] = field(default_factory=list)  # how the scope was read, when it matters (a fallback)

    def missing(self, resource_id: str, block: str, error: AzureAccessError | str) -> None:
        why = error if isinstance(error, str) else f"{error.code}: {error.message}".rstrip(": ")
        self.unreadable.setdefault(resource_id.lower(), {})[block.lower()] = why

    def reasons(self, resource_id: str) -> Mapping[str, str]:
        return self.unreadable.get(resource_id.lower(), {})


# --- the sweep -------------------------------------------------------------------------------------------------------


def read_scope(
    azure: Azure,
    scope: Scope,
    needs: Needs,
    *,
    ade_history: Collection[str] = (),
    progress: Progress | None = None,
) -> Reading:
    """Everything in `scope` the policies need. A primary list that fails raises `AzureAccessError` (nothing can be
    said about a scope that cannot be listed); a related read that fails is recorded in `unreadable`. The
    subscriptions are listed in parallel (each has its own read budget), and so are the lists of one subscription."""
    found = _Found()
    step = progress or (lambda _: None)
    notes: list[str] = []
    listed = _through_graph(azure, scope, needs, step, notes)
    parts = azure.each(
        lambda sub: _list_subscription(
            azure, sub, scope.resource_group, needs, step, listed.get(sub) if listed else None
        ),
        scope.subscriptions,
    )
    for part in parts:
        if isinstance(part, AzureAccessError):
            raise part
        found.absorb(part)
    if ASSIGNMENT_BLOCKS & needs.blocks and found.sets:
        graph = _graph_assignments(azure, scope, step, notes) if listed else None
        for part in graph or azure.each(
            lambda sub: _list_assignments(azure, sub, scope.resource_group, step), scope.subscriptions
        ):
            found.absorb(part if isinstance(part, _Found) else _Found(assignment_error=part))
    reading = _assemble(azure, found, needs, scope.contains, ade_history, step)
    reading.notes.extend(notes)
    if needs.wants(*scalesets.KINDS):  # scale sets, snapshots, images: remediations/engine/scalesets.py
        scalesets.read_scope(
            azure,
            scope.subscriptions,
            scope.resource_group,
            needs.types,
            found,
            reading,
            lambda body: _keep(body, reading, found, needs, scope.contains),
            step,
        )
    return reading


def _through_graph(
    azure: Azure, scope: Scope, needs: Needs, step: Progress, notes: list[str]
) -> dict[str, dict[str, dict[str, dict[str, Any]]]] | None:
    """The policy types of every subscription through Resource Graph when the settings choose it (engine/
    inventory.py); None: list through ARM per subscription (the settings say so, or Resource Graph is unavailable,
    which the progress and the report's notes then say)."""
    mode = getattr(azure, "inventory", "arm")
    if not inventory.uses_graph(mode, getattr(azure, "inventory_threshold", 10), scope.subscriptions):
        return None
    types = {what: provider for what, provider, _, _ in _wanted(needs) if what in GRAPH_LISTS}
    if not types:
        return None
    try:
        return inventory.through_graph(azure, scope.subscriptions, types, step, group=scope.resource_group)
    except inventory.GraphUnavailable as e:
        note = f"Resource Graph unavailable ({e}): listed through ARM per subscription"
        step(note)
        notes.append(note)
        return None


def _graph_assignments(azure: Azure, scope: Scope, step: Progress, notes: list[str]) -> list[_Found] | None:
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
        _Found(
            assignments=found,
            inherited={f"/subscriptions/{sub}{group}".lower(): above},
            listed=[f"/subscriptions/{sub}{group}".lower()],
            assignments_from_graph=True,
        )
        for sub, (found, above) in per_sub.items()
    ]


# What Resource Graph can list for the sweep (the rest, locks and power states, comes from ARM either way).
GRAPH_LISTS = frozenset({"vaults", "sets", "disks", "vms", "snapshots"})


@dataclass
class _Found:
    vaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    locks: list[dict[str, Any]] | None = None
    assignments: list[dict[str, Any]] | None = None
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock_error: AzureAccessError | None = None
    assignment_error: AzureAccessError | None = None
    listed: list[str] = field(default_factory=list)  # scopes whose locks / assignments were listed (lower-cased)
    vaults_everywhere: AzureAccessError | str | None = None  # the other subscriptions' vaults were listed (or why not)
    snapshots: dict[str, dict[str, Any]] | AzureAccessError | None = None  # listed with the disks (or why not)
    power: dict[str, str] = field(default_factory=dict)  # VM id (lower-cased) -> power state code
    skus: dict[tuple[str, str], Any] = field(default_factory=dict)  # (subscription, region) -> sizes' capabilities
    features: dict[str, Any] = field(default_factory=dict)  # subscription -> its EncryptionAtHost feature
    # Per listed scope, the scopes above it its id does not spell (management groups, the root as ""), from the
    # assignments its list inherits: ARM answers them in a subscription's list, and they hold below it.
    inherited: dict[str, set[str]] = field(default_factory=dict)
    assignments_from_graph: bool = False  # Resource Graph's: read again through ARM before a decision to write
    exact: dict[str, Any] = field(default_factory=dict)  # subscription -> ARM's list of it (or the count of keys read)
    _index: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = field(default_factory=dict)

    def absorb(self, other: _Found) -> None:
        """Add what another subscription's lists found: dicts merge, lists add up, the first error stays."""
        for f in fields(self):
            if f.name == "_index":
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "snapshots":  # a failed list anywhere: the snapshots are not known
                if not isinstance(mine, AzureAccessError) and theirs is not None:
                    failed = isinstance(theirs, AzureAccessError)
                    self.snapshots = theirs if failed else {**(mine or {}), **theirs}
                continue
            if isinstance(mine, bool):
                setattr(self, f.name, mine or theirs)
            elif isinstance(mine, dict):
                mine.update(theirs)
            elif isinstance(theirs, list):
                setattr(self, f.name, [*(mine or []), *theirs])
            elif mine is None:
                setattr(self, f.name, theirs)
        self._index.clear()

    def over(self, kind: str, resource_id: str, extra: Collection[str] = ()) -> list[dict[str, Any]]:
        """The listed locks or role assignments (`kind`) at `resource_id`'s scope and above (and at the `extra`
        scopes its id does not spell: management groups, the root), in list order: from an index by scope, built
        once, so each resource costs the depth of its id rather than the length of the list."""
        items = self.locks if kind == "locks" else self.assignments
        if kind not in self._index:
            index: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for i, item in enumerate(items or []):
                index.setdefault(_scope_of(str(item["id"]), kind), []).append((i, item))
            self._index[kind] = index
        index = self._index[kind]
        hits = [hit for scope in _ancestors(resource_id) | set(extra) for hit in index.get(scope, ())]
        return [item for _, item in sorted(hits, key=lambda hit: hit[0])]


def _bodies(items: Iterable[Any]) -> dict[str, dict[str, Any]]:
    with translated():
        return {str(b["id"]).lower(): b for b in (i if isinstance(i, dict) else as_body(i) for i in items)}


def _list(azure: Azure, path: str, api_version: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One ARM collection as JSON bodies by lower-cased id: the generic pipeline (same credential, retries, pacing
    and cloud profile as the SDK clients), following nextLink, without building SDK models."""
    return {str(b["id"]).lower(): b for b in azure.list(path, api_version, params)}


def _list_subscription(
    azure: Azure,
    sub: str,
    group: str | None,
    needs: Needs,
    step: Progress,
    listed: Mapping[str, dict[str, dict[str, Any]]] | None = None,
) -> _Found:
    """The lists of one subscription (or one group in it), made in parallel. A list of a policy type that fails
    raises; a failed lock list is recorded. What `listed` holds (Resource Graph's answer) is not listed again."""
    found = _Found()
    scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{group}" if group else "")
    wanted = [item for item in _wanted(needs) if listed is None or item[0] not in listed]
    for what, bodies in (listed or {}).items():
        if what == "snapshots":
            found.snapshots = dict(bodies)
        else:
            getattr(found, what).update(bodies)

    def fetch(item: tuple[str, str, str, Mapping[str, str] | None]) -> dict[str, Any]:
        what, provider, api, query = item
        step(f"{what} in {scope}")
        return _list(azure, f"{scope}/providers/{provider}", api, query)

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


def _wanted(needs: Needs) -> list[tuple[str, str, str, Mapping[str, str] | None]]:
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


def _list_assignments(azure: Azure, sub: str, group: str | None, step: Progress) -> _Found:
    scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{group}" if group else "")
    step(f"role assignments in {scope}")
    try:
        listed = _list(azure, f"{scope}/providers/Microsoft.Authorization/roleAssignments", ROLE_ASSIGNMENTS_API)
    except AzureAccessError as e:
        return _Found(assignment_error=e)
    # The scopes above it its id does not spell (management groups, the root as ""), from the assignments the list
    # inherits: ARM answers them in a subscription's list, and they hold below it.
    above = {s for s in (_scope_of(str(ra["id"]), "roleassignments") for ra in listed.values())}
    inherited = {scope.lower(): {s for s in above if not s.startswith("/subscriptions/")}}
    return _Found(assignments=list(listed.values()), inherited=inherited)


def _assemble(
    azure: Azure,
    found: _Found,
    needs: Needs,
    in_scope: Callable[[str], bool],
    ade_history: Collection[str],
    step: Progress,
) -> Reading:
    reading = Reading()
    for bucket in (found.vaults, found.sets, found.disks, found.vms):
        reading.related.update(bucket)

    def keep(body: dict[str, Any]) -> None:
        _keep(body, reading, found, needs, in_scope)

    _vaults(azure, found, needs, in_scope, reading, step, keep)
    if needs.wants(DES, KEY) or "encryptionsets" in needs.blocks:
        keys = _sets(azure, found, needs, reading, step, in_scope)
        if "encryptionsets" in needs.blocks:
            _vault_sets(found, reading)
        for des in found.sets.values():
            if needs.wants(DES):
                keep(des)
        if needs.wants(KEY):
            for key in keys:
                keep(key)
    if needs.wants(DISK, VM):
        _machines(azure, found, needs, reading, {rid.lower() for rid in ade_history}, keep)
    return reading


def lock_block(
    locks: list[dict[str, Any]] | None, error: AzureAccessError | None, resource_id: str
) -> list[dict[str, Any]] | AzureAccessError | str:
    """A resource's `cryptward.locks` block: the locks at its scope and above, or why it cannot be filled (the
    list's error, or a reason when the locks were not listed)."""
    if locks is None:
        return error or "the locks were not listed"
    return _locks_over(locks, resource_id)


def _keep(body: dict[str, Any], reading: Reading, found: _Found, needs: Needs, in_scope: Callable[[str], bool]) -> None:
    """Add `body` to what the policies evaluate when in scope; fill its `locks` block when they read it."""
    rid = str(body["id"])
    if in_scope(rid):
        reading.resources[rid] = body
    if "locks" in needs.blocks:
        block = found.over("locks", rid) if found.locks is not None else lock_block(None, found.lock_error, rid)
        if isinstance(block, list):
            _cw(body)["locks"] = block
        else:
            reading.missing(rid, "locks", block)


def _vaults(
    azure: Azure,
    found: _Found,
    needs: Needs,
    in_scope: Callable[[str], bool],
    reading: Reading,
    step: Progress,
    keep: Callable[[dict[str, Any]], None],
) -> None:
    """Each vault's subscription-level blocks (its Defender plan, activity-log alert rules: once per subscription)
    and diagnostic settings (one GET per vault in scope, `azure.workers` at once), when the policies read them."""
    vaults = list(found.vaults.values())
    reads = subscription.Subscriptions()
    for vault in vaults:
        if in_scope(vault["id"]):
            for block, why in subscription.fill(azure, vault, set(needs.blocks), reads).items():
                reading.missing(vault["id"], block, why)
    if "diagnosticsettings" in needs.blocks:
        wanted = [v for v in vaults if in_scope(v["id"])]

        def fetch(vault: dict[str, Any]) -> list[Any]:
            step(f"diagnostic settings of {vault['name']}")
            return list(
                azure.list(f"{vault['id']}/providers/Microsoft.Insights/diagnosticSettings", DIAGNOSTIC_SETTINGS_API)
            )

        for vault, result in zip(wanted, azure.each(fetch, wanted), strict=True):
            if isinstance(result, AzureAccessError):
                reading.missing(vault["id"], "diagnosticSettings", result)
            else:
                _cw(vault)["diagnosticSettings"] = result
    if needs.wants(VAULT):
        for vault in vaults:
            keep(vault)


def _machines(
    azure: Azure, found: _Found, needs: Needs, reading: Reading, ade: set[str], keep: Callable[[dict[str, Any]], None]
) -> None:
    """Fill the disks' and VMs' blocks; read a VM that owns a disk but was not listed, and a VM's unlisted disks."""
    for disk in found.disks.values():
        if str(disk["id"]).lower() in ade:
            _cw(disk)["adeHistory"] = True
        _incremental_snapshots(disk, found, reading)
    for vm in list(found.vms.values()):
        _vm(azure, vm, found, reading, ade)
    for disk in list(found.disks.values()):
        owner = str(disk.get("managedBy") or "")
        if owner and owner.lower() not in found.vms:
            _fetch_vm(azure, owner, found, reading, disk)
        if needs.wants(DISK):
            keep(disk)
    for vm in found.vms.values():
        if needs.wants(VM):
            _cw(vm).update(machines.sku_block(azure, vm, found.skus))
            feature = machines.feature_block(azure, vm, found.features)
            if isinstance(feature, AzureAccessError):
                reading.missing(str(vm["id"]), RELATED, feature)
            else:
                _cw(vm)["encryptionAtHostFeature"] = feature
            if adevaults.BLOCK.lower() in needs.blocks:
                why = adevaults.fill(azure, vm, found.vaults)
                if why:
                    reading.missing(str(vm["id"]), adevaults.BLOCK, why)
            keep(vm)


def _list_snapshots(found: _Found, listing: Callable[[], Iterable[Any]]) -> None:
    if isinstance(found.snapshots, AzureAccessError):
        return
    try:
        found.snapshots = {**(found.snapshots or {}), **_bodies(listing())}
    except AzureAccessError as e:
        found.snapshots = e


def _incremental_snapshots(disk: dict[str, Any], found: _Found, reading: Reading) -> None:
    """The disk's `incrementalSnapshots` block: the ids of its incremental snapshots ("A disk and all of its
    associated incremental snapshots must have the same disk encryption set", Learn disk-encryption#restrictions),
    or, when the snapshots could not be listed, why not (a fix on the disk then cannot act)."""
    if not isinstance(found.snapshots, dict):
        reading.missing(str(disk["id"]), RELATED, found.snapshots or "the snapshots were not listed")
        return
    wanted, unique = str(disk["id"]).lower(), get(disk, "properties.uniqueId")
    _cw(disk)["incrementalSnapshots"] = [
        str(snap["id"])
        for snap in found.snapshots.values()
        if get(snap, "properties.incremental") is True
        and str(get(snap, "properties.creationData.sourceResourceId") or "").lower() == wanted
        and (not unique or get(snap, "properties.creationData.sourceUniqueId") in (None, unique))
    ]


def _cw(body: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = body.setdefault(aliases.CRYPTWARD, {})
    return block


def _ancestors(resource_id: str) -> set[str]:
    """The id and every scope above it (resource, parent resource, group, subscription), lower-cased."""
    rid = resource_id.lower().rstrip("/")
    out = {rid}
    while "/" in rid.strip("/"):
        if "/providers/" in rid and rid.rsplit("/providers/", 1)[1].count("/") > 2:
            rid = parent_of(rid)  # a child resource: .../vaults/kv/keys/k -> .../vaults/kv
        elif "/providers/" in rid:
            rid = rid.rsplit("/providers/", 1)[0]
        elif "/resourcegroups/" in rid:
            rid = rid.rsplit("/resourcegroups/", 1)[0]
        else:
            break
        out.add(rid)
    return out


def _scope_of(extension_id: str, kind: str) -> str:
    return extension_id.lower().rsplit(f"/providers/microsoft.authorization/{kind}/", 1)[0]


def _locks_over(locks: list[dict[str, Any]], resource_id: str) -> list[dict[str, Any]]:
    above = _ancestors(resource_id)
    return [lock for lock in locks if _scope_of(str(lock["id"]), "locks") in above]


def _sets(
    azure: Azure,
    found: _Found,
    needs: Needs,
    reading: Reading,
    step: Progress,
    in_scope: Callable[[str], bool] = lambda _: True,
) -> list[dict[str, Any]]:
    """Fill each disk encryption set's vault and role assignments; read the keys they use (one GET per key)."""
    keys: dict[str, dict[str, Any]] = {}
    users: dict[str, list[str]] = {}
    fetch: dict[str, str] = {}  # keys to read, by lower-cased id: one GET each, `azure.workers` at once
    for des in found.sets.values():
        des_id = str(des["id"])
        vault = _key_vault(azure, des, found, reading, step)
        if vault is not None:
            _cw(des)["keyVault"] = {k: v for k, v in vault.items() if k != aliases.CRYPTWARD}
            if ASSIGNMENT_BLOCKS & needs.blocks:
                _key_access(azure, found, des, vault, reading, step, "encryptionsets" in needs.blocks)
        key_url = str(get(des, "properties.activeKey.keyUrl") or "")
        if needs.wants(KEY) and vault is not None and "/keys/" in key_url:
            key_id = f"{vault['id']}/keys/{name_of(versionless(key_url))}"
            users.setdefault(key_id.lower(), []).append(des_id)
            if key_id.lower() in found.keys:
                keys[key_id.lower()] = found.keys[key_id.lower()]
            else:
                fetch.setdefault(key_id.lower(), key_id)

    def get_key(key_id: str) -> dict[str, Any]:
        step(f"key {name_of(key_id)} of {name_of(parent_of(key_id))}")
        return _get_key(azure, key_id)

    for key_id, result in zip(fetch.values(), azure.each(get_key, fetch.values()), strict=True):
        if isinstance(result, AzureAccessError):
            reading.missing(key_id, RELATED, result)
        else:
            keys[key_id.lower()] = result
    keys = {k: keys[k] for k in users if k in keys}  # in the order the sets name them
    for key_id, key in keys.items():
        _cw(key)["diskEncryptionSets"] = users[key_id]
        reading.related[key_id] = key
        if needs.rotation_policy and in_scope(key_id):  # only what is evaluated (a key outside: read, not judged)
            try:
                policy = rotation_policy_of(azure, key)
            except AzureAccessError as e:  # (a Reader, an access-policy vault): the fix must not replace it blind
                _cw(key)["rotationPolicyUnread"] = f"{e.code}: {e.message}".split("\n")[0].rstrip(": ")
            else:
                if policy is not None and (policy["lifetimeActions"] or policy["attributes"].get("expiryTime")):
                    key.setdefault("properties", {})["rotationPolicy"] = policy
    return list(keys.values())


def _serves(vault: Mapping[str, Any], origin: str) -> bool:
    return bool(origin) and key_origin(f"{get(vault, 'properties.vaultUri') or ''}/keys/") == origin


def _key_vault(
    azure: Azure, des: dict[str, Any], found: _Found, reading: Reading, step: Progress
) -> dict[str, Any] | None:
    """The vault of a set's active key, named by the key URL's host: among the vaults read, else its `sourceVault`
    (one GET), else among the vaults of every other subscription the bot can list; None (recorded) when none."""
    des_id = str(des["id"])
    origin = key_origin(str(get(des, "properties.activeKey.keyUrl") or ""))
    vault = next((v for v in found.vaults.values() if _serves(v, origin)), None)
    source = str(get(des, "properties.activeKey.sourceVault.id") or "")
    if vault is None and source:
        try:
            step(f"key vault {name_of(source)}")
            vault = found.vaults.get(source.lower()) or _get_vault(azure, source)
            found.vaults[source.lower()] = reading.related[source.lower()] = vault
        except AzureAccessError as e:
            reading.missing(des_id, "keyVault", e)
            reading.missing(des_id, RELATED, e)
            return None
    if vault is None and origin:
        _list_other_vaults(azure, found, reading, step)
        vault = next((v for v in found.vaults.values() if _serves(v, origin)), None)
    if vault is None:
        why = found.vaults_everywhere if isinstance(found.vaults_everywhere, AzureAccessError) else None
        reason: AzureAccessError | str = why or f"no key vault Cryptward can read serves {origin or 'its key URL'}"
        reading.missing(des_id, "keyVault", reason)
        reading.missing(des_id, RELATED, reason)
    return vault


def _list_other_vaults(azure: Azure, found: _Found, reading: Reading, step: Progress) -> None:
    """Once: the vaults of every subscription the bot can list and has not listed whole (a set's vault may be in
    another subscription of the same region). A subscription whose vaults cannot be listed is passed over."""
    if found.vaults_everywhere is not None:
        return
    found.vaults_everywhere = "listed"
    try:
        step("subscriptions")
        subs = [str(s["subscriptionId"]) for s in azure.list("/subscriptions", SUBSCRIPTIONS_API)]
    except AzureAccessError as e:
        found.vaults_everywhere = e
        return
    for sub in subs:
        if f"/subscriptions/{sub}".lower() in found.listed:
            continue
        step(f"key vaults in {sub}")
        try:
            vaults = _bodies(azure.keyvault(sub).vaults.list_by_subscription())
        except AzureAccessError:
            continue
        for vault_id, vault in vaults.items():
            found.vaults.setdefault(vault_id, vault)
            reading.related.setdefault(vault_id, vault)


def _key_access(
    azure: Azure,
    found: _Found,
    des: dict[str, Any],
    vault: dict[str, Any],
    reading: Reading,
    step: Progress,
    switch: bool = False,
) -> None:
    """Fill a DES's `keyVaultRoleAssignments` (its principals' assignments over its key) and `keyAccess` (see
    remediations/keyaccess.py). An access-policy vault is decided without the assignments. Assignments Resource
    Graph gave are read again through ARM at the key before they can make the bot write: when a principal seems to
    lack its key role (des-key-access would grant it), or, `switch`, when the vault still uses access policies (its
    switch to RBAC rests on the roles)."""
    des_id = str(des["id"])
    key = keyaccess.key_scope(des, vault)
    assignments = _assignments_for(azure, found, key, step)
    if (
        found.assignments_from_graph
        and not isinstance(assignments, AzureAccessError)
        and (keyaccess.block(des, vault, assignments)["missing"] or (switch and not keyaccess.uses_rbac(vault)))
    ):
        assignments = _exact_assignments(azure, found, key, step)
    if isinstance(assignments, AzureAccessError):
        reading.missing(des_id, "keyVaultRoleAssignments", assignments)
        if keyaccess.uses_rbac(vault):
            reading.missing(des_id, "keyAccess", assignments)
            return
        assignments = []
    else:
        mine = set(keyaccess.principals(des))
        _cw(des)["keyVaultRoleAssignments"] = [
            ra for ra in assignments if str(get(ra, "properties.principalId") or "").lower() in mine
        ]
    _cw(des)["keyAccess"] = keyaccess.block(des, vault, assignments)


def _exact_assignments(
    azure: Azure, found: _Found, key: str, step: Progress
) -> list[dict[str, Any]] | AzureAccessError:
    """The assignments at `key` and above, through ARM: one `atScope()` list at the key, or, from the second key of
    the same subscription on, ARM's list of the whole subscription (at, above and below it: the key's included)."""
    sub = key.split("/")[2]
    known = found.exact.get(sub.lower())
    if isinstance(known, int):
        listed = _list_assignments(azure, sub, None, step)
        listed.listed.append(f"/subscriptions/{sub}".lower())
        found.exact[sub.lower()] = known = listed
    if isinstance(known, _Found):
        return known.assignment_error or _assignments_for(azure, known, key, step)
    found.exact[sub.lower()] = 1
    return _assignments_for(azure, found, key, step, exact=True)


def _vault_sets(found: _Found, reading: Reading) -> None:
    """Fill each vault's `encryptionSets`: the disk encryption sets read whose key is in it, each with the role
    assignments that let its principals use that key (what switching the vault to RBAC leaves them)."""
    by_vault: dict[str, list[dict[str, Any]]] = {v: [] for v in found.vaults}
    for des in found.sets.values():
        vault_id = str((_cw(des).get("keyVault") or {}).get("id") or "").lower()
        if vault_id not in by_vault:
            continue
        vault = found.vaults[vault_id]
        why = reading.reasons(str(des["id"])).get("keyvaultroleassignments")
        if why:
            reading.missing(str(vault["id"]), "encryptionSets", f"{name_of(str(des['id']))}: {why}")
            continue
        by_vault[vault_id].append(keyaccess.vault_entry(des, vault, _cw(des).get("keyVaultRoleAssignments") or []))
    for vault_id, sets in by_vault.items():
        _cw(found.vaults[vault_id])["encryptionSets"] = sets


def rotation_policy_of(azure: Azure, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The key's rotation policy from the Key Vault data plane (`GET {keyUri}/rotationpolicy`), in the management
    plane's shape, when its management-plane body has none; None when it has one (or names no key URI)."""
    if get(key, "properties.rotationPolicy"):
        return None
    uri = str(get(key, "properties.keyUri") or "").rstrip("/")
    if "/keys/" not in uri:
        return None
    policy = azure.keyvault_request("GET", f"{uri}/rotationpolicy", KEYVAULT_DATA_API) or {}
    return {"lifetimeActions": policy.get("lifetimeActions") or [], "attributes": policy.get("attributes") or {}}


def _assignments_for(
    azure: Azure, found: _Found, scope: str, step: Progress, exact: bool = False
) -> list[dict[str, Any]] | AzureAccessError:
    """Role assignments at `scope` (a key, or its vault) and above: from the listed scope's assignments when `scope`
    is inside it (and not `exact`), else one ARM `atScope()` list at `scope`."""
    inside = not exact and any(scope.lower().startswith(s + "/") for s in found.listed)
    extra: set[str] = set()
    for listed, groups in found.inherited.items():  # what the list at the swept scope inherits holds here too
        if scope.lower().startswith(listed + "/"):
            extra |= groups
    if inside and found.assignments is not None:
        return found.over("roleassignments", scope, extra)
    if inside and found.assignment_error is not None:
        return found.assignment_error
    step(f"role assignments at {name_of(scope)}")
    try:
        path = f"{scope}/providers/Microsoft.Authorization/roleAssignments"
        return list(_list(azure, path, ROLE_ASSIGNMENTS_API, {"$filter": "atScope()"}).values())
    except AzureAccessError as e:
        if e.absent and "/keys/" in scope.lower():  # no such key: only its vault's and those above can hold
            return _assignments_for(azure, found, parent_of(scope), step, exact)
        return e


def _get_vault(azure: Azure, vault_id: str) -> dict[str, Any]:
    return dict(azure.get(vault_id, VAULT_API))


def _get_key(azure: Azure, key_id: str) -> dict[str, Any]:
    """A key's management-plane body (attributes, rotationPolicy): needs only `vaults/keys/read`."""
    return dict(azure.get(key_id, aliases.API_VERSIONS[KEY]))


def vm_block(vm: Mapping[str, Any], ade: Collection[str]) -> dict[str, Any]:
    """What a VM's body says of itself for its `cryptward` block: its power state, its extensions (when ARM includes
    them), and whether the ledger remembers Azure Disk Encryption on it (`ade`: lower-cased ids)."""
    block: dict[str, Any] = {}
    statuses = get(vm, "properties.instanceView.statuses") or []
    power = next((s.get("code") for s in statuses if str(s.get("code", "")).startswith("PowerState/")), None)
    if power:
        block["powerState"] = power
    if isinstance(vm.get("resources"), list):  # extensions: whole from a GET, by id only from a list
        block["extensions"] = [{"name": name_of(str(e.get("id", ""))), **e} for e in vm["resources"]]
    if str(vm["id"]).lower() in ade:
        block["adeHistory"] = True
    return block


def _vm(azure: Azure, vm: dict[str, Any], found: _Found, reading: Reading, ade: set[str]) -> None:
    block = _cw(vm)
    block.update(vm_block(vm, ade))
    if "powerState" not in block and str(vm["id"]).lower() in found.power:
        block["powerState"] = found.power[str(vm["id"]).lower()]
    storage = get(vm, "properties.storageProfile") or {}
    ids = [get(d, "managedDisk.id") for d in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]]
    disks = []
    for disk_id in [str(i) for i in ids if i]:
        disk = found.disks.get(disk_id.lower())
        if disk is None:
            try:
                disk = dict(azure.get(disk_id, aliases.API_VERSIONS[DISK]))
                found.disks[disk_id.lower()] = reading.related[disk_id.lower()] = disk
            except AzureAccessError as e:
                reading.missing(str(vm["id"]), "disks", e)
                reading.missing(str(vm["id"]), RELATED, e)
                continue
        disks.append({k: v for k, v in disk.items() if k != aliases.CRYPTWARD})
    block["disks"] = disks


def _fetch_vm(azure: Azure, vm_id: str, found: _Found, reading: Reading, disk: dict[str, Any]) -> None:
    try:
        vm = dict(azure.get(vm_id, aliases.API_VERSIONS[VM], {"$expand": "instanceView"}))
    except AzureAccessError as e:
        reading.missing(str(disk["id"]), RELATED, e)
        return
    found.vms[vm_id.lower()] = reading.related[vm_id.lower()] = vm
    _vm(azure, vm, found, reading, set())


# --- one resource (an event) -----------------------------------------------------------------------------------------


def type_of(resource_id: str) -> str | None:
    """The policy resource type an id names (`.../vaults/kv/keys/k` -> Microsoft.KeyVault/vaults/keys)."""
    rid = resource_id.lower()
    for kind in sorted(aliases.RESOURCE_TYPES, key=len, reverse=True):
        namespace, *names = kind.lower().split("/")
        tail = "/".join(f"{n}/[^/]+" for n in names)
        if re.search(rf"/providers/{re.escape(namespace)}/{tail}$", rid):
            return kind
    return None


def read_resource(
    azure: Azure,
    resource_id: str,
    needs: Needs,
    *,
    ade_history: Collection[str] = (),
    progress: Progress | None = None,
) -> Reading:
    """One resource and only what its policies need about it. An unreadable resource is returned as a stub body
    (`id`, `type`) with the reason under `unreadable[id]['']`."""
    kind = type_of(resource_id)
    step = progress or (lambda _: None)
    if kind is None:
        return Reading()
    if kind in scalesets.KINDS:
        return _read_compute_extra(azure, resource_id, kind, needs, step)
    parts = resource_id.strip("/").split("/")
    sub = parts[1]
    narrow = Needs(frozenset({kind}), needs.blocks, needs.rotation_policy)
    found = _Found(listed=[])
    try:
        step(f"{name_of(resource_id)}")
        if kind == KEY:
            body = _get_key(azure, resource_id)
            found.keys[str(body["id"]).lower()] = body
            vault_id = parent_of(resource_id)
            found.vaults[vault_id.lower()] = _get_vault(azure, vault_id)
            # Which sets use the key: only a list of the subscription's sets can say.
            sets = f"/subscriptions/{sub}/providers/Microsoft.Compute/diskEncryptionSets"
            found.sets.update(_list(azure, sets, aliases.API_VERSIONS[DES]))
        else:
            query = {"$expand": "instanceView"} if kind == VM else None
            body = dict(azure.get(resource_id, aliases.API_VERSIONS[kind], query))
            bucket = {VAULT: found.vaults, DES: found.sets, DISK: found.disks, VM: found.vms}[kind]
            bucket[str(body["id"]).lower()] = body
            if kind in (DISK, VM):
                group = resource_id.split("/")[4]
                _list_snapshots(found, lambda: azure.compute(sub).snapshots.list_by_resource_group(group))
            if kind == VAULT and "encryptionsets" in needs.blocks:  # which sets use the vault: only a list can say
                listed = _bodies(azure.compute(sub).disk_encryption_sets.list())
                wanted = resource_id.lower()
                found.sets.update(
                    {
                        k: d
                        for k, d in listed.items()
                        if str(get(d, "properties.activeKey.sourceVault.id")).lower() == wanted
                        or _serves(body, key_origin(str(get(d, "properties.activeKey.keyUrl") or "")))
                    }
                )
    except AzureAccessError as e:
        reading = Reading(resources={resource_id: {"id": resource_id, "type": kind}})
        reading.missing(resource_id, "", e)
        if e.absent:
            reading.gone.add(resource_id.lower())
        return reading
    if "locks" in needs.blocks:
        try:
            locks = _list(azure, f"{resource_id}/providers/Microsoft.Authorization/locks", LOCKS_API)
            found.locks = list(locks.values())
        except AzureAccessError as e:
            found.lock_error = e
    reading = _assemble(azure, found, narrow, lambda rid: rid.lower() == resource_id.lower(), ade_history, step)
    if kind == KEY:
        key = reading.resources.get(resource_id) or next(
            (b for k, b in reading.resources.items() if k.lower() == resource_id.lower()), None
        )
        if key is None:  # no set uses the key: its policies see an empty list
            _cw(body)["diskEncryptionSets"] = []
            reading.resources[str(body["id"])] = body
    return reading


def _read_compute_extra(azure: Azure, resource_id: str, kind: str, needs: Needs, step: Progress) -> Reading:
    """One scale set, snapshot or image (remediations/engine/scalesets.py), with its locks when policies read them."""
    found, reading = _Found(listed=[]), Reading()
    step(name_of(resource_id))
    if "locks" in needs.blocks:
        try:
            with translated():
                sub = resource_id.split("/")[2]
                found.locks = list(_bodies(azure.locks(sub).management_locks.list_by_scope(resource_id)).values())
        except AzureAccessError as e:
            found.lock_error = e
    try:
        scalesets.read_one(
            azure, resource_id, kind, found, reading,
            lambda body: _keep(body, reading, found, needs, lambda rid: rid.lower() == resource_id.lower()),
        )  # fmt: skip
    except AzureAccessError as e:
        reading = Reading(resources={resource_id: {"id": resource_id, "type": kind}})
        reading.missing(resource_id, "", e)
        if e.absent:
            reading.gone.add(resource_id.lower())
    return reading


__all__ = [
    "RELATED",
    "Needs",
    "Reading",
    "Scope",
    "block_of",
    "lock_block",
    "read_resource",
    "read_scope",
    "rotation_policy_of",
    "type_of",
    "vm_block",
]
