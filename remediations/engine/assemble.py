"""From what was listed to what the policies evaluate: each body's `cryptward` blocks (locks, diagnostic settings,
the subscription's blocks, disks, VMs, snapshots), and `keep`: a body in scope joins the reading.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from remediations.azure import Azure
from remediations.engine import adevaults, machines, subscription
from remediations.engine.found import (
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
    bodies_of,
    cw,
    lock_block,
)
from remediations.engine.keysets import fill_sets, vault_sets
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import (
    DIAGNOSTIC_SETTINGS_API,
    get,
    name_of,
)


def assemble(
    azure: Azure,
    found: Found,
    needs: Needs,
    in_scope: Callable[[str], bool],
    ade_history: Collection[str],
    step: Progress,
) -> Reading:
    reading = Reading()
    for bucket in (found.vaults, found.sets, found.disks, found.vms):
        reading.related.update(bucket)

    def keep(body: dict[str, Any]) -> None:
        keep_body(body, reading, found, needs, in_scope)

    fill_vaults(azure, found, needs, in_scope, reading, step, keep)
    if needs.wants(DES, KEY) or "encryptionsets" in needs.blocks:
        keys = fill_sets(azure, found, needs, reading, step, in_scope)
        if "encryptionsets" in needs.blocks:
            vault_sets(found, reading)
        for des in found.sets.values():
            if needs.wants(DES):
                keep(des)
        if needs.wants(KEY):
            for key in keys:
                keep(key)
    if needs.wants(DISK, VM):
        fill_machines(azure, found, needs, reading, {rid.lower() for rid in ade_history}, keep)
    return reading


def keep_body(
    body: dict[str, Any], reading: Reading, found: Found, needs: Needs, in_scope: Callable[[str], bool]
) -> None:
    """Add `body` to what the policies evaluate when in scope; fill its `locks` block when they read it."""
    rid = str(body["id"])
    if in_scope(rid):
        reading.resources[rid] = body
    if "locks" in needs.blocks:
        block = found.over("locks", rid) if found.locks is not None else lock_block(None, found.lock_error, rid)
        if isinstance(block, list):
            cw(body)["locks"] = block
        else:
            reading.missing(rid, "locks", block)


def fill_vaults(
    azure: Azure,
    found: Found,
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
                cw(vault)["diagnosticSettings"] = result
    if needs.wants(VAULT):
        for vault in vaults:
            keep(vault)


def fill_machines(
    azure: Azure, found: Found, needs: Needs, reading: Reading, ade: set[str], keep: Callable[[dict[str, Any]], None]
) -> None:
    """Fill the disks' and VMs' blocks; read a VM that owns a disk but was not listed, and a VM's unlisted disks."""
    for disk in found.disks.values():
        if str(disk["id"]).lower() in ade:
            cw(disk)["adeHistory"] = True
        incremental_snapshots(disk, found, reading)
    for vm in list(found.vms.values()):
        fill_vm(azure, vm, found, reading, ade)
    for disk in list(found.disks.values()):
        owner = str(disk.get("managedBy") or "")
        if owner and owner.lower() not in found.vms:
            fetch_vm(azure, owner, found, reading, disk)
        if needs.wants(DISK):
            keep(disk)
    for vm in found.vms.values():
        if needs.wants(VM):
            cw(vm).update(machines.sku_block(azure, vm, found.skus))
            feature = machines.feature_block(azure, vm, found.features)
            if isinstance(feature, AzureAccessError):
                reading.missing(str(vm["id"]), RELATED, feature)
            else:
                cw(vm)["encryptionAtHostFeature"] = feature
            if adevaults.BLOCK.lower() in needs.blocks:
                why = adevaults.fill(azure, vm, found.vaults)
                if why:
                    reading.missing(str(vm["id"]), adevaults.BLOCK, why)
            keep(vm)


def list_snapshots(found: Found, listing: Callable[[], Iterable[Any]]) -> None:
    if isinstance(found.snapshots, AzureAccessError):
        return
    try:
        found.snapshots = {**(found.snapshots or {}), **bodies_of(listing())}
    except AzureAccessError as e:
        found.snapshots = e


def incremental_snapshots(disk: dict[str, Any], found: Found, reading: Reading) -> None:
    """The disk's `incrementalSnapshots` block: the ids of its incremental snapshots ("A disk and all of its
    associated incremental snapshots must have the same disk encryption set", Learn disk-encryption#restrictions),
    or, when the snapshots could not be listed, why not (a fix on the disk then cannot act)."""
    if not isinstance(found.snapshots, dict):
        reading.missing(str(disk["id"]), RELATED, found.snapshots or "the snapshots were not listed")
        return
    wanted, unique = str(disk["id"]).lower(), get(disk, "properties.uniqueId")
    cw(disk)["incrementalSnapshots"] = [
        str(snap["id"])
        for snap in found.snapshots.values()
        if get(snap, "properties.incremental") is True
        and str(get(snap, "properties.creationData.sourceResourceId") or "").lower() == wanted
        and (not unique or get(snap, "properties.creationData.sourceUniqueId") in (None, unique))
    ]


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


def fill_vm(azure: Azure, vm: dict[str, Any], found: Found, reading: Reading, ade: set[str]) -> None:
    block = cw(vm)
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


def fetch_vm(azure: Azure, vm_id: str, found: Found, reading: Reading, disk: dict[str, Any]) -> None:
    try:
        vm = dict(azure.get(vm_id, aliases.API_VERSIONS[VM], {"$expand": "instanceView"}))
    except AzureAccessError as e:
        reading.missing(str(disk["id"]), RELATED, e)
        return
    found.vms[vm_id.lower()] = reading.related[vm_id.lower()] = vm
    fill_vm(azure, vm, found, reading, set())
