"""The key vault a VM's Azure Disk Encryption uses: its `cryptward.adeKeyVault` block (policy vm-ade-key-vault).

ADE's extension names its vault in its public settings: `KeyVaultURL` and `KeyVaultResourceId` (a recorded answer:
tests/conformance/recordings/extensions/cli-vm-extension-get-ade-2024-11-01.json). A VM GET carries its extensions
whole; a VM list names them by id only, so an ADE extension known only by id is read (one GET). The vault is the
one already read when the reader listed it, else one GET by the id the settings give. A vault named only by URL is
matched on `properties.vaultUri` among the vaults read. What cannot be read is recorded as unreadable, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.azure import Azure
from remediations.errors import AzureAccessError
from remediations.resources import ADE_EXTENSIONS, VAULT_API, VM_API, cryptward, get, name_of

BLOCK = "adeKeyVault"
_ADE = {e.lower() for e in ADE_EXTENSIONS}


def ade_extension(vm: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The VM's ADE extension as the reader has it (whole, or `{id, name}` from a list); None without one."""
    for ext in [*(cryptward(vm, "extensions") or []), *(vm.get("resources") or [])]:
        kind = str(get(ext, "properties.type") or get(ext, "name") or name_of(str(ext.get("id") or "")))
        if kind.lower() in _ADE:
            return ext
    return None


def vault_block(vault: Mapping[str, Any], url: str | None) -> dict[str, Any]:
    """What the policy reads of the vault: no more than its id, name, location and ADE flag."""
    return {
        "id": vault.get("id"),
        "name": vault.get("name"),
        "location": vault.get("location"),
        "properties": {"enabledForDiskEncryption": get(vault, "properties.enabledForDiskEncryption")},
        "url": url,
    }


def fill(azure: Azure, vm: dict[str, Any], vaults: dict[str, dict[str, Any]]) -> str | None:
    """Set `vm.cryptward.adeKeyVault` when the VM has an ADE extension; the reason when it could not be read.
    `vaults`: the vaults already read, by lower-cased id (a vault read here is added to it)."""
    ext = ade_extension(vm)
    if ext is None:
        return None
    try:
        settings = get(ext, "properties.settings")
        if settings is None and ext.get("id"):
            settings = get(azure.get(str(ext["id"]), VM_API), "properties.settings")
        settings = settings or {}
        vault_id = str(settings.get("KeyVaultResourceId") or "")
        url = str(settings.get("KeyVaultURL") or "") or None
        if not vault_id and url:
            origin = url.lower().rstrip("/")
            uris = {str(get(v, "properties.vaultUri") or "").lower().rstrip("/"): str(v["id"]) for v in vaults.values()}
            vault_id = uris.get(origin, "")
        if not vault_id:
            return f"the {name_of(str(ext.get('id') or ''))} extension names no key vault Cryptward read ({url})"
        vault = vaults.get(vault_id.lower())
        if vault is None:
            vault = dict(azure.get(vault_id, VAULT_API))
            vaults[vault_id.lower()] = vault
    except AzureAccessError as e:
        return f"{e.code}: {e.message}".rstrip(": ")
    vm.setdefault("cryptward", {})[BLOCK] = vault_block(vault, url)
    return None


__all__ = ["BLOCK", "ade_extension", "fill", "vault_block"]
