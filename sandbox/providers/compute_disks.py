"""Microsoft.Compute/disks: managed disks, their server-side encryption (platform key, customer key through a disk
encryption set, double) and ADE settings, with the rules Azure enforces on them."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, copy_body, register, tracked_location
from sandbox.providers import compute as c
from sandbox.state import State, new_id

_SKU_TIER = {
    "Standard_LRS": "Standard",
    "StandardSSD_LRS": "Standard",
    "StandardSSD_ZRS": "Standard",
    "Premium_LRS": "Premium",
    "Premium_ZRS": "Premium",
    "PremiumV2_LRS": "Premium",
    "UltraSSD_LRS": "Ultra",
}
_PREMIUM_TIERS = [
    (4, "P1"),
    (8, "P2"),
    (16, "P3"),
    (32, "P4"),
    (64, "P6"),
    (128, "P10"),
    (256, "P15"),
    (512, "P20"),
    (1024, "P30"),
    (2048, "P40"),
    (4096, "P50"),
    (8192, "P60"),
    (16384, "P70"),
    (32767, "P80"),
]
_READ_ONLY = {
    "provisioningState",
    "timeCreated",
    "uniqueId",
    "diskState",
    "diskSizeBytes",
    "LastOwnershipUpdateTime",
    "propertyUpdatesInProgress",
    "shareInfo",
}
_CREATE_OPTIONS = ("Empty", "FromImage", "Copy", "Import", "Attach", "Restore", "Upload", "CopyStart", "ImportSecure")


def premium_tier(size_gb: int) -> str:
    return next((t for limit, t in _PREMIUM_TIERS if size_gb <= limit), "P80")


def disk_view(state: State, body: dict[str, Any]) -> dict[str, Any]:
    """The disk as GET shows it: diskState follows the owner VM (Reserved while that VM is deallocated)."""
    out = copy_body(body)
    owner = out.get("managedBy")
    if not owner:
        out["properties"]["diskState"] = "Unattached"
    elif c.power_state(state, owner) == "deallocated":
        out["properties"]["diskState"] = "Reserved"
    else:
        out["properties"]["diskState"] = "Attached"
    return out


def _linked_read(call: Call, des_id: str, write_scope: str) -> None:
    """ARM's linked-scope check: referencing a DES needs read on it (LinkedAuthorizationFailed, worded as ARM does,
    naming the write of the resource that references it: a disk's or a snapshot's)."""
    sb = c.sandbox_of(call.state)
    p = call.principal
    write = (
        "Microsoft.Compute/snapshots/write" if "/snapshots/" in write_scope.lower() else "Microsoft.Compute/disks/write"
    )
    if not sb.allowed(p.object_id, "Microsoft.Compute/diskEncryptionSets/read", des_id):
        raise ArmError(
            403,
            "LinkedAuthorizationFailed",
            f"The client '{p.upn or p.object_id}' with object id '{p.object_id}' has permission to perform action "
            f"'{write}' on scope '{write_scope}'; however, it does not have permission to "
            f"perform action(s) 'Microsoft.Compute/diskEncryptionSets/read' on the linked scope(s) '{des_id}' "
            "(respectively) or the linked scope(s) are invalid.",
        )


def resolve_encryption(
    call: Call,
    disk_id: str,
    location: str,
    requested: dict[str, Any] | None,
    old: dict[str, Any] | None,
    has_ade: bool,
) -> dict[str, Any]:
    """Validate a requested `encryption` block against Azure's rules and return the one to store."""
    state = call.state
    name = c.short_name(disk_id)
    if requested is None:
        return copy.deepcopy((old or {}).get("properties", {}).get("encryption") or {"type": c.PLATFORM_KEY})
    etype = requested.get("type")
    des_id = requested.get("diskEncryptionSetId")
    if etype is not None and etype not in c.ENCRYPTION_TYPES:
        raise c.invalid_parameter(
            f"The value '{etype}' of parameter 'encryption.type' is not valid. Allowed values: "
            f"{', '.join(c.ENCRYPTION_TYPES)}.",
            "encryption.type",
        )
    des = state.get(des_id) if des_id else None
    if etype is None:
        etype = (des or {}).get("properties", {}).get("encryptionType", c.CUSTOMER_KEY) if des_id else c.PLATFORM_KEY
    if etype == c.PLATFORM_KEY and des_id:
        raise c.invalid_parameter(
            f"Encryption type '{etype}' does not support a disk encryption set. Remove 'diskEncryptionSetId' or use "
            f"'{c.CUSTOMER_KEY}' or '{c.DOUBLE}'.",
            "encryption.diskEncryptionSetId",
        )
    if etype in c.CMK_TYPES:
        if not des_id:
            raise c.invalid_parameter(
                f"Disk encryption set id must be specified when encryption type is '{etype}'.",
                "encryption.diskEncryptionSetId",
            )
        _linked_read(call, des_id, disk_id)
        if des is None:
            raise ArmError(
                404,
                "NotFound",
                f"Disk encryption set '{des_id}' was not found. It must exist before disks use it.",
            )
        if c.subscription_of(des["id"]) != c.subscription_of(disk_id):
            # Learn, "Server-side encryption of Azure Disk Storage", Restrictions
            # (https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions): "Most resources related
            # to your customer-managed keys (disk encryption sets, VMs, disks, and snapshots) must be in the same
            # subscription and region." Code and target as the region refusal below; wording # unverified.
            raise c.invalid_parameter(
                f"Disk encryption set '{des_id}' is in subscription '{c.subscription_of(des['id'])}', but disk "
                f"'{name}' is in subscription '{c.subscription_of(disk_id)}'. The disk encryption set must be in the "
                "same subscription as the disk.",
                "encryption.diskEncryptionSetId",
            )
        if c.norm_location(des["location"]) != c.norm_location(location):
            raise c.invalid_parameter(
                f"Disk encryption set '{des_id}' is in location '{des['location']}', but disk '{name}' is in location "
                f"'{c.norm_location(location)}'. The disk encryption set must be in the same region as the disk.",
                "encryption.diskEncryptionSetId",
            )
        des_type = des["properties"].get("encryptionType", c.CUSTOMER_KEY)
        if des_type != etype:
            raise c.invalid_parameter(
                f"Encryption type '{etype}' of disk '{name}' does not match the encryption type '{des_type}' of disk "
                f"encryption set '{des_id}'.",
                "encryption.type",
            )
        if has_ade:
            # Seed + docs: SSE with CMK cannot be enabled on disks that are or ever were ADE-encrypted.
            raise ArmError(
                400,
                "BadRequest",
                f"Encryption with customer-managed keys is not supported for disk '{name}' because it is or has been "
                "encrypted with Azure Disk Encryption.",
            )
    new: dict[str, Any] = {"type": etype}
    if etype in c.CMK_TYPES:
        new["diskEncryptionSetId"] = des["id"] if des else des_id
    old_enc = (old or {}).get("properties", {}).get("encryption") or {"type": c.PLATFORM_KEY}
    changed = old is not None and (
        old_enc.get("type") != etype
        or str(old_enc.get("diskEncryptionSetId") or "").lower() != str(new.get("diskEncryptionSetId") or "").lower()
    )
    owner = (old or {}).get("managedBy")
    if changed and old is not None and old.get("type") == c.DISK_TYPE and c.incremental_snapshots(state, old):
        # Learn, "Server-side encryption of Azure Disk Storage", Restrictions
        # (https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions): "A disk and all of its
        # associated incremental snapshots must have the same disk encryption set", and customer-managed keys enabled
        # on a disk with incremental snapshots "can't be disabled on that disk or its snapshots". Code as DiskRP's
        # other state conflicts; the wording is # unverified (no recorded answer found).
        raise c.operation_not_allowed(
            f"Cannot change the encryption of disk {name} because it has incremental snapshots. A disk and all of its "
            "associated incremental snapshots must have the same disk encryption set."
        )
    if changed and c.vm_allocated(state, owner):
        # Docs (disks FAQ, "switch from SSE with CMK"): the disk must not be attached to a running VM; CMK -> PMK is
        # otherwise allowed. The message mirrors the (checked) ChangeDiskSizeWhileAttachedNotAllowed one.
        raise c.operation_not_allowed(
            f"Cannot change encryption of disk {name} while it is attached to running VM {owner}. Changing the "
            "encryption of a disk of an Azure Virtual Machine requires the virtual machine to be deallocated. Please "
            "stop your VM and retry the operation."
        )
    if etype in c.CMK_TYPES and des is not None and (changed or old is None):
        check_des_key_access(call.state, des)
    return new


