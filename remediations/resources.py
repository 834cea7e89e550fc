"""What the fixes share: api-versions of the writes, reading ARM ids and bodies, and Azure Disk Encryption traces."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from remediations.policy import aliases

VAULT_API = aliases.API_VERSIONS[aliases.VAULT]
DISK_API = aliases.API_VERSIONS[aliases.DISK]
DES_API = aliases.API_VERSIONS[aliases.DES]
VM_API = aliases.API_VERSIONS[aliases.VM]
LOCKS_API = "2020-05-01"
TAGS_API = "2025-04-01"
SUBSCRIPTIONS_API = "2022-12-01"
ROLE_ASSIGNMENTS_API = "2022-04-01"
# azure-mgmt-monitor 7 has no diagnostic settings client; the applier PUTs at the version of the copied spec.
DIAGNOSTIC_SETTINGS_API = "2021-05-01-preview"
# Microsoft.Security pricings: azure-rest-api-specs specification/security/.../stable/2024-01-01/pricings.json
PRICINGS_API = "2024-01-01"
ALERTS_API = "2020-10-01"  # activity-log alerts, as infra/app/alerts.bicep and azure-mgmt-monitor use
ALERTS_BLOCK = "activityLogAlerts"  # a vault's `cryptward` block: its subscription's activity-log alerts
DEFENDER_BLOCK = "defenderForKeyVault"  # a vault's `cryptward` block: its subscription's Key Vault plan
# Azure Policy exemptions and assignments (azure-rest-api-specs Microsoft.Authorization/policy 2022-07-01-preview,
# 2023-04-01); a resource's `cryptward.azureExemptions` block holds those at or above it (engine/azexemptions.py).
EXEMPTIONS_API = "2022-07-01-preview"
ASSIGNMENTS_API = "2023-04-01"
EXEMPTIONS_BLOCK = "azureExemptions"
EXEMPTIONS_UNREADABLE = "azureExemptionsUnreadable"  # why the exemptions could not be read


def defender_plan_id(subscription: str) -> str:
    """The subscription's Microsoft Defender for Key Vault plan (Microsoft.Security/pricings/KeyVaults)."""
    return f"/subscriptions/{subscription}/providers/Microsoft.Security/pricings/KeyVaults"


KEYVAULT_DATA_API = "2025-07-01"

CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
ADE_EXTENSIONS = ("AzureDiskEncryption", "AzureDiskEncryptionForLinux")


def get(body: Any, dotted: str) -> Any:
    """`body['a']['b']` for 'a.b', matching keys case-insensitively as ARM does; None when absent."""
    for key in dotted.split("."):
        if not isinstance(body, Mapping):
            return None
        found = body.get(key)
        if found is None:
            found = next((v for k, v in body.items() if str(k).lower() == key.lower()), None)
        body = found
    return body


def same(a: Any, b: Any) -> bool:
    """Whether two ARM enum values, types or ids are the same: ARM compares them case-insensitively, and real answers
    spell them either way (`EncryptionAtRestWithPlatformKey`, `encryptionatrestwithplatformkey`)."""
    return str(a or "").lower() == str(b or "").lower()


def cryptward(body: Mapping[str, Any], key: str) -> Any:
    """A value the reader injected under the body's `cryptward` block (see aliases.py); None when not read."""
    return get(body, f"{aliases.CRYPTWARD}.{key}")


def name_of(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def subscription_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def same_subscription(a: str, b: str) -> bool:
    return subscription_of(a).lower() == subscription_of(b).lower()


def parent_of(resource_id: str, levels: int = 2) -> str:
    """`.../vaults/kv/keys/k` -> `.../vaults/kv` (one type/name pair per level of 2)."""
    return resource_id.rstrip("/").rsplit("/", levels)[0]


def versionless(key_url: str) -> str:
    """`https://kv.vault.azure.net/keys/name/0123abcd` -> `https://kv.vault.azure.net/keys/name`."""
    head, sep, tail = key_url.partition("/keys/")
    return f"{head}{sep}{tail.strip('/').split('/')[0]}" if sep else key_url


def key_origin(key_url: str) -> str:
    """The vault a key URL names, as its `vaultUri` spells it, lower-cased and without the default port or a trailing
    slash: `https://kv.vault.azure.net:443/keys/k/v` -> `https://kv.vault.azure.net` (on the sandbox, the URL up to
    `/keys/`)."""
    head, sep, _ = key_url.partition("/keys/")
    return re.sub(r":443$", "", head.rstrip("/")).lower() if sep else ""


def deterministic_guid(*parts: str) -> str:
    """The same GUID for the same inputs in every run (role assignment names must be GUIDs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cryptward:" + "|".join(p.lower() for p in parts)))


def disk_ade_trace(disk: Mapping[str, Any]) -> str | None:
    """Why this disk counts as encrypted with ADE now or before; None when nothing says so."""
    settings = get(disk, "properties.encryptionSettingsCollection")
    if isinstance(settings, Mapping):
        state = "is" if settings.get("enabled") else "was"
        return f"disk {name_of(str(disk.get('id', '')))} {state} encrypted with Azure Disk Encryption"
    if cryptward(disk, "adeHistory"):
        return f"Cryptward's ledger records that disk {name_of(str(disk.get('id', '')))} was encrypted with ADE"
    return None


def vm_ade_trace(vm: Mapping[str, Any]) -> str | None:
    """Why this VM counts as using ADE now or before; None when nothing says so."""
    name = name_of(str(vm.get("id", "")))
    extensions = [*(vm.get("resources") or []), *(cryptward(vm, "extensions") or [])]
    for ext in extensions:
        # A GET carries the extension's body (its type); a VM list only its id, whose last segment is its name:
        # az names ADE's extension after its type (azure-cli vm module, disk_encryption.py `extension_info`); other
        # tools may name it otherwise (unverified), and Azure then still refuses encryption at host for the VM.
        kind = str(get(ext, "properties.type") or get(ext, "name") or name_of(str(get(ext, "id") or "")))
        if kind.lower() in (e.lower() for e in ADE_EXTENSIONS):
            return f"VM {name} has the {kind} extension (Azure Disk Encryption)"
    if get(vm, "properties.storageProfile.osDisk.encryptionSettings.enabled"):
        return f"VM {name} has Azure Disk Encryption settings on its OS disk"
    for disk in cryptward(vm, "disks") or []:
        trace = disk_ade_trace(disk)
        if trace:
            return trace
    if cryptward(vm, "adeHistory"):
        return f"Cryptward's ledger records that VM {name} was encrypted with ADE"
    return None


def power_state(vm: Mapping[str, Any]) -> str | None:
    """`running`, `deallocated`, ... from the injected block or the instance view; None when not read."""
    code = cryptward(vm, "powerState")
    if not code:
        statuses = get(vm, "properties.instanceView.statuses") or []
        code = next((s.get("code") for s in statuses if str(s.get("code", "")).startswith("PowerState/")), None)
    return str(code).split("/", 1)[-1].lower() if code else None
