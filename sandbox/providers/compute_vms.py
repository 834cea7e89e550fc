"""Microsoft.Compute/virtualMachines: just enough of a VM for encryption hygiene: its disks (managed, implicit or
legacy VHD), power state (instance view), deallocate/start/powerOff/restart, and encryption at host with its rules."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from sandbox import arm
from sandbox.arm import Answer, ArmError, Call, ResourceType, copy_body, register, tracked_location
from sandbox.providers import compute as c
from sandbox.providers import features
from sandbox.providers.compute_disks import new_disk
from sandbox.providers.compute_extensions import remove_extensions, vm_resources
from sandbox.state import State

_SIZE = re.compile(r"^(?:Standard|Basic)_(?P<family>[A-Z]+)(?P<num>\d+)(?P<mods>[a-z-]*)(?:_v(?P<ver>\d+))?", re.I)
_DISPLAY = {"running": "VM running", "stopped": "VM stopped", "deallocated": "VM deallocated"}


def eah_supported(vm_size: str) -> bool:
    """Encryption at host is not offered on the older series the seed lists: Dv2, Dv3, Av2, Ev3, NC, NV, H (and the
    A/Basic generation). Their premium-storage variants (DSv2, Dsv3, Esv3) support it, as Azure's SKU capability
    EncryptionAtHostSupported says (Microsoft's own example enables it on Standard_DS1_v2)."""
    if vm_size.lower().startswith("basic_"):
        return False
    m = _SIZE.match(vm_size)
    if not m:
        return True
    family, mods, ver = m.group("family").upper(), m.group("mods").lower(), m.group("ver")
    premium = "s" in mods
    if family == "D" and ver in ("2", "3") and not premium:
        return False
    if family == "E" and ver == "3" and not premium:
        return False
    if family == "A" and ver in (None, "2"):
        return False
    if family in ("NC", "NV") and ver in (None, "2"):
        return False
    return family != "H"


def instance_view(state: State, vm: dict[str, Any]) -> dict[str, Any]:
    ps = c.power_state(state, vm["id"])
    since = state.meta_of(vm["id"]).get("powerStateTime") or vm["properties"].get("timeCreated")
    ok = {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"}
    disks = []
    for disk_id in c.vm_disk_ids(vm):
        disk = state.get(disk_id)
        entry: dict[str, Any] = {"name": c.short_name(disk_id), "statuses": [{**ok, "time": since}]}
        esc = (disk or {}).get("properties", {}).get("encryptionSettingsCollection")
        if esc and esc.get("enabled"):
            entry["encryptionSettings"] = [{"enabled": True, **s} for s in esc.get("encryptionSettings", [])]
        disks.append(entry)
    out: dict[str, Any] = {
        "computerName": (vm["properties"].get("osProfile") or {}).get("computerName", vm["name"]),
        "hyperVGeneration": "V1",
        "disks": disks,
        "statuses": [
            {**ok, "time": since},
            {"code": f"PowerState/{ps}", "level": "Info", "displayStatus": _DISPLAY.get(ps, ps)},
        ],
    }
    return out


def status_view(state: State, vm: dict[str, Any]) -> dict[str, Any]:
    """A VM in a `statusOnly=true` list: who it is, and its run-time statuses."""
    view = instance_view(state, vm)
    statuses = {"statuses": view["statuses"], "computerName": view["computerName"]}
    keys = ("id", "name", "type", "location")
    return {**{k: vm[k] for k in keys}, "properties": {"instanceView": statuses}}


# A VM's etag: absent from the recorded answers at 2019-07-01 ... 2022-11-01 (tests/conformance/recordings/vms, the
# Azure CLI's at 2022-03-01 too), present at 2024-11-01 (Cloud Custodian's list); the Python SDK's models first carry
# it in azure-mgmt-compute 30.4.0 (2023-12-18, "Model VirtualMachine has a new parameter etag"), whose newest Compute
# api-version is 2023-09-01. The exact first api-version is # unverified.
ETAG_FROM = "2023-09-01"


def vm_view(
    state: State, vm: dict[str, Any], expand: str | None = None, listed: bool = False, api_version: str | None = None
) -> dict[str, Any]:
    """The VM as GET (or, `listed`, a list) shows it; the managedDisk parameters follow the disks' current settings."""
    out = copy_body(vm)
    if api_version is not None and api_version < ETAG_FROM:
        out.pop("etag", None)
    resources = vm_resources(state, vm["id"], listed)
    if resources is not None:
        out["resources"] = resources
    sp = out["properties"].get("storageProfile", {})
    for entry in [sp.get("osDisk") or {}, *(sp.get("dataDisks") or [])]:
        md = entry.get("managedDisk") or {}
        disk = state.get(md.get("id") or "") if md.get("id") else None
        if disk is None:
            continue
        md["storageAccountType"] = disk["sku"]["name"]
        des_id = disk["properties"].get("encryption", {}).get("diskEncryptionSetId")
        if des_id:
            md["diskEncryptionSet"] = {"id": des_id}
        else:
            md.pop("diskEncryptionSet", None)
        entry["diskSizeGB"] = disk["properties"]["diskSizeGB"]
    if expand and expand.lower() == "instanceview":
        out["properties"]["instanceView"] = instance_view(state, vm)
    return out


class _Plan:
    """What a VM write will do, worked out (and validated) before anything is stored."""

    def __init__(self) -> None:
        self.new_disks: list[dict[str, Any]] = []
        self.disk_ids: list[str] = []


def image_os(image: dict[str, Any] | None) -> str:
    """The OS an image reference implies (a marketplace image names Windows in its publisher, offer or sku)."""
    text = " ".join(str(v) for v in (image or {}).values()).lower()
    return "Windows" if "windows" in text else "Linux"


def _disk_entry(
    call: Call,
    plan: _Plan,
    vm_id: str,
    location: str,
    entry: dict[str, Any],
    os_disk: bool,
    default_name: str,
    sp_image: dict[str, Any] | None = None,
) -> dict[str, Any]:
    entry = copy.deepcopy(entry)
    md = entry.get("managedDisk")
    if entry.get("vhd") and not md:
        return entry  # legacy unmanaged disk: a page blob, no managed disk resource
    md = dict(md or {})
    state = call.state
    if md.get("id"):
        disk = state.get(md["id"])
        if disk is None:
            raise ArmError(404, "NotFound", f"Disk {md['id']} could not be found.")
        owner = disk.get("managedBy")
        if owner and owner.lower() != vm_id.lower():
            raise ArmError(
                409,
                "ConflictingUserInput",
                f"Disk '{disk['id']}' cannot be attached as the disk is already owned by VM '{owner}'.",
            )
        if disk["location"] != c.norm_location(location):
            raise c.invalid_parameter(
                f"Disk '{disk['id']}' is in location '{disk['location']}' but the virtual machine is in location "
                f"'{c.norm_location(location)}'. A disk must be in the same region as the virtual machine.",
                "osDisk.managedDisk.id" if os_disk else "dataDisks.managedDisk.id",
            )
        md["id"] = disk["id"]
        entry.setdefault("createOption", "Attach")
        entry["name"] = disk["name"]
        if os_disk and disk["properties"].get("osType"):
            entry.setdefault("osType", disk["properties"]["osType"])
    else:
        create = entry.get("createOption") or ("FromImage" if os_disk else "Empty")
        name = entry.get("name") or default_name
        rg_id = vm_id.rsplit("/providers/", 1)[0]
        disk_id = f"{rg_id}/providers/Microsoft.Compute/disks/{name}"
        if state.get(disk_id) is not None:
            raise ArmError(409, "ConflictingUserInput", f"A disk with name {name} already exists in Resource Group.")
        props: dict[str, Any] = {
            "creationData": {"createOption": "FromImage" if create == "FromImage" else "Empty"},
            "diskSizeGB": entry.get("diskSizeGB") or (30 if os_disk else None),
        }
        if os_disk:
            entry["osType"] = props["osType"] = entry.get("osType") or image_os(sp_image)
        des = (md.get("diskEncryptionSet") or {}).get("id")
        if des:
            props["encryption"] = {"diskEncryptionSetId": des}
        body = new_disk(call, disk_id, location, props, {"name": md.get("storageAccountType") or "Premium_LRS"}, None)
        plan.new_disks.append(body)
        md["id"] = disk_id
        entry["createOption"] = create
        entry["name"] = name
    entry["managedDisk"] = md
    entry.setdefault("caching", "ReadWrite" if os_disk else "None")
    entry.setdefault("deleteOption", "Detach")
    plan.disk_ids.append(md["id"])
    return entry


def _storage(call: Call, plan: _Plan, vm_id: str, location: str, sp: dict[str, Any]) -> dict[str, Any]:
    vm_name = c.short_name(vm_id)
    out = copy.deepcopy(sp)
    os_disk = sp.get("osDisk")
    if os_disk is None:
        raise c.missing_parameter("storageProfile.osDisk")
    name = f"{vm_name}_OsDisk_1_{uuid.uuid4().hex}"
    out["osDisk"] = _disk_entry(call, plan, vm_id, location, os_disk, True, name, sp.get("imageReference"))
    luns: set[int] = set()
    data = []
    for d in sp.get("dataDisks") or []:
        lun = d.get("lun")
        if lun is None:
            raise c.missing_parameter("dataDisks.lun")
        if lun in luns:
            raise c.invalid_parameter(f"Data disks must have unique LUNs; LUN {lun} is used twice.", "dataDisks.lun")
        luns.add(lun)
        data.append(_disk_entry(call, plan, vm_id, location, d, False, f"{vm_name}_disk{lun + 2}_{uuid.uuid4().hex}"))
    out["dataDisks"] = data
    return out


def _check_eah(
    state: State, vm_id: str, old: dict[str, Any] | None, vm_size: str, eah: bool, disk_ids: list[str]
) -> None:
    old_eah = bool(((old or {}).get("properties", {}).get("securityProfile") or {}).get("encryptionAtHost"))
    if old is not None and eah != old_eah and c.vm_allocated(state, vm_id):
        # Seed + docs: EAH is switched while the VM is deallocated. Text as CRP answers (recalled, not checked).
        raise c.operation_not_allowed(
            "The property 'securityProfile.encryptionAtHost' can be updated only when VM is in deallocated state."
        )
    if not eah:
        return
    if not eah_supported(vm_size):
        raise c.invalid_parameter(
            f"Encryption at host is not supported for VM size '{vm_size}'. For the list of VM sizes that support it, "
            "see https://aka.ms/vm-encryption-at-host.",
            "securityProfile.encryptionAtHost",
        )
    meta = state.meta_of(vm_id)
    ade = bool(meta.get("ade") or meta.get("everHadADE"))
    ade = ade or any((d := state.get(i)) is not None and c.disk_has_ade(state, d) for i in disk_ids)
    if ade:
        # Docs: EAH "can't be enabled on VMs ... that currently or ever had Azure Disk Encryption enabled".
        raise ArmError(
            400,
            "BadRequest",
            f"Encryption at host cannot be enabled for virtual machine '{c.short_name(vm_id)}' because it currently "
            "has or has had Azure Disk Encryption enabled.",
        )


def write_vm(call: Call, existing: dict[str, Any] | None, req: dict[str, Any], location: str) -> dict[str, Any]:
    state, vm_id = call.state, call.path.id
    props = req.get("properties") or {}
    old_props = (existing or {}).get("properties", {})
    hw = props.get("hardwareProfile") or old_props.get("hardwareProfile") or {}
    if not hw.get("vmSize"):
        raise c.missing_parameter("hardwareProfile.vmSize")
    plan = _Plan()
    if props.get("storageProfile") is not None or existing is None:
        sp = props.get("storageProfile") or {}
        if existing is not None:
            sp = {**old_props.get("storageProfile", {}), **sp}
        storage = _storage(call, plan, vm_id, location, sp)
    else:
        storage = copy.deepcopy(old_props.get("storageProfile", {}))
        plan.disk_ids = c.vm_disk_ids(existing)
    old_os = ((old_props.get("storageProfile") or {}).get("osDisk") or {}).get("managedDisk") or {}
    new_os = (storage.get("osDisk") or {}).get("managedDisk") or {}
    os_swap = existing is not None and str(old_os.get("id") or "").lower() != str(new_os.get("id") or "").lower()
    if os_swap and c.vm_allocated(state, vm_id):
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'osDisk.managedDisk.id' is not allowed.")
    if "encryptionAtHost" in (props.get("securityProfile") or {}) and not features.in_effect(
        state, vm_id.split("/")[2], "Microsoft.Compute", "EncryptionAtHost"
    ):
        # Azure's answer, status, code, text and target, quoted in hashicorp/terraform-provider-azurerm#17185 and
        # Azure/azure-cli#16788; naming the property at all is refused, false too (Azure/ResourceModules#1242,
        # Azure/bicep-registry-modules#2374). The feature: sandbox/providers/features.py.
        raise c.invalid_parameter(
            "The property 'securityProfile.encryptionAtHost' is not valid because the 'Microsoft.Compute/"
            "EncryptionAtHost' feature is not enabled for this subscription.",
            "securityProfile.encryptionAtHost",
        )
    security = {**(old_props.get("securityProfile") or {}), **(props.get("securityProfile") or {})}
    _check_eah(state, vm_id, existing, hw["vmSize"], bool(security.get("encryptionAtHost")), plan.disk_ids)
    # -- everything validated: store
    body: dict[str, Any] = {
        "id": vm_id,
        "name": call.path.name,
        "type": c.VM_TYPE,
        "location": c.norm_location(location),
    }
    generation = int(str((existing or {}).get("etag", '"0"')).strip('"') or 0) + 1
    body["etag"] = f'"{generation}"'
    tags = req.get("tags", (existing or {}).get("tags"))
    if tags is not None:
        body["tags"] = tags
    for key in ("zones", "plan", "identity"):
        value = req.get(key, (existing or {}).get(key))
        if value is not None:
            body[key] = copy.deepcopy(value)
    if "SystemAssigned" in str((body.get("identity") or {}).get("type", "")):
        p = c.sandbox_of(state).directory.add_system_identity(vm_id)
        body["identity"].update(principalId=p.object_id, tenantId=state.tenant_id)
    new_p: dict[str, Any] = {"vmId": old_props.get("vmId") or str(uuid.uuid4()), "hardwareProfile": hw}
    new_p["storageProfile"] = storage
    for key in ("osProfile", "networkProfile", "diagnosticsProfile", "additionalCapabilities", "licenseType"):
        value = props.get(key, old_props.get(key))
        if value is not None:
            new_p[key] = copy.deepcopy(value)
    if isinstance(new_p.get("osProfile"), dict):
        _os_profile(new_p["osProfile"], (storage.get("osDisk") or {}).get("osType") or "Linux")
    if security:
        new_p["securityProfile"] = security
    new_p["provisioningState"] = "Succeeded"
    new_p["timeCreated"] = old_props.get("timeCreated") or state.clock.iso()
    body["properties"] = new_p
    for disk in plan.new_disks:
        state.put(disk)
    now = state.clock.iso()
    keep = {i.lower() for i in plan.disk_ids}
    for old_id in c.vm_disk_ids(existing) if existing else []:
        disk = state.get(old_id)
        if old_id.lower() not in keep and disk is not None and str(disk.get("managedBy", "")).lower() == vm_id.lower():
            disk.pop("managedBy", None)
            disk["properties"]["LastOwnershipUpdateTime"] = now
    for disk_id in plan.disk_ids:
        disk = state.get(disk_id)
        if disk is not None and not disk.get("managedBy"):
            disk["managedBy"] = vm_id
            disk["properties"]["LastOwnershipUpdateTime"] = now
    state.put(body)
    return body


def _os_profile(profile: dict[str, Any], os_type: str) -> None:
    """What CRP fills in (and hides) in an osProfile: no password back, secrets [], the OS configuration defaults."""
    profile.pop("adminPassword", None)
    profile.setdefault("secrets", [])
    if os_type.lower() == "windows":
        defaults = {"provisionVMAgent": True, "enableAutomaticUpdates": True}
        profile["windowsConfiguration"] = {**defaults, **(profile.get("windowsConfiguration") or {})}
    else:
        defaults = {"disablePasswordAuthentication": False, "provisionVMAgent": True}
        profile["linuxConfiguration"] = {**defaults, **(profile.get("linuxConfiguration") or {})}


def _async_headers(call: Call, vm: dict[str, Any]) -> dict[str, str]:
    """CRP answers a VM PUT/PATCH 200/201 at once, with Azure-AsyncOperation to poll (the SDK accepts no 202)."""
    lro = arm.lro_answer(call, vm["id"], Answer(200, None), vm["location"])
    return {"Azure-AsyncOperation": lro.headers["Azure-AsyncOperation"]}


@register
class VirtualMachines(ResourceType):
    type = c.VM_TYPE
    api_versions = c.VM_API
    lro = frozenset({"DELETE", "deallocate", "start", "powerOff", "restart"})

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        return vm_view(call.state, body, call.query.get("$expand"), api_version=call.api_version)

    def list(self, call: Call) -> list[dict[str, Any]]:
        query = {k.lower(): v for k, v in call.query.items()}
        if str(query.get("$expand", "")).lower() == "instanceview" and not query.get("$filter"):
            # ComputeRP virtualMachine.json (VirtualMachines_List/_ListAll, $expand): "this can only be specified if
            # a valid $filter option is specified". Status, code and text as Azure answered in
            # semicons/java_oci_manage#46 ("BadRequest: Expand Instance View is only supported ...").
            raise ArmError(
                400,
                "BadRequest",
                "Expand Instance View is only supported when Virtual Machine Scale Set resource filter is applied",
            )
        items = call.state.of_type(self.type, under=call.path.parent or None)
        if str(query.get("statusonly", "")).lower() == "true":
            # VirtualMachines_ListAll: "statusOnly=true enables fetching run time status of all Virtual Machines";
            # Microsoft (azure-sdk-for-go#19707): it gives powerState, provisioningState and platformFaultDomain,
            # and (azure-sdk-for-go#18565) not the model (no tags). Which keys beyond those: unverified.
            return [status_view(call.state, vm) for vm in items]
        expand = call.query.get("$expand")
        return [vm_view(call.state, b, expand, listed=True, api_version=call.api_version) for b in items]

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body or {}
        location = tracked_location(call, existing)
        vm = write_vm(call, existing, req, location)
        if existing is None:
            call.state.meta_of(vm["id"]).update(powerState="running", powerStateTime=call.state.clock.iso())
        out = vm_view(call.state, vm)
        out["properties"]["provisioningState"] = "Creating" if existing is None else "Updating"
        return Answer(201 if existing is None else 200, out, _async_headers(call, vm))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        vm = write_vm(call, existing, call.body or {}, existing["location"])
        out = vm_view(call.state, vm)
        out["properties"]["provisioningState"] = "Updating"
        return Answer(200, out, _async_headers(call, vm))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        for disk_id in c.vm_disk_ids(existing):
            disk = call.state.get(disk_id)
            if disk is not None and str(disk.get("managedBy", "")).lower() == existing["id"].lower():
                disk.pop("managedBy", None)
                disk["properties"]["LastOwnershipUpdateTime"] = call.state.clock.iso()
        c.sandbox_of(call.state).directory.remove_system_identity(existing["id"])
        remove_extensions(call.state, existing["id"])
        call.state.remove(existing["id"])
        return Answer(200)

    def action(self, call: Call, name: str, existing: dict[str, Any]) -> Answer:
        meta = call.state.meta_of(existing["id"])
        current = c.power_state(call.state, existing["id"])
        target = {"deallocate": "deallocated", "start": "running", "powerOff": "stopped", "restart": "running"}.get(
            name
        )
        if target is None:
            return super().action(call, name, existing)
        if name == "restart" and current == "deallocated":
            raise c.operation_not_allowed(
                f"Operation 'restart' is not allowed on VM '{existing['name']}' since the VM is {current}."
            )
        if name == "powerOff" and current == "deallocated":
            target = "deallocated"
        meta.update(powerState=target, powerStateTime=call.state.clock.iso())
        return Answer(200)


@register
class VirtualMachineInstanceView(ResourceType):
    """GET .../virtualMachines/{vm}/instanceView: one object, not a collection."""

    type = "Microsoft.Compute/virtualMachines/instanceView"
    api_versions = c.VM_API
    singleton = True

    def read(self, call: Call) -> dict[str, Any]:
        vm = call.state.get(call.path.parent)
        if vm is None:
            raise arm.not_found(call.path)
        return instance_view(call.state, vm)