def check_des_key_access(state: State, des: dict[str, Any]) -> None:
    sb = c.sandbox_of(state)
    key_url = des["properties"].get("activeKey", {}).get("keyUrl", "")
    found = c.find_key(sb, key_url)
    principal = des_principal(sb, des)
    key = c.parse_key_url(key_url)
    if found is None or key is None or not c.can_use_key(sb, principal, found[0], key[0]):
        raise c.key_vault_access_forbidden(key_url, des["name"])


def des_principal(sb: Any, des: dict[str, Any]) -> str | None:
    """The identity a DES reaches its key with: its user-assigned identity when it has one, else its system-assigned
    one. Recorded: the az CLI test behind des/cli-des-get-system-and-user-assigned-2023-04-02.json (and its vault,
    keyvault/cli-vault-get-2023-02-01-purge-protection.json) gives get/wrapKey/unwrapKey to the user-assigned
    identity's principal (abcff390-...) only; the DES, which also has a system-assigned principal without any access,
    is Succeeded."""
    identity = des.get("identity") or {}
    for rid in identity.get("userAssignedIdentities") or {}:
        try:
            return str(sb.directory.find(mi_res_id=rid).object_id)
        except LookupError:
            continue
    if identity.get("principalId"):
        return str(identity["principalId"])
    return None


