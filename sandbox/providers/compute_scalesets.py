"""Microsoft.Compute/virtualMachineScaleSets (Uniform orchestration): the scale set's model, its upgrade policy, and
its instances (`.../virtualMachineScaleSets/{name}/virtualMachines`) with `latestModelApplied`.

Shapes: ComputeRP stable/2025-04-01 examples (Azure/azure-rest-api-specs, specification/compute/resource-manager/
Microsoft.Compute/ComputeRP/stable/2025-04-01/examples/virtualMachineScaleSetExamples/
VirtualMachineScaleSet_Create_WithEncryptionAtHost.json: `sku {tier, capacity, name}`, `properties.
virtualMachineProfile.{storageProfile, securityProfile, osProfile, networkProfile}`, `upgradePolicy.mode`, `uniqueId`,
`singlePlacementGroup`, `overprovision`; VirtualMachineScaleSetVM_List_MinimumSet_Gen.json: instances listed as
`.../virtualMachineScaleSets/{vmss}/virtualMachines/{instanceId}`). `latestModelApplied` is the spec's
VirtualMachineScaleSetVMProperties member ("Specifies whether the latest model has been applied to the virtual
machine", virtualMachineScaleSet.json). Recorded answers (tests/conformance/recordings/scalesets, the Azure CLI's at
2021-11-01): a model with `managedDisk.diskEncryptionSet` on its OS and data disks, and an instance list (see
`instance_view`).

Rules:
- Upgrade policy (Learn, "Upgrade policies for Virtual Machine Scale Sets", https://learn.microsoft.com/azure/
  virtual-machine-scale-sets/virtual-machine-scale-sets-upgrade-policy): Manual leaves existing instances on the old
  model until each is upgraded (`manualUpgrade`); Automatic and Rolling bring them to the new model themselves. The
  sandbox upgrades Automatic/Rolling instances at once (it does not model batches) and counts each such upgrade as a
  restart of the instance (`meta.restarts`), which a test can read.
- Encryption at host: refused without the subscription's EncryptionAtHost feature, and on a size without support,
  as for VMs (compute_vms, same texts).
- A scale set's instances take its model's disk encryption set when created (their disks are not modelled here).
- Encryption at host on an existing scale set (Learn include "virtual-machines-disks-encryption-at-host-
  restrictions", MicrosoftDocs/azure-compute-docs 7c3a39c4): "The encryption can be enabled on existing virtual
  machine scale sets. However, only new VMs created after enabling the encryption are automatically encrypted.
  Existing VMs must be deallocated and reallocated in order to be encrypted." So the model change is accepted while
  instances run, and each instance keeps the encryption at host it was allocated with (its
  `securityProfile.encryptionAtHost`, VirtualMachineScaleSetVMProperties) through upgrades, until it is deallocated
  and started again (`POST .../deallocate` then `.../start` with `instanceIds`, VirtualMachineScaleSets_Deallocate /
  _Start).
- api-versions: the Compute ones, and 2019-03-01, at which Azure answered a scale set list (Cloud Custodian cassette
  VMSSTest.test_find_by_name, tests/conformance/recordings/scalesets); `timeCreated` only from 2021-11-01
  (virtualMachineScaleSet.json: "Minimum api-version: 2021-11-01", the recorded 2021-03-01 GET has none).
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register, tracked_location
from sandbox.providers import compute as c
from sandbox.providers import features
from sandbox.providers.compute_vms import eah_supported
from sandbox.state import State

VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
VMSS_API = ("2019-03-01", *c.VM_API)
TIME_CREATED_FROM = "2021-11-01"
OS_DEFAULTS_FROM, _OS_DEFAULTS = "2021-03-01", ("allowExtensionOperations", "requireGuestProvisionSignal")
MODES = ("Automatic", "Manual", "Rolling")
# meta: [{instanceId, model, eah, deallocated}]: the model generation it runs, the encryption at host it was
# allocated with, whether it is deallocated now
_INSTANCES = "instances"


def _model_eah(body: dict[str, Any]) -> bool | None:
    """The model's `securityProfile.encryptionAtHost`, None when the model does not name it (its instances then list
    no securityProfile: the recorded instance list of a model without one has none)."""
    vmp = body["properties"].get("virtualMachineProfile") or {}
    sec = vmp.get("securityProfile") or {}
    return bool(sec["encryptionAtHost"]) if sec.get("encryptionAtHost") is not None else None


def _model_storage(body: dict[str, Any]) -> dict[str, Any]:
    vmp = body["properties"].get("virtualMachineProfile") or {}
    return copy.deepcopy(vmp.get("storageProfile") or {})


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A PATCH merges objects member by member and replaces arrays (ARM's JSON merge patch)."""
    out = copy.deepcopy(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif value is not None:
            out[key] = copy.deepcopy(value)
    return out


def _check(call: Call, body: dict[str, Any], requested: dict[str, Any]) -> None:
    vmp = body["properties"].get("virtualMachineProfile") or {}
    mode = (body["properties"].get("upgradePolicy") or {}).get("mode", "Manual")
    if mode not in MODES:
        raise c.invalid_parameter(f"The value '{mode}' of parameter 'upgradePolicy.mode' is not valid.", "mode")
    asked = (requested.get("properties", {}).get("virtualMachineProfile") or {}).get("securityProfile") or {}
    sub = body["id"].split("/")[2]
    if "encryptionAtHost" in asked and not features.in_effect(call.state, sub, "Microsoft.Compute", "EncryptionAtHost"):
        # As for VMs (compute_vms.write_vm): Azure's answer quoted in hashicorp/terraform-provider-azurerm#17185.
        raise c.invalid_parameter(
            "The property 'securityProfile.encryptionAtHost' is not valid because the 'Microsoft.Compute/"
            "EncryptionAtHost' feature is not enabled for this subscription.",
            "securityProfile.encryptionAtHost",
        )
    size = (body.get("sku") or {}).get("name") or ""
    if (vmp.get("securityProfile") or {}).get("encryptionAtHost") and not eah_supported(size):
        raise c.invalid_parameter(  # as for VMs (compute_vms._check_eah)
            f"Encryption at host is not supported for VM size '{size}'. For the list of VM sizes that support it, "
            "see https://aka.ms/vm-encryption-at-host.",
            "securityProfile.encryptionAtHost",
        )
    des = (((vmp.get("storageProfile") or {}).get("osDisk") or {}).get("managedDisk") or {}).get("diskEncryptionSet")
    if des and des.get("id") and call.state.get(des["id"]) is None:
        raise ArmError(404, "NotFound", f"Disk encryption set {des['id']} could not be found.")  # unverified text


def _model_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return old["properties"].get("virtualMachineProfile") != new["properties"].get("virtualMachineProfile") or (
        (old.get("sku") or {}).get("name") != (new.get("sku") or {}).get("name")
    )


def _apply_model(state: State, body: dict[str, Any], changed: bool) -> None:
    """Instances follow the model by the upgrade policy: Automatic and Rolling bring them to it (a restart each),
    Manual leaves them on the model they run."""
    meta = state.meta_of(body["id"])
    generation = int(meta.get("model", 0)) + (1 if changed else 0)
    meta["model"] = generation
    instances = meta.setdefault(_INSTANCES, [])
    capacity = int((body.get("sku") or {}).get("capacity") or 0)
    next_id = max((int(i["instanceId"]) for i in instances), default=-1) + 1
    while len(instances) < capacity:
        instances.append(
            {
                "instanceId": str(next_id),
                "model": generation,
                "eah": _model_eah(body),
                "storage": _model_storage(body),
                "timeCreated": state.clock.iso(),
            }
        )
        next_id += 1
    del instances[capacity:]
    if changed and body["properties"].get("upgradePolicy", {}).get("mode") in ("Automatic", "Rolling"):
        for inst in instances:
            if inst["model"] != generation:
                _upgrade(meta, inst, body)


def _upgrade(meta: dict[str, Any], inst: dict[str, Any], vmss: dict[str, Any]) -> None:
    """One instance brought to the model (a restart). Its disks take the model's storage profile (which disk
    encryption set an upgraded instance's existing disks then use is # unverified); encryption at host stays as the
    instance was allocated (see the module's docstring)."""
    inst["model"] = meta.get("model", 0)
    inst["storage"] = _model_storage(vmss)
    inst["eahNamed"] = inst.get("eahNamed") or _model_eah(vmss) is not None
    meta["restarts"] = int(meta.get("restarts", 0)) + 1


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def _instance_disk(vmss: dict[str, Any], inst: dict[str, Any], disk: dict[str, Any], label: str) -> dict[str, Any]:
    """A model disk as an instance lists it: named and with the managed disk Azure made for the instance
    (recorded: `{vmss}_{vmss}_{instanceId}_OsDisk_1_{32 hex}`, `..._disk2_...` for LUN 0)."""
    suffix = hashlib.md5(f"{inst['vmId']}/{label}".encode()).hexdigest()
    name = f"{vmss['name']}_{vmss['name']}_{inst['instanceId']}_{label}_{suffix}"
    group = vmss["id"].split("/providers/")[0]
    out = dict(copy.deepcopy(disk))
    out["name"] = name
    out["managedDisk"] = {**(disk.get("managedDisk") or {}), "id": f"{group}/providers/Microsoft.Compute/disks/{name}"}
    out.setdefault("createOption", "FromImage" if label.startswith("OsDisk") else "Empty")
    return out


def instance_view(state: State, vmss: dict[str, Any], inst: dict[str, Any], api_version: str) -> dict[str, Any]:
    """One instance as VirtualMachineScaleSetVMs_List shows it. Shape as recorded (tests/conformance/recordings/
    scalesets/cli-vmss-instances-list-2021-11-01.json, the Azure CLI's test_vmss_create_options.yaml): type
    `.../virtualMachineScaleSets/virtualMachines`, `tags`, `modelDefinitionApplied`, the model's network profile as
    `networkProfileConfiguration`, `osProfile.computerName` (prefix and the instance id in base 36, six digits), the
    storage profile of the model it runs with each disk's name and managed disk id (and `exactVersion` of a
    marketplace image: the sandbox's is a placeholder), `networkProfile.networkInterfaces`, `timeCreated` (from
    2021-11-01, as for the scale set); `securityProfile` only when its model named encryption at host."""
    meta = state.meta_of(vmss["id"])
    vmp = vmss["properties"].get("virtualMachineProfile") or {}
    inst.setdefault("vmId", str(uuid.uuid4()))
    inst_id = f"{vmss['id']}/virtualMachines/{inst['instanceId']}"
    storage = copy.deepcopy(inst.get("storage") or {})
    image = storage.get("imageReference")
    if isinstance(image, dict) and image.get("publisher"):
        image["exactVersion"] = image["version"] if image.get("version") not in (None, "latest") else "1.0.0"
    if storage.get("osDisk"):
        storage["osDisk"] = _instance_disk(vmss, inst, storage["osDisk"], "OsDisk_1")
    storage["dataDisks"] = [
        {**_instance_disk(vmss, inst, d, f"disk{int(d.get('lun', 0)) + 2}"), "toBeDetached": False}
        for d in storage.get("dataDisks") or []
    ]
    osp = {k: copy.deepcopy(v) for k, v in (vmp.get("osProfile") or {}).items() if k != "computerNamePrefix"}
    prefix = (vmp.get("osProfile") or {}).get("computerNamePrefix") or vmss["name"]
    props: dict[str, Any] = {
        "latestModelApplied": inst["model"] == meta.get("model", 0),
        "modelDefinitionApplied": "VirtualMachineScaleSet",
    }
    network = vmp.get("networkProfile") or {}
    if network:
        props["networkProfileConfiguration"] = copy.deepcopy(network)
    props |= {
        "vmId": inst["vmId"],
        "hardwareProfile": {"vmSize": (vmss.get("sku") or {}).get("name")},
        "storageProfile": storage,
        "osProfile": {"computerName": f"{prefix}{_base36(int(inst['instanceId'])).rjust(6, '0')}", **osp},
        "networkProfile": {
            "networkInterfaces": [
                {"id": f"{inst_id}/networkInterfaces/{nic.get('name')}"}
                for nic in network.get("networkInterfaceConfigurations") or []
            ]
        },
        "provisioningState": "Succeeded",
    }
    if inst.get("eah") is not None or inst.get("eahNamed"):
        # what it was allocated with; an instance upgraded to a model naming encryption at host but not allocated
        # again lists false (Learn, above: not encrypted until reallocated; that it lists the key then: # unverified)
        props["securityProfile"] = {"encryptionAtHost": bool(inst.get("eah"))}
    if api_version >= TIME_CREATED_FROM:
        props["timeCreated"] = inst.get("timeCreated") or vmss["properties"].get("timeCreated")
    return {
        "name": f"{vmss['name']}_{inst['instanceId']}",
        "id": inst_id,
        "type": f"{VMSS_TYPE}/virtualMachines",
        "location": vmss["location"],
        "tags": copy.deepcopy(vmss.get("tags") or {}),  # the scale set's (both empty in the recording) # unverified
        "instanceId": inst["instanceId"],
        "sku": {"name": (vmss.get("sku") or {}).get("name"), "tier": (vmss.get("sku") or {}).get("tier", "Standard")},
        "properties": props,
    }


@register
class VirtualMachineScaleSets(ResourceType):
    type = VMSS_TYPE
    api_versions = VMSS_API
    lro = frozenset({"DELETE", "manualupgrade", "deallocate", "start"})

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        if call.api_version < TIME_CREATED_FROM:
            body = {**body, "properties": {k: v for k, v in body["properties"].items() if k != "timeCreated"}}
        osp = (body["properties"].get("virtualMachineProfile") or {}).get("osProfile")
        if call.api_version < OS_DEFAULTS_FROM and isinstance(osp, dict):
            # the 2019-03-01 list (scalesets/c7n-vmss-list-2019-03-01.json) shows neither; 2021-03-01 both
            body = copy.deepcopy(body)
            vmp = body["properties"]["virtualMachineProfile"]
            vmp["osProfile"] = {k: v for k, v in osp.items() if k not in _OS_DEFAULTS}
        return body

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body or {}
        location = tracked_location(call, existing)
        if not (req.get("sku") or {}).get("name"):
            raise c.missing_parameter("sku.name")
        props = copy.deepcopy(req.get("properties") or {})
        props.setdefault("upgradePolicy", {"mode": "Manual"})
        props.setdefault("singlePlacementGroup", True)
        props.setdefault("overprovision", True)
        props["uniqueId"] = ((existing or {}).get("properties") or {}).get("uniqueId") or str(uuid.uuid4())
        props["provisioningState"] = "Succeeded"
        props["timeCreated"] = ((existing or {}).get("properties") or {}).get("timeCreated") or call.state.clock.iso()
        osp = (props.get("virtualMachineProfile") or {}).get("osProfile")
        if isinstance(osp, dict):
            osp.pop("adminPassword", None)  # never returned (spec example's response)
            osp.setdefault("secrets", [])
            # Recorded (scalesets/cli-vmss-get-des-2021-11-01.json): a model sent without them is answered with
            # both true (the Azure CLI's template sent only computerNamePrefix, adminUsername, adminPassword).
            osp.setdefault("allowExtensionOperations", True)
            osp.setdefault("requireGuestProvisionSignal", True)
        body: dict[str, Any] = {
            "id": call.path.id,
            "name": call.path.name,
            "type": VMSS_TYPE,
            "location": c.norm_location(location),
            "sku": {"tier": "Standard", "capacity": 0, **copy.deepcopy(req["sku"])},
            "properties": props,
        }
        if req.get("tags") is not None:
            body["tags"] = req["tags"]
        _check(call, body, req)
        call.state.put(body)
        _apply_model(call.state, body, existing is not None and _model_changed(existing, body))
        return Answer(200 if existing else 201, copy.deepcopy(body))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        req = call.body or {}
        body = _merge(existing, {k: v for k, v in req.items() if k in ("sku", "properties", "tags")})
        for key in ("uniqueId", "provisioningState", "timeCreated"):
            body["properties"][key] = existing["properties"].get(key)
        _check(call, body, req)
        call.state.put(body)
        _apply_model(call.state, body, _model_changed(existing, body))
        return Answer(200, copy.deepcopy(body))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        call.state.remove(existing["id"])
        return Answer(200)

    def action(self, call: Call, name: str, existing: dict[str, Any]) -> Answer:
        verb = name.lower()
        if verb not in ("manualupgrade", "deallocate", "start"):
            return super().action(call, name, existing)
        meta = call.state.meta_of(existing["id"])
        given = (call.body or {}).get("instanceIds")
        wanted = {str(i) for i in given or []}
        if verb == "manualupgrade":
            # VirtualMachineScaleSets_UpdateInstances: `{"instanceIds": [...]}` upgrades those instances to the
            # model (a restart each); encryption at host is not reallocation: it stays as the instance was allocated.
            for inst in meta.get(_INSTANCES, []):
                if inst["instanceId"] in wanted and inst["model"] != meta.get("model", 0):
                    _upgrade(meta, inst, existing)
            return Answer(200)
        # VirtualMachineScaleSets_Deallocate / _Start: `instanceIds` optional (all instances when absent, as the
        # spec's VirtualMachineScaleSetVMInstanceIDs says). Started after a deallocation, an instance is allocated
        # again, with the model's encryption at host.
        for inst in meta.get(_INSTANCES, []):
            if given is not None and inst["instanceId"] not in wanted:
                continue
            if verb == "deallocate":
                inst["deallocated"] = True
            elif inst.pop("deallocated", False):
                inst["eah"] = _model_eah(existing)
        return Answer(200)


@register
class VirtualMachineScaleSetVMs(ResourceType):
    """GET .../virtualMachineScaleSets/{name}/virtualMachines: the instances (read only here)."""

    type = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
    api_versions = c.VM_API

    def list(self, call: Call) -> list[dict[str, Any]]:
        vmss = call.state.get(call.path.parent)
        if vmss is None:
            raise ArmError(
                404, "ResourceNotFound", f"The Resource '{VMSS_TYPE}/{c.short_name(call.path.parent)}' was not found."
            )
        instances = call.state.meta_of(vmss["id"]).get(_INSTANCES, [])
        return [instance_view(call.state, vmss, i, call.api_version) for i in instances]
