"""Microsoft.Compute/virtualMachines/extensions: a VM's extensions are child resources (create, get, list, update,
delete), among them Azure Disk Encryption (publisher Microsoft.Azure.Security, types AzureDiskEncryption on Windows
and AzureDiskEncryptionForLinux).

Shapes: Cloud Custodian's recorded extension list (tests/conformance/recordings/extensions, 2020-12-01): `name`, `id`,
`type`, `location`, `tags`, `properties` {autoUpgradeMinorVersion, provisioningState, publisher, type,
typeHandlerVersion, settings}; `protectedSettings` is never returned (ComputeRP virtualMachine.json,
VirtualMachineExtensionProperties: "protectedSettings ... no settings at all"; absent from every recorded answer).
A VM list carries only the extensions' ids in `resources`, a VM GET their whole bodies (recorded VM lists at
2020-12-01 and 2024-11-01, VM GETs at 2020-12-01 and 2022-11-01: tests/conformance/recordings/vms).
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox import arm
from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers import compute as c
from sandbox.state import State

EXT_TYPE = "Microsoft.Compute/virtualMachines/extensions"
ADE_PUBLISHER = "Microsoft.Azure.Security"
ADE_TYPES = ("AzureDiskEncryption", "AzureDiskEncryptionForLinux")
_KEEP = ("publisher", "type", "typeHandlerVersion", "autoUpgradeMinorVersion", "enableAutomaticUpgrade", "settings")


def extensions_of(state: State, vm_id: str) -> list[dict[str, Any]]:
    prefix = vm_id.lower().rstrip("/") + "/extensions/"
    return [b for b in state.of_type(EXT_TYPE, under=vm_id) if b["id"].lower().startswith(prefix)]


def is_ade(extension: dict[str, Any]) -> bool:
    props = extension.get("properties") or {}
    publisher, kind = str(props.get("publisher", "")).lower(), str(props.get("type", "")).lower()
    return publisher == ADE_PUBLISHER.lower() and kind in (t.lower() for t in ADE_TYPES)


def vm_resources(state: State, vm_id: str, listed: bool) -> list[dict[str, Any]] | None:
    """A VM's `resources`: ids only in a list, whole extensions in a GET; None (the key absent) without any."""
    exts = extensions_of(state, vm_id)
    if not exts:
        return None
    return [{"id": e["id"]} if listed else copy.deepcopy(e) for e in exts]


def _async(call: Call, body: dict[str, Any], status: int) -> Answer:
    """CRP answers an extension PUT 200/201 with Azure-AsyncOperation (the SDK accepts no 202 for it)."""
    lro = arm.lro_answer(call, body["id"], Answer(200, body), body.get("location", "global"))
    return Answer(status, body, {"Azure-AsyncOperation": lro.headers["Azure-AsyncOperation"]})


@register
class VirtualMachineExtensions(ResourceType):
    type = EXT_TYPE
    api_versions = c.VM_API
    lro = frozenset({"DELETE"})

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body if isinstance(call.body, dict) else {}
        props = req.get("properties") or {}
        for name in ("publisher", "type", "typeHandlerVersion"):
            if not props.get(name):
                raise c.missing_parameter(f"properties.{name}")
        vm = call.state.get(call.path.parent)
        if vm is None:
            raise arm.not_found(arm.parse_path(call.path.parent, "GET"))
        body: dict[str, Any] = {
            "name": call.path.name,
            "id": call.path.id,
            "type": EXT_TYPE,
            "location": vm["location"],
        }
        tags = req.get("tags", (existing or {}).get("tags"))
        if tags is not None:
            body["tags"] = tags
        kept = {k: copy.deepcopy(props[k]) for k in _KEEP if k in props}
        body["properties"] = {**kept, "provisioningState": "Succeeded"}
        self._store(call, body)
        return _async(call, body, 201 if existing is None else 200)

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        req = call.body if isinstance(call.body, dict) else {}
        body = copy.deepcopy(existing)
        for k, v in (req.get("properties") or {}).items():
            if k in _KEEP:
                body["properties"][k] = copy.deepcopy(v)
        if "tags" in req:
            body["tags"] = req["tags"]
        self._store(call, body)
        return _async(call, body, 200)

    @staticmethod
    def _store(call: Call, body: dict[str, Any]) -> None:
        if is_ade(body):
            # Docs: encryption at host "can't be enabled on VMs ... that currently or ever had Azure Disk Encryption"
            call.state.meta_of(call.path.parent).update(everHadADE=True)
        call.state.put(body)


def remove_extensions(state: State, vm_id: str) -> None:
    """A deleted VM takes its extensions with it."""
    for ext in extensions_of(state, vm_id):
        state.remove(ext["id"])


def check_ade_extension(state: State, vm_id: str) -> bool:
    """Whether an ADE extension is installed on the VM now."""
    return any(is_ade(e) for e in extensions_of(state, vm_id))


__all__ = ["ADE_TYPES", "EXT_TYPE", "ArmError", "check_ade_extension", "remove_extensions", "vm_resources"]