def check_ade_request(state: State, name: str, esc: dict[str, Any] | None, encryption: dict[str, Any]) -> None:
    if esc and esc.get("enabled") and encryption.get("type") in c.CMK_TYPES:
        # Seed: "It is not possible to configure ADE if disks are SSE encrypted with CMKs".
        raise ArmError(
            400,
            "BadRequest",
            f"Azure Disk Encryption cannot be enabled on disk '{name}' because it is encrypted with a customer-managed "
            "key.",
        )


def sku_of(name: str, tiers: Mapping[str, str]) -> dict[str, str]:
    """A disk's or snapshot's `sku` ({name, tier}), or DiskRP's refusal of a name it does not know."""
    if name not in tiers:
        raise c.invalid_parameter(f"The value '{name}' of parameter 'sku.name' is not valid.", "sku.name")
    return {"name": name, "tier": tiers[name]}


def new_properties(
    call: Call, props: Mapping[str, Any], read_only: Collection[str], size: int, **own: Any
) -> dict[str, Any]:
    """The properties of a new disk or snapshot: the settable ones as given (those the sandbox does not model, such
    as hyperVGeneration or purchasePlan, are kept, as Azure echoes them; read-only ones are the sandbox's own), then
    `own`, its size, and what DiskRP sets itself."""
    p: dict[str, Any] = {k: v for k, v in props.items() if k not in read_only and v is not None}
    p.update(own)
    p.update(
        {
            "diskSizeGB": size,
            "networkAccessPolicy": props.get("networkAccessPolicy", "AllowAll"),
            "timeCreated": call.state.clock.iso(),
            "provisioningState": "Succeeded",
            "diskSizeBytes": size * 2**30,
            "uniqueId": new_id(),
        }
    )
    return p


def storage_body(
    resource_id: str, kind: str, location: str, sku: dict[str, str], properties: dict[str, Any], tags: Any
) -> dict[str, Any]:
    """A disk's or snapshot's body around its properties."""
    body: dict[str, Any] = {
        "id": resource_id,
        "name": c.short_name(resource_id),
        "type": kind,
        "location": c.norm_location(location),
        "sku": sku,
        "properties": properties,
    }
    if tags is not None:
        body["tags"] = tags
    return body


def new_disk(
    call: Call, disk_id: str, location: str, props: dict[str, Any], sku: dict[str, Any] | None, tags: Any
) -> dict[str, Any]:
    """A new disk body (also used for the disks a VM create makes implicitly)."""
    cd = props.get("creationData")
    if not cd or not cd.get("createOption"):
        raise c.missing_parameter("creationData.createOption" if cd else "creationData")
    if cd["createOption"] not in _CREATE_OPTIONS:
        raise c.invalid_parameter(
            f"The value '{cd['createOption']}' of parameter 'creationData.createOption' is not valid.",
            "creationData.createOption",
        )
    size = props.get("diskSizeGB")
    if size is None:
        if cd["createOption"] == "Empty":
            raise c.missing_parameter("diskSizeGB")
        source = call.state.get(cd.get("sourceResourceId") or "") if cd.get("sourceResourceId") else None
        size = (source or {}).get("properties", {}).get("diskSizeGB", 30)
    sku_body = sku_of((sku or {}).get("name") or "Standard_LRS", _SKU_TIER)
    esc = props.get("encryptionSettingsCollection")
    has_ade = bool(esc and esc.get("enabled"))
    encryption = resolve_encryption(call, disk_id, location, props.get("encryption"), None, has_ade)
    check_ade_request(call.state, c.short_name(disk_id), esc, encryption)
    p = new_properties(call, props, _READ_ONLY, int(size), creationData=cd, encryption=encryption)
    p["publicNetworkAccess"] = props.get("publicNetworkAccess", "Enabled")
    if esc is not None:
        p["encryptionSettingsCollection"] = esc
    if sku_body["tier"] == "Premium" and sku_body["name"] != "PremiumV2_LRS":
        p["tier"] = props.get("tier") or premium_tier(int(size))
    body = storage_body(disk_id, c.DISK_TYPE, location, sku_body, p, tags)
    if has_ade:
        call.state.meta_of(disk_id)["everHadADE"] = True
    return body


