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
from collections.abc import Collection
from typing import Any

from remediations.azure import Azure, translated
from remediations.engine import scalesets
from remediations.engine.assemble import assemble, keep_body, list_snapshots, vm_block
from remediations.engine.found import (
    ASSIGNMENT_BLOCKS,
    DES,
    DISK,
    KEY,
    RELATED,
    VAULT,
    VM,
    Found,
    Needs,
    Progress,
    Reading,
    Scope,
    block_of,
    bodies_of,
    cw,
    list_json,
    lock_block,
)
from remediations.engine.keysets import get_key, get_vault, rotation_policy_of, serves
from remediations.engine.listing import graph_assignments, graph_lists, list_assignments, list_subscription
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import (
    LOCKS_API,
    get,
    key_origin,
    name_of,
    parent_of,
)


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
    found = Found()
    step = progress or (lambda _: None)
    notes: list[str] = []
    listed = graph_lists(azure, scope, needs, step, notes)
    parts = azure.each(
        lambda sub: list_subscription(
            azure, sub, scope.resource_group, needs, step, listed.get(sub) if listed else None
        ),
        scope.subscriptions,
    )
    for part in parts:
        if isinstance(part, AzureAccessError):
            raise part
        found.absorb(part)
    whole: dict[str, list[dict[str, Any]]] = {}
    if ASSIGNMENT_BLOCKS & needs.blocks and found.sets:
        graph = graph_assignments(azure, scope, step, notes) if listed else None
        if graph is None:
            graph = azure.each(
                lambda sub: list_assignments(azure, sub, scope.resource_group, step), scope.subscriptions
            )
            for sub, part in zip(scope.subscriptions, graph, strict=True):
                if isinstance(part, Found) and part.assignments is not None and not scope.resource_group:
                    whole[f"/subscriptions/{sub}".lower()] = part.assignments  # ARM's own list, not Resource Graph's
        for part in graph:
            found.absorb(part if isinstance(part, Found) else Found(assignment_error=part))
    reading = assemble(azure, found, needs, scope.contains, ade_history, step)
    reading.assignment_lists.update(whole)
    reading.notes.extend(notes)
    if needs.wants(*scalesets.KINDS):  # scale sets, snapshots, images: remediations/engine/scalesets.py
        scalesets.read_scope(
            azure,
            scope.subscriptions,
            scope.resource_group,
            needs.types,
            found,
            reading,
            lambda body: keep_body(body, reading, found, needs, scope.contains),
            step,
        )
    return reading


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
    found = Found(listed=[])
    try:
        step(f"{name_of(resource_id)}")
        if kind == KEY:
            body = get_key(azure, resource_id)
            found.keys[str(body["id"]).lower()] = body
            vault_id = parent_of(resource_id)
            found.vaults[vault_id.lower()] = get_vault(azure, vault_id)
            # Which sets use the key: only a list of the subscription's sets can say.
            sets = f"/subscriptions/{sub}/providers/Microsoft.Compute/diskEncryptionSets"
            found.sets.update(list_json(azure, sets, aliases.API_VERSIONS[DES]))
        else:
            query = {"$expand": "instanceView"} if kind == VM else None
            body = dict(azure.get(resource_id, aliases.API_VERSIONS[kind], query))
            bucket = {VAULT: found.vaults, DES: found.sets, DISK: found.disks, VM: found.vms}[kind]
            bucket[str(body["id"]).lower()] = body
            if kind in (DISK, VM):
                group = resource_id.split("/")[4]
                list_snapshots(found, lambda: azure.compute(sub).snapshots.list_by_resource_group(group))
            if kind == VAULT and "encryptionsets" in needs.blocks:  # which sets use the vault: only a list can say
                listed = bodies_of(azure.compute(sub).disk_encryption_sets.list())
                wanted = resource_id.lower()
                found.sets.update(
                    {
                        k: d
                        for k, d in listed.items()
                        if str(get(d, "properties.activeKey.sourceVault.id")).lower() == wanted
                        or serves(body, key_origin(str(get(d, "properties.activeKey.keyUrl") or "")))
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
            locks = list_json(azure, f"{resource_id}/providers/Microsoft.Authorization/locks", LOCKS_API)
            found.locks = list(locks.values())
        except AzureAccessError as e:
            found.lock_error = e
    reading = assemble(azure, found, narrow, lambda rid: rid.lower() == resource_id.lower(), ade_history, step)
    if kind == KEY:
        key = reading.resources.get(resource_id) or next(
            (b for k, b in reading.resources.items() if k.lower() == resource_id.lower()), None
        )
        if key is None:  # no set uses the key: its policies see an empty list
            cw(body)["diskEncryptionSets"] = []
            reading.resources[str(body["id"])] = body
    return reading


def _read_compute_extra(azure: Azure, resource_id: str, kind: str, needs: Needs, step: Progress) -> Reading:
    """One scale set, snapshot or image (remediations/engine/scalesets.py), with its locks when policies read them."""
    found, reading = Found(listed=[]), Reading()
    step(name_of(resource_id))
    if "locks" in needs.blocks:
        try:
            with translated():
                sub = resource_id.split("/")[2]
                found.locks = list(bodies_of(azure.locks(sub).management_locks.list_by_scope(resource_id)).values())
        except AzureAccessError as e:
            found.lock_error = e
    try:
        scalesets.read_one(
            azure, resource_id, kind, found, reading,
            lambda body: keep_body(body, reading, found, needs, lambda rid: rid.lower() == resource_id.lower()),
        )  # fmt: skip
    except AzureAccessError as e:
        reading = Reading(resources={resource_id: {"id": resource_id, "type": kind}})
        reading.missing(resource_id, "", e)
        if e.absent:
            reading.gone.add(resource_id.lower())
        return reading
    if kind == scalesets.SNAPSHOT:
        _source_set(azure, reading, needs, step)
    return reading


def _source_set(azure: Azure, reading: Reading, needs: Needs, step: Progress) -> None:
    """For one snapshot on a platform key whose source uses a disk encryption set: that set as the reader reads a
    set (its key access included; not its locks, which only the set's own policies read), into `related` only, where
    snapshot-cmk looks for it. Not read: the fix says so."""
    needs = Needs(frozenset({DES}), needs.blocks - {"locks"}, needs.rotation_policy)
    for body in list(reading.resources.values()):
        des_id = str((cw(body).get("sourceEncryption") or {}).get("diskEncryptionSetId") or "")
        own = str(get(body, "properties.encryption.type") or scalesets.PLATFORM_KEY)
        if des_id and own.lower() == scalesets.PLATFORM_KEY.lower() and des_id.lower() not in reading.related:
            of_set = read_resource(azure, des_id, needs, progress=step)
            reading.related.update({k.lower(): v for k, v in of_set.related.items()})


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
