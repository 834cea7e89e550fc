"""Every key of the vaults in scope, for `Microsoft.KeyVault.Data` definitions (Azure Policy evaluates each key of a
vault in that mode, not only those a disk encryption set uses, which are all the reader reads).

    keys = read_vault_keys(azure, reading, policies, in_scope)     # in a sweep, after the reader

One management-plane list per vault gives the key ids; a key the reader did not read already is then read with one
GET (the list's items carry only `attributes` and `keyUri`: azure-rest-api-specs keyvault examples listKeys.json,
while getKey.json has `kty` and `keySize`). The management plane needs only `vaults/keys/read`, not a data-plane
role on every RBAC vault. A key that cannot be read, or a vault whose keys cannot be listed, is recorded with the
reason: the engine reports it as `could not read`, never as compliant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediations.azure import Azure, as_body, translated
from remediations.engine.reader import Reading
from remediations.errors import AzureAccessError
from remediations.policy import aliases, dataplane
from remediations.policy.model import Policy
from remediations.resources import VAULT_API, name_of

Progress = Callable[[str], None]


@dataclass
class VaultKeys:
    """Key bodies (management plane) by id, and why a key or a vault's keys could not be read."""

    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # key id or vault id -> reason


def wanted(policies: Sequence[Policy]) -> list[Policy]:
    """The definitions that evaluate the Key Vault data plane."""
    return [p for p in policies if p.azure_mode == dataplane.MODE.lower()]


def read_vault_keys(
    azure: Azure,
    reading: Reading,
    policies: Sequence[Policy],
    in_scope: Callable[[str], bool],
    *,
    progress: Progress | None = None,
) -> VaultKeys:
    found = VaultKeys()
    if not wanted(policies):
        return found
    vault_type = aliases.VAULT.lower()
    known = {*reading.related, *(k.lower() for k in reading.resources)}
    for vault in list(reading.related.values()):
        if str(vault.get("type", "")).lower() != vault_type or not in_scope(str(vault["id"])):
            continue
        if progress:
            progress(f"keys of {vault.get('name')}")
        try:
            ids = [str(item["id"]) for item in azure.list(f"{vault['id']}/keys", VAULT_API)]
        except AzureAccessError as e:
            found.unreadable[str(vault["id"])] = f"the keys of this vault could not be listed: {e.code}: {e.message}"
            continue
        for key_id in ids:
            if key_id.lower() in known:
                continue
            parts = key_id.split("/")
            try:
                with translated():
                    found.bodies[key_id] = as_body(azure.keyvault(parts[2]).keys.get(parts[4], parts[8], parts[10]))
            except AzureAccessError as e:
                found.unreadable[key_id] = f"key {name_of(key_id)} could not be read: {e.code}: {e.message}"
    return found


__all__ = ["VaultKeys", "read_vault_keys", "wanted"]
