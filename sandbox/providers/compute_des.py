"""Microsoft.Compute/diskEncryptionSets: the customer key behind CMK disks, its system-assigned identity, and
automatic rotation to the newest key version (applied by a clock ticker, within the hour Azure promises)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.arm import Answer, Call, ResourceType, register, tracked_location
from sandbox.providers import compute as c
from sandbox.providers.compute_disks import check_des_key_access

if TYPE_CHECKING:
    from sandbox.server import Sandbox

ROTATION_DELAY_SECONDS = 600  # Azure: "within one hour" of the new version; the sandbox is deterministic: 10 min
ROTATIONS = "compute.desRotations"  # des id -> {"keyUrl", "due"}: a new key version waiting to be taken up


def install(sb: Sandbox) -> None:
    sb.state.clock.on_tick(lambda: apply_due_rotations(sb))
    c.on_new_version(lambda vault, entry, version: _on_new_version(sb, vault, entry, version))


def disks_using(state: Any, des_id: str) -> list[dict[str, Any]]:
    wanted = des_id.lower()
    return [
        d
        for d in state.of_type(c.DISK_TYPE)
        if str(d["properties"].get("encryption", {}).get("diskEncryptionSetId") or "").lower() == wanted
    ]


def _identity(sb: Sandbox, des_id: str, requested: dict[str, Any] | None, old: dict[str, Any] | None) -> dict | None:
    if requested is None:
        return copy.deepcopy(old)
    kind = str(requested.get("type") or "None")
    kinds = {k.strip() for k in kind.split(",")}
    if not kinds <= {"SystemAssigned", "UserAssigned", "None"}:
        raise c.invalid_parameter(f"The value '{kind}' of parameter 'identity.type' is not valid.", "identity.type")
    out: dict[str, Any] = {"type": kind}
    if "SystemAssigned" in kinds:
        p = sb.directory.add_system_identity(des_id)
        out["principalId"], out["tenantId"] = p.object_id, sb.state.tenant_id
    else:
        sb.directory.remove_system_identity(des_id)
    if "UserAssigned" in kinds:
        out["userAssignedIdentities"] = {}
        for rid in requested.get("userAssignedIdentities") or {}:
            try:
                p = sb.directory.find(mi_res_id=rid)
                out["userAssignedIdentities"][rid] = {"principalId": p.object_id, "clientId": p.client_id}
            except LookupError:
                out["userAssignedIdentities"][rid] = {}
    return out


def _user_assigned_known(sb: Sandbox, identity: dict[str, Any] | None) -> bool:
    return any(v.get("principalId") for v in ((identity or {}).get("userAssignedIdentities") or {}).values())


def _resolve_key(
    sb: Sandbox, des_id: str, location: str, active_key: dict[str, Any] | None, rotation: bool
) -> dict[str, Any]:
    """Validate activeKey; return it with sourceVault filled in and the key URL carrying a version."""
    if not active_key or not active_key.get("keyUrl"):
        raise c.missing_parameter("activeKey.keyUrl")
    key_url = active_key["keyUrl"]
    parsed = c.parse_key_url(key_url)
    found = c.find_key(sb, key_url) if parsed else None
    if parsed is None or found is None:
        raise c.invalid_parameter(
            f"The key '{key_url}' could not be found. Make sure the key vault key exists and the key URL is valid.",
            "activeKey.keyUrl",
        )
    vault, entry, version = found
    given = (active_key.get("sourceVault") or {}).get("id")
    cross = not same_subscription(des_id, vault["id"])
    if given and cross:
        # DiskRP spec (specification/compute/resource-manager/Microsoft.Compute/DiskRP/stable/2025-01-02/
        # diskEncryptionSet.json, KeyForDiskEncryptionSet.sourceVault): "optional and cannot be used if the KeyVault
        # subscription is not the same as the Disk Encryption Set subscription". Code and target as DiskRP's other
        # activeKey refusals; the wording is # unverified (no recorded answer found).
        raise c.invalid_parameter(
            f"The source vault '{given}' cannot be used because key vault '{vault['id']}' is in another subscription "
            f"than disk encryption set '{des_id}'. Remove 'activeKey.sourceVault' and give only the key URL.",
            "activeKey.sourceVault.id",
        )
    if given and given.lower() != vault["id"].lower():
        raise c.invalid_parameter(
            f"The source vault '{given}' does not match the key vault '{vault['id']}' of key '{key_url}'.",
            "activeKey.sourceVault.id",
        )
    if c.norm_location(vault.get("location", "")) != c.norm_location(location):
        # Learn, "Server-side encryption of Azure Disk Storage", Restrictions
        # (https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions): "Azure Key Vaults may be
        # used from a different subscription but must be in the same region as your disk encryption set". Code and
        # target as DiskRP's other keyUrl refusals; the wording is # unverified (no recorded answer found).
        raise c.invalid_parameter(
            f"The key vault '{vault['id']}' of key '{key_url}' is in location '{c.norm_location(vault['location'])}', "
            f"but disk encryption set '{c.short_name(des_id)}' is in location '{c.norm_location(location)}'. The key "
            "vault must be in the same region as the disk encryption set.",
            "activeKey.keyUrl",
        )
    if rotation and not vault.get("properties", {}).get("enablePurgeProtection"):
        # Seed: automatic key rotation "does require the key vault to have purge protection enabled".
        raise c.invalid_parameter(
            f"Automatic key rotation cannot be enabled for disk encryption set '{c.short_name(des_id)}' because "
            f"purge protection is not enabled on key vault '{vault['id']}'. Enable purge protection on the key vault "
            "and retry.",
            "rotationToLatestKeyVersionEnabled",
        )
    if version is None:
        # DiskRP spec (specification/compute/resource-manager/Microsoft.Compute/DiskRP/stable/2025-01-02/
        # diskEncryptionSet.json, KeyForDiskEncryptionSet.keyUrl): "Fully versioned Key Url ... Version segment of the
        # Url is required regardless of rotationToLatestKeyVersionEnabled value"; Microsoft's rotation example
        # (DiskEncryptionSet_Update_WithRotationToLatestKeyVersionEnabled.json) sends a versioned URL. Code and
        # target as DiskRP's other keyUrl refusals; the wording is unverified (no recorded answer found).
        raise c.invalid_parameter(
            f"The key URL '{key_url}' is not a fully versioned key URL: the version segment is required, whether or "
            "not rotationToLatestKeyVersionEnabled is set.",
            "activeKey.keyUrl",
        )
    return active_key_of(des_id, vault, c.key_url_of(vault, entry["name"], version["version"]))


def same_subscription(a: str, b: str) -> bool:
    return a.split("/")[2].lower() == b.split("/")[2].lower()


def active_key_of(des_id: str, vault: dict[str, Any], key_url: str) -> dict[str, Any]:
    """The stored activeKey: DiskRP fills sourceVault in for a vault of the set's own subscription (the create example
    DiskEncryptionSet_Create.json answers it); for a vault of another subscription the answer carries only the key URL
    (DiskEncryptionSet_Create_WithKeyVaultFromADifferentSubscription.json, DiskRP stable 2025-01-02 examples)."""
    if same_subscription(des_id, vault["id"]):
        return {"sourceVault": {"id": vault["id"]}, "keyUrl": key_url}
    return {"keyUrl": key_url}


@register
class DiskEncryptionSets(ResourceType):
    type = c.DES_TYPE
    api_versions = c.DISK_API
    lro = frozenset({"PUT", "PATCH", "DELETE"})
    location_is_resource = True

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body or {}
        location = tracked_location(call, existing)
        return self._write(call, existing, req, location)

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        req = copy.deepcopy(call.body or {})
        props = {**existing["properties"], **(req.get("properties") or {})}
        req["properties"] = props
        req.setdefault("tags", existing.get("tags"))
        return self._write(call, existing, req, existing["location"], patch=True)

    def _write(
        self, call: Call, existing: dict[str, Any] | None, req: dict[str, Any], location: str, patch: bool = False
    ) -> Answer:
        sb, state, des_id = c.sandbox_of(call.state), call.state, call.path.id
        props = req.get("properties") or {}
        etype = props.get("encryptionType") or c.CUSTOMER_KEY
        if etype not in c.DES_TYPES:
            raise c.invalid_parameter(
                f"The value '{etype}' of parameter 'encryptionType' is not valid.", "encryptionType"
            )
        rotation = bool(props.get("rotationToLatestKeyVersionEnabled"))
        old_props = (existing or {}).get("properties", {})
        if existing is not None and etype != old_props.get("encryptionType") and disks_using(state, existing["id"]):
            raise c.operation_not_allowed(
                f"Changing the encryption type of disk encryption set '{existing['name']}' is not allowed while it is "
                "used by disks."
            )
        active = _resolve_key(sb, des_id, location, props.get("activeKey"), rotation)
        if "identity" in req or existing is None:
            identity = _identity(sb, des_id, req.get("identity"), None)
        else:
            identity = copy.deepcopy(existing.get("identity"))
        body: dict[str, Any] = {
            "id": des_id,
            "name": call.path.name,
            "type": c.DES_TYPE,
            "location": c.norm_location(location),
        }
        if req.get("tags") is not None:
            body["tags"] = req["tags"]
        if identity is not None:
            body["identity"] = identity
        p: dict[str, Any] = {
            "activeKey": active,
            "encryptionType": etype,
            "previousKeys": copy.deepcopy(old_props.get("previousKeys", [])),
            "provisioningState": "Succeeded",
        }
        if "rotationToLatestKeyVersionEnabled" in props:
            p["rotationToLatestKeyVersionEnabled"] = rotation
        for key in ("lastKeyRotationTimestamp", "federatedClientId"):
            if props.get(key) is not None:
                p[key] = props[key]
        body["properties"] = p
        if rotation:
            _take_latest(sb, body)
            active = p["activeKey"]
        if existing is None and _user_assigned_known(sb, identity):
            # A user-assigned identity exists before the set: DiskRP checks that it can use the key at creation
            # (the az CLI test behind des/cli-des-get-system-and-user-assigned-2023-04-02.json grants it first);
            # the refusal's code and wording are the key-change one's (unverified for creation).
            check_des_key_access(state, body)
        key_changed = existing is not None and old_props.get("activeKey", {}).get("keyUrl", "").lower() != (
            active["keyUrl"].lower()
        )
        if key_changed:
            # An existing identity is checked against the new key (a brand-new system identity cannot have access yet).
            check_des_key_access(state, body)
            p["lastKeyRotationTimestamp"] = state.clock.iso()
            for disk in disks_using(state, des_id):
                state.meta_of(disk["id"])["keyUrl"] = active["keyUrl"]
        state.put(body)
        state.table(ROTATIONS).pop(des_id.lower(), None)
        return Answer(200, copy.deepcopy(body))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        users = disks_using(call.state, existing["id"])
        if users:
            raise c.operation_not_allowed(
                f"Disk encryption set '{existing['name']}' cannot be deleted because it is used by disk(s) "
                f"{', '.join(d['id'] for d in users)}."
            )
        sb = c.sandbox_of(call.state)
        sb.directory.remove_system_identity(existing["id"])
        call.state.table(ROTATIONS).pop(existing["id"].lower(), None)
        call.state.remove(existing["id"])
        return Answer(200)


# -- automatic key rotation -----------------------------------------------------------------------------------


def _epoch(value: Any, fallback: float) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return fallback
    return fallback


def _des_follows(sb: Sandbox, des: dict[str, Any], vault: dict[str, Any], key_name: str) -> bool:
    p = des["properties"]
    if not p.get("rotationToLatestKeyVersionEnabled"):
        return False
    found = c.find_key(sb, (p.get("activeKey") or {}).get("keyUrl", ""))  # the key URL names the vault
    return (
        found is not None
        and found[0]["id"].lower() == vault["id"].lower()
        and found[1]["name"].lower() == (key_name.lower())
    )


def _take_latest(sb: Sandbox, des: dict[str, Any]) -> None:
    """With auto-rotation on, the set uses the newest key version at once: Microsoft's example
    DiskEncryptionSet_Update_WithRotationToLatestKeyVersionEnabled asks for keyVersion1 and answers KeyVersion2 with a
    lastKeyRotationTimestamp."""
    p = des["properties"]
    found = c.find_key(sb, p["activeKey"]["keyUrl"])
    if found is None:
        return
    vault, entry, version = found
    latest = c.latest_version(entry)
    if version is not None and latest["version"].lower() != version["version"].lower():
        p["previousKeys"] = [copy.deepcopy(p["activeKey"])]
        p["activeKey"] = active_key_of(des["id"], vault, c.key_url_of(vault, entry["name"], latest["version"]))
        p["lastKeyRotationTimestamp"] = sb.state.clock.iso()
        for disk in disks_using(sb.state, des["id"]):
            sb.state.meta_of(disk["id"])["keyUrl"] = p["activeKey"]["keyUrl"]


def _on_new_version(sb: Sandbox, vault: dict[str, Any], entry: dict[str, Any], version: dict[str, Any]) -> None:
    state = sb.state
    if state.get(vault["id"]) is None:
        return  # another sandbox's vault
    created = _epoch((version.get("attributes") or {}).get("created"), state.clock.timestamp())
    url = c.key_url_of(vault, entry["name"], version["version"])
    for des in state.of_type(c.DES_TYPE):
        if _des_follows(sb, des, vault, entry["name"]):
            state.table(ROTATIONS)[des["id"].lower()] = {"keyUrl": url, "due": created + ROTATION_DELAY_SECONDS}


def apply_due_rotations(sb: Sandbox) -> None:
    """Clock ticker: move every DES whose new key version is due (and its disks) to that version."""
    state = sb.state
    table = state.table(ROTATIONS)
    now = state.clock.timestamp()
    for key, pending in list(table.items()):
        des = state.get(key)
        if des is None or not des["properties"].get("rotationToLatestKeyVersionEnabled"):
            table.pop(key, None)
            continue
        if state.meta_of(des["id"]).get("autoRotationStuck") or now < pending["due"]:
            continue
        table.pop(key, None)
        p = des["properties"]
        found = c.find_key(sb, pending["keyUrl"])
        from sandbox.providers.compute_disks import des_principal

        parsed = c.parse_key_url(pending["keyUrl"])
        if found is None or parsed is None or not c.can_use_key(sb, des_principal(sb, des), found[0], parsed[0]):
            err = c.key_vault_access_forbidden(pending["keyUrl"], des["name"])
            p["autoKeyRotationError"] = {"code": err.code, "message": err.message}
            continue
        p.pop("autoKeyRotationError", None)
        p["previousKeys"] = [copy.deepcopy(p["activeKey"])]
        p["activeKey"] = active_key_of(des["id"], found[0], pending["keyUrl"])
        p["lastKeyRotationTimestamp"] = state.clock.iso()
        for disk in disks_using(state, des["id"]):
            state.meta_of(disk["id"])["keyUrl"] = pending["keyUrl"]