def update_disk(call: Call, existing: dict[str, Any], props: dict[str, Any], sku: Any, tags: Any) -> dict[str, Any]:
    state, body = call.state, copy.deepcopy(existing)
    name, owner = existing["name"], existing.get("managedBy")
    p = body["properties"]
    size = props.get("diskSizeGB")
    if size is not None and int(size) != p["diskSizeGB"]:
        if int(size) < p["diskSizeGB"]:
            raise ArmError(
                400,
                "BadRequest",
                f"Disk '{name}' of size {p['diskSizeGB']} GB cannot be resized down to {size} GB. Reducing "
                "disk/snapshot size is not supported in Azure to prevent data loss.",
            )
        if c.vm_allocated(state, owner):
            # Checked: OperationNotAllowed / ChangeDiskSizeWhileAttachedNotAllowed text from Microsoft's docs.
            raise c.operation_not_allowed(
                f"Cannot resize disk {name} while it is attached to running VM {owner}. Resizing a disk of an Azure "
                "Virtual Machine requires the virtual machine to be deallocated. Please stop your VM and retry the "
                "operation."
            )
        if p.get("tier") == premium_tier(p["diskSizeGB"]):  # still the size's baseline tier: it follows the size
            p["tier"] = premium_tier(int(size))
        p["diskSizeGB"], p["diskSizeBytes"] = int(size), int(size) * 2**30
    esc = props.get("encryptionSettingsCollection", p.get("encryptionSettingsCollection"))
    has_ade = bool(esc and esc.get("enabled")) or bool(state.meta_of(existing["id"]).get("everHadADE"))
    p["encryption"] = resolve_encryption(
        call, existing["id"], existing["location"], props.get("encryption"), existing, has_ade
    )
    check_ade_request(state, name, esc if "encryptionSettingsCollection" in props else None, p["encryption"])
    if "encryptionSettingsCollection" in props:
        if props["encryptionSettingsCollection"] is None:
            p.pop("encryptionSettingsCollection", None)
        else:
            p["encryptionSettingsCollection"] = props["encryptionSettingsCollection"]
            if props["encryptionSettingsCollection"].get("enabled"):
                state.meta_of(existing["id"])["everHadADE"] = True
    managed = {"diskSizeGB", "encryption", "encryptionSettingsCollection", "creationData"}
    for key, value in props.items():
        if key not in _READ_ONLY and key not in managed and value is not None:
            p[key] = value
    if sku and sku.get("name") and sku["name"] != body["sku"]["name"]:
        sku_body = sku_of(sku["name"], _SKU_TIER)
        if c.vm_allocated(state, owner):
            raise c.operation_not_allowed(
                f"Cannot change the SKU of disk {name} while it is attached to running VM {owner}. Please stop your VM "
                "and retry the operation."
            )
        body["sku"] = sku_body
    if body["sku"]["tier"] == "Premium" and body["sku"]["name"] != "PremiumV2_LRS":
        p.setdefault("tier", premium_tier(p["diskSizeGB"]))
    else:
        p.pop("tier", None)
    if tags is not None:
        body["tags"] = tags
    return body


@register
class Disks(ResourceType):
    type = c.DISK_TYPE
    api_versions = c.DISK_API
    lro = frozenset({"PUT", "PATCH", "DELETE"})
    location_is_resource = True

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        return disk_view(call.state, body)

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body or {}
        location = tracked_location(call, existing)
        props = req.get("properties") or {}
        if existing is None:
            body = new_disk(call, call.path.id, location, props, req.get("sku"), req.get("tags"))
            if req.get("zones"):
                body["zones"] = req["zones"]
        else:
            body = update_disk(call, existing, props, req.get("sku"), req.get("tags"))
        call.state.put(body)
        return Answer(200, disk_view(call.state, body))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        req = call.body or {}
        body = update_disk(call, existing, req.get("properties") or {}, req.get("sku"), req.get("tags"))
        call.state.put(body)
        return Answer(200, disk_view(call.state, body))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        if existing.get("managedBy"):
            raise c.operation_not_allowed(f"Disk {existing['name']} is attached to VM {existing['managedBy']}.")
        call.state.remove(existing["id"])
        return Answer(200)
