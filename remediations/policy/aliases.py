"""Azure Policy aliases for the resource types Cryptward touches, and where each points in the ARM GET body.

Alias names are Azure's own (as listed by `Get-AzPolicyAlias`); lookup is case-insensitive, as in Azure. An alias
belongs to one resource type; on a resource of another type it selects nothing. `[*]` in a path selects every member
of an array. Pure data and lookups: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from remediations.policy import dataplane

STAR = "[*]"

VAULT = "Microsoft.KeyVault/vaults"
KEY = "Microsoft.KeyVault/vaults/keys"
DISK = "Microsoft.Compute/disks"
DES = "Microsoft.Compute/diskEncryptionSets"
VM = "Microsoft.Compute/virtualMachines"
VMSS = "Microsoft.Compute/virtualMachineScaleSets"
SNAPSHOT = "Microsoft.Compute/snapshots"
IMAGE = "Microsoft.Compute/images"

RESOURCE_TYPES: tuple[str, ...] = (VAULT, KEY, DISK, DES, VM, VMSS, SNAPSHOT, IMAGE)

# Azure Policy's `Indexed` mode evaluates only the types that support tags and location ("Azure Policy definition
# structure basics", https://learn.microsoft.com/azure/governance/policy/concepts/definition-structure-basics#mode).
# Of the types Cryptward reads, key-vault keys support no tags ("Tag support for Azure resources",
# MicrosoftDocs/azure-docs articles/azure-resource-manager/management/tag-support.md: Microsoft.KeyVault
# `vaults / keys`: Supports tags No); vaults, disks, disk encryption sets, VMs, scale sets, snapshots and images
# support both (same page, Microsoft.Compute).
INDEXED_TYPES: frozenset[str] = frozenset(t.lower() for t in (VAULT, DISK, DES, VM, VMSS, SNAPSHOT, IMAGE))

# Resource Provider modes (same page, "Resource Provider modes"): definitions over a service's data plane. Cryptward
# recognises them and evaluates none yet; a mode listed in DATA_PLANE_MODES is one whose types Cryptward reads.
PROVIDER_MODES: tuple[str, ...] = (
    "Microsoft.Kubernetes.Data",
    "Microsoft.KeyVault.Data",
    "Microsoft.Network.Data",
    "Microsoft.ManagedHSM.Data",
    "Microsoft.DataFactory.Data",
    "Microsoft.MachineLearningServices.v2.Data",
    "Microsoft.LoadTestService.Data",
)
DATA_PLANE_MODES: frozenset[str] = frozenset({dataplane.MODE})
KEY_DATA = dataplane.KEY_DATA  # the Key Vault data plane's keys, as Azure Policy presents them (policy/dataplane.py)
# A type Cryptward evaluates as a view of one it reads: the data-plane key is made from the management-plane key.
READ_AS: dict[str, str] = {KEY_DATA.lower(): KEY}

# The api-version Cryptward reads each type with: `requestContext().apiVersion` during compliance evaluation of an
# existing resource is the version the resource was read with.
API_VERSIONS: dict[str, str] = {
    VAULT: "2026-05-15",
    KEY: "2026-05-15",
    DISK: "2026-03-02",
    DES: "2026-03-02",
    VM: "2026-04-01",
    VMSS: "2026-04-01",  # ComputeRP, as VMs
    SNAPSHOT: "2026-03-02",  # DiskRP, as disks
    IMAGE: "2026-04-01",  # ComputeRP
}


def _props(resource_type: str, *suffixes: str) -> dict[str, str]:
    """The common case: alias `<type>/<suffix>` points at `properties.<suffix>`."""
    return {f"{resource_type}/{s}": f"properties.{s}" for s in suffixes}


_PEC = "privateEndpointConnections[*]"
_VAULT_ACL = "networkAcls"
_AP = "accessPolicies[*]"
_DISK_ES = "encryptionSettingsCollection.encryptionSettings[*]"
_KEY_RP = "rotationPolicy"
_VM_OS = "storageProfile.osDisk"
_VM_DATA = "storageProfile.dataDisks[*]"
_IMAGE = "properties.storageProfile.imageReference"
_VMP = "virtualMachineProfile"
_VMSS_OS = f"{_VMP}.storageProfile.osDisk"
_VMSS_DATA = f"{_VMP}.storageProfile.dataDisks[*]"
_VMSS_EXT = f"{_VMP}.extensionProfile.extensions[*]"

_TABLE: dict[str, dict[str, str]] = {
    VAULT: {
        **_props(VAULT, "enablePurgeProtection", "enableSoftDelete", "softDeleteRetentionInDays"),
        **_props(VAULT, "enableRbacAuthorization", "publicNetworkAccess", "enabledForDiskEncryption"),
        **_props(VAULT, "enabledForDeployment", "enabledForTemplateDeployment", "createMode", "vaultUri"),
        **_props(VAULT, "tenantId", "sku", "sku.name", "sku.family", "provisioningState"),
        **_props(VAULT, _VAULT_ACL, f"{_VAULT_ACL}.defaultAction", f"{_VAULT_ACL}.bypass"),
        **_props(VAULT, f"{_VAULT_ACL}.ipRules", f"{_VAULT_ACL}.ipRules[*]", f"{_VAULT_ACL}.ipRules[*].value"),
        **_props(VAULT, f"{_VAULT_ACL}.virtualNetworkRules", f"{_VAULT_ACL}.virtualNetworkRules[*]"),
        **_props(VAULT, f"{_VAULT_ACL}.virtualNetworkRules[*].id"),
        **_props(VAULT, "accessPolicies", _AP, f"{_AP}.tenantId", f"{_AP}.objectId", f"{_AP}.applicationId"),
        **_props(VAULT, f"{_AP}.permissions", f"{_AP}.permissions.keys", f"{_AP}.permissions.keys[*]"),
        **_props(VAULT, f"{_AP}.permissions.secrets", f"{_AP}.permissions.secrets[*]"),
        **_props(VAULT, f"{_AP}.permissions.certificates", f"{_AP}.permissions.certificates[*]"),
        **_props(VAULT, "privateEndpointConnections", _PEC, f"{_PEC}.id"),
        # Members of privateEndpointConnections nest their own `properties`; the alias skips that level.
        f"{VAULT}/{_PEC}.privateEndpoint.id": f"properties.{_PEC}.properties.privateEndpoint.id",
        f"{VAULT}/{_PEC}.privateLinkServiceConnectionState.status": (
            f"properties.{_PEC}.properties.privateLinkServiceConnectionState.status"
        ),
        f"{VAULT}/{_PEC}.provisioningState": f"properties.{_PEC}.properties.provisioningState",
    },
    KEY: {
        **_props(KEY, "kty", "keySize", "curveName", "keyOps", "keyOps[*]", "keyUri", "keyUriWithVersion"),
        **_props(KEY, "attributes", "attributes.enabled", "attributes.exp", "attributes.nbf"),
        **_props(KEY, "attributes.created", "attributes.updated", "attributes.recoveryLevel"),
        **_props(KEY, _KEY_RP, f"{_KEY_RP}.attributes.expiryTime", f"{_KEY_RP}.lifetimeActions"),
        **_props(KEY, f"{_KEY_RP}.lifetimeActions[*]", f"{_KEY_RP}.lifetimeActions[*].action.type"),
        **_props(KEY, f"{_KEY_RP}.lifetimeActions[*].trigger.timeAfterCreate"),
        **_props(KEY, f"{_KEY_RP}.lifetimeActions[*].trigger.timeBeforeExpiry"),
    },
    DISK: {
        **_props(DISK, "encryption", "encryption.type", "encryption.diskEncryptionSetId", "diskState", "osType"),
        **_props(DISK, "diskSizeGB", "networkAccessPolicy", "publicNetworkAccess", "diskAccessId"),
        **_props(DISK, "dataAccessAuthMode"),
        **_props(DISK, "securityProfile.securityType", "securityProfile.secureVMDiskEncryptionSetId"),
        **_props(DISK, "encryptionSettingsCollection", "encryptionSettingsCollection.enabled"),
        **_props(DISK, _DISK_ES, f"{_DISK_ES}.diskEncryptionKey.secretUrl"),
        **_props(DISK, f"{_DISK_ES}.diskEncryptionKey.sourceVault.id", f"{_DISK_ES}.keyEncryptionKey.keyUrl"),
        **_props(DISK, f"{_DISK_ES}.keyEncryptionKey.sourceVault.id"),
        # Top-level members of the ARM body, not under `properties`.
        f"{DISK}/managedBy": "managedBy",
        f"{DISK}/sku": "sku",
        f"{DISK}/sku.name": "sku.name",
        f"{DISK}/sku.tier": "sku.tier",
    },
    DES: {
        **_props(DES, "encryptionType", "activeKey", "activeKey.keyUrl", "activeKey.sourceVault.id"),
        **_props(DES, "rotationToLatestKeyVersionEnabled", "lastKeyRotationTimestamp", "provisioningState"),
        **_props(DES, "previousKeys", "previousKeys[*]", "previousKeys[*].keyUrl"),
    },
    VM: {
        **_props(VM, "securityProfile", "securityProfile.encryptionAtHost", "securityProfile.securityType"),
        **_props(VM, "hardwareProfile.vmSize", f"{_VM_OS}.osType", f"{_VM_OS}.managedDisk.id", f"{_VM_OS}.vhd.uri"),
        **_props(VM, f"{_VM_OS}.managedDisk.diskEncryptionSet.id", f"{_VM_OS}.encryptionSettings"),
        **_props(VM, f"{_VM_OS}.encryptionSettings.enabled", f"{_VM_OS}.encryptionSettings.keyEncryptionKey.keyUrl"),
        **_props(VM, f"{_VM_OS}.encryptionSettings.diskEncryptionKey.sourceVault.id"),
        **_props(VM, "storageProfile.dataDisks", _VM_DATA, f"{_VM_DATA}.managedDisk.id", f"{_VM_DATA}.vhd.uri"),
        **_props(VM, f"{_VM_DATA}.managedDisk.diskEncryptionSet.id", f"{_VM_DATA}.name", f"{_VM_DATA}.lun"),
        **_props(VM, "storageProfile.imageReference", "storageProfile.imageReference.id"),
        **_props(VM, "storageProfile.imageReference.publisher", "storageProfile.imageReference.offer"),
        **_props(VM, "storageProfile.imageReference.sku", "storageProfile.imageReference.version"),
        # Azure's older short names for the same VM properties.
        f"{VM}/sku.name": "properties.hardwareProfile.vmSize",
        f"{VM}/osDisk.Uri": f"properties.{_VM_OS}.vhd.uri",
        "Microsoft.Compute/imagePublisher": f"{_IMAGE}.publisher",
        "Microsoft.Compute/imageOffer": f"{_IMAGE}.offer",
        "Microsoft.Compute/imageSku": f"{_IMAGE}.sku",
        "Microsoft.Compute/imageVersion": f"{_IMAGE}.version",
        "Microsoft.Compute/imageId": f"{_IMAGE}.id",
        "Microsoft.Compute/licenseType": "properties.licenseType",
        f"{VM}/licenseType": "properties.licenseType",
    },
}


_TABLE[KEY_DATA] = {f"{KEY_DATA}/{suffix}": path for suffix, path in dataplane.ALIASES.items()}

# Scale sets, snapshots and images: alias names as Azure Policy's built-ins use them (Azure/azure-policy,
# HostBasedEncryptionRequired_Deny.json, OSAndDataDiskCMKRequired_Deny.json, ManagedDiskEncryptionSetsAllowed_Deny.json,
# MANAExistingVMNVASupport_Modify.json, VMRequireManagedDisk_Audit.json); paths as the ComputeRP / DiskRP bodies have
# them. The extension aliases skip each member's own `properties` level, as Azure's do for VM extensions.
_TABLE[VMSS] = {
    **_props(VMSS, "upgradePolicy.mode", f"{_VMP}.securityProfile.encryptionAtHost", f"{_VMP}.securityProfile"),
    **_props(VMSS, f"{_VMSS_OS}.managedDisk.diskEncryptionSet.id", f"{_VMSS_OS}.osType", f"{_VMSS_OS}.vhdContainers"),
    **_props(VMSS, f"{_VMSS_OS}.image.uri", f"{_VMP}.storageProfile.dataDisks", _VMSS_DATA),
    **_props(VMSS, f"{_VMSS_DATA}.managedDisk.diskEncryptionSet.id", f"{_VMP}.osProfile.linuxConfiguration"),
    **_props(VMSS, f"{_VMP}.storageProfile.imageReference.publisher", f"{_VMP}.storageProfile.imageReference.offer"),
    **_props(VMSS, f"{_VMP}.osProfile.windowsConfiguration", _VMSS_EXT),
    f"{VMSS}/{_VMSS_EXT}.type": f"properties.{_VMSS_EXT}.properties.type",
    f"{VMSS}/{_VMSS_EXT}.publisher": f"properties.{_VMSS_EXT}.properties.publisher",
    f"{VMSS}/{_VMSS_EXT}.settings.VolumeType": f"properties.{_VMSS_EXT}.properties.settings.VolumeType",
    # Azure's older short names for the same properties.
    f"{VMSS}/osDisk.vhdContainers": f"properties.{_VMSS_OS}.vhdContainers",
    f"{VMSS}/osdisk.imageUrl": f"properties.{_VMSS_OS}.image.uri",
    f"{VMSS}/sku.name": "sku.name",
}
_TABLE[SNAPSHOT] = {
    **_props(SNAPSHOT, "encryption", "encryption.type", "encryption.diskEncryptionSetId", "incremental", "osType"),
    **_props(SNAPSHOT, "creationData.sourceResourceId", "creationData.createOption", "diskState"),
}
_TABLE[IMAGE] = {
    **_props(IMAGE, "storageProfile.osDisk.diskEncryptionSet.id", "storageProfile.osDisk.osType"),
    **_props(IMAGE, "storageProfile.osDisk.managedDisk.id", "storageProfile.osDisk.snapshot.id"),
    **_props(IMAGE, "storageProfile.dataDisks[*]", "storageProfile.dataDisks[*].diskEncryptionSet.id"),
}


# Types an AuditIfNotExists / DeployIfNotExists existence check reads (`then.details.type`), with their aliases as
# `Get-AzPolicyAlias` lists them (its output per type in maciejporebski/azure-policy-aliases, aliases/<namespace>/
# <type>.md: microsoft.insights/diagnosticSettings.md, Microsoft.Compute/virtualMachines-extensions.md,
# Microsoft.KeyVault/vaults-privateEndpointConnections.md). `logs.enabled` and `metrics.enabled` are Azure's older
# array aliases without `[*]`: their path is `properties.logs[*].enabled`.
DIAGNOSTIC_SETTINGS = "Microsoft.Insights/diagnosticSettings"
VM_EXTENSION = "Microsoft.Compute/virtualMachines/extensions"
VAULT_PEC = "Microsoft.KeyVault/vaults/privateEndpointConnections"
# Microsoft.Security/pricings: the Defender plans of a subscription (Azure Policy 0e6763cc reads pricingTier; the
# alias points at properties.pricingTier as in azure-rest-api-specs Microsoft.Security pricings.json).
SECURITY_PRICINGS = "Microsoft.Security/pricings"
RELATED_TYPES: tuple[str, ...] = (DIAGNOSTIC_SETTINGS, VM_EXTENSION, VAULT_PEC, SECURITY_PRICINGS)
_LOG, _MET = "logs[*]", "metrics[*]"
_TABLE[DIAGNOSTIC_SETTINGS] = {
    **_props(DIAGNOSTIC_SETTINGS, "storageAccountId", "workspaceId", "eventHubAuthorizationRuleId", "eventHubName"),
    **_props(DIAGNOSTIC_SETTINGS, "serviceBusRuleId", "logAnalyticsDestinationType", "logs", _LOG, "metrics", _MET),
    **_props(DIAGNOSTIC_SETTINGS, f"{_LOG}.enabled", f"{_LOG}.category", f"{_LOG}.categoryGroup"),
    **_props(DIAGNOSTIC_SETTINGS, f"{_LOG}.retentionPolicy", f"{_LOG}.retentionPolicy.enabled"),
    **_props(DIAGNOSTIC_SETTINGS, f"{_LOG}.retentionPolicy.days", f"{_MET}.enabled", f"{_MET}.category"),
    **_props(DIAGNOSTIC_SETTINGS, f"{_MET}.timeGrain", f"{_MET}.retentionPolicy", f"{_MET}.retentionPolicy.enabled"),
    **_props(DIAGNOSTIC_SETTINGS, f"{_MET}.retentionPolicy.days"),
    f"{DIAGNOSTIC_SETTINGS}/logs.enabled": f"properties.{_LOG}.enabled",
    f"{DIAGNOSTIC_SETTINGS}/metrics.enabled": f"properties.{_MET}.enabled",
}
_TABLE[VM_EXTENSION] = _props(
    VM_EXTENSION,
    "provisioningState",
    "publisher",
    "type",
    "typeHandlerVersion",
    "autoUpgradeMinorVersion",
    "enableAutomaticUpgrade",
    "settings",
    "settings.workspaceId",
    "forceUpdateTag",
    "suppressFailures",
)
_TABLE[SECURITY_PRICINGS] = _props(SECURITY_PRICINGS, "pricingTier", "subPlan")
_TABLE[VAULT_PEC] = _props(
    VAULT_PEC,
    "privateEndpoint",
    "privateEndpoint.id",
    "privateLinkServiceConnectionState",
    "privateLinkServiceConnectionState.status",
    "privateLinkServiceConnectionState.description",
    "privateLinkServiceConnectionState.actionRequired",
    "provisioningState",
)


# --- Cryptward's own fields: NOT Azure aliases ----------------------------------------------------------------------
# Azure reads related resources (locks, diagnostic settings, role assignments) with AuditIfNotExists. Cryptward keeps
# every condition on one body instead: the reader adds a top-level `cryptward` object to the resource's GET body,
#
#   all types  locks: [lock GET bodies at the resource, its group and subscription]
#              adeHistory: true when the ledger remembers Azure Disk Encryption on this disk or VM
#   vaults     diagnosticSettings: [the vault's diagnostic setting GET bodies]; defenderForKeyVault: the GET body of
#              its subscription's Microsoft.Security/pricings/KeyVaults plan; activityLogAlerts: [its subscription's
#              activity-log alert rules] (both remediations/engine/subscription.py)
#              encryptionSets: [{id, set, keyScope, principals, keyRoles}: the DES using the vault (keyaccess.py)]
#              accessReview: [{assignment, principalType, role, scope, problem, recommended, say}: who may do what
#              on the vault against the seed's permissions (vaultaccess.py, read by engine/vaultextras.py)]
#              items: [{id, name, kind, enabled, expires}: its secrets, certificates and keys, metadata only
#              (expiry.py, read by engine/vaultextras.py)]
#   DES        keyVault: the GET body of the vault holding the active key
#              keyVaultRoleAssignments: [role assignments for the DES's principals at its key's scope and above]
#              keyAccess: {model, keyScope, principals, missing}: whether its identities can use its key, decided
#              as Key Vault decides (remediations/keyaccess.py); `missing` lists the principals that cannot
#   keys       diskEncryptionSets: [ids of the disk encryption sets whose active key is this key]
#   VMs        powerState: the PowerState/... code of the instance view; extensions: [the VM body's `resources`:
#              whole extensions from a GET, `{id, name}` from a list, which names them by id only];
#              disks: [GET bodies of the VM's managed disks]; skuCapabilities: {name: value} of its size (Resource
#              SKUs API: EncryptionAtHostSupported, MemoryGB, MaxResourceVolumeMB), read by the advisor, or
#              skuUnreadable: why the SKU list could not be read; encryptionAtHostFeature: {id, state} of the
#              subscription's Microsoft.Compute/EncryptionAtHost feature; adeKeyVault: {id, name, location,
#              properties: {enabledForDiskEncryption}, url} of the vault its Azure Disk Encryption extension's
#              settings name (KeyVaultResourceId, else KeyVaultURL), read by remediations/engine/adevaults.py
#   scale sets instances: [{instanceId, name, latestModelApplied}] from the scale set's VM list; skuCapabilities,
#              skuUnreadable and encryptionAtHostFeature as for VMs (remediations/engine/scalesets.py)
#   snapshots, images  sourceEncryption: the `properties.encryption` of the disk (or snapshot) they were made from
#
# and a policy reads it with a field named like its path: `cryptward.locks[*].properties.level`. A block the reader
# did not fill is absent, so a policy that needs it guards with `exists: true` (not read is not non-compliant).
CRYPTWARD = "cryptward"
_CW_DS = "cryptward.diagnosticSettings[*].properties"
_CW_KV = "cryptward.keyVault"
_CW_RA = "cryptward.keyVaultRoleAssignments"
_CRYPTWARD_PATHS: dict[str, tuple[str, ...]] = {
    "*": ("cryptward.locks", "cryptward.locks[*]", "cryptward.locks[*].name", "cryptward.locks[*].properties.level"),
    VAULT: (
        "cryptward.diagnosticSettings",
        "cryptward.diagnosticSettings[*]",
        f"{_CW_DS}.workspaceId",
        f"{_CW_DS}.logs[*]",
        f"{_CW_DS}.logs[*].category",
        f"{_CW_DS}.logs[*].categoryGroup",
        f"{_CW_DS}.logs[*].enabled",
        f"{_CW_DS}.metrics[*]",
        f"{_CW_DS}.metrics[*].category",
        f"{_CW_DS}.metrics[*].enabled",
        "cryptward.encryptionSets",
        "cryptward.encryptionSets[*]",
        "cryptward.encryptionSets[*].id",
        "cryptward.accessReview",
        "cryptward.accessReview[*]",
        "cryptward.accessReview[*].problem",
        "cryptward.accessReview[*].principalType",
        "cryptward.items",
        "cryptward.items[*]",
        "cryptward.items[*].kind",
        "cryptward.items[*].enabled",
        "cryptward.items[*].expires",
        "cryptward.defenderForKeyVault",
        "cryptward.defenderForKeyVault.properties.pricingTier",
        "cryptward.activityLogAlerts",
        "cryptward.activityLogAlerts[*]",
        "cryptward.activityLogAlerts[*].properties.enabled",
        "cryptward.activityLogAlerts[*].properties.scopes[*]",
        "cryptward.activityLogAlerts[*].properties.condition.allOf[*]",
        "cryptward.activityLogAlerts[*].properties.condition.allOf[*].field",
        "cryptward.activityLogAlerts[*].properties.condition.allOf[*].equals",
    ),
    DES: (
        _CW_KV,
        f"{_CW_KV}.id",
        f"{_CW_KV}.location",
        f"{_CW_KV}.properties.enablePurgeProtection",
        f"{_CW_KV}.properties.enableRbacAuthorization",
        f"{_CW_KV}.properties.accessPolicies[*]",
        f"{_CW_KV}.properties.accessPolicies[*].objectId",
        f"{_CW_KV}.properties.accessPolicies[*].permissions.keys",
        _CW_RA,
        f"{_CW_RA}[*]",
        f"{_CW_RA}[*].properties.principalId",
        f"{_CW_RA}[*].properties.roleDefinitionId",
        "cryptward.keyAccess",
        "cryptward.keyAccess.model",
        "cryptward.keyAccess.missing[*]",
        "cryptward.keyAccess.principals[*]",
    ),
    KEY: ("cryptward.diskEncryptionSets", "cryptward.diskEncryptionSets[*]"),
    DISK: ("cryptward.adeHistory",),
    VMSS: (
        "cryptward.instances[*]",
        "cryptward.instances[*].latestModelApplied",
        "cryptward.encryptionAtHostFeature.state",
    ),
    SNAPSHOT: ("cryptward.sourceEncryption", "cryptward.sourceEncryption.type"),
    IMAGE: ("cryptward.sourceEncryption", "cryptward.sourceEncryption.type"),
    VM: (
        "cryptward.adeHistory",
        "cryptward.powerState",
        "cryptward.extensions[*]",
        "cryptward.extensions[*].properties.type",
        "cryptward.extensions[*].name",
        "cryptward.disks[*]",
        "cryptward.disks[*].properties.encryptionSettingsCollection.enabled",
        "cryptward.disks[*].properties.encryption.type",
        "cryptward.adeKeyVault",
        "cryptward.adeKeyVault.id",
        "cryptward.adeKeyVault.location",
        "cryptward.adeKeyVault.properties.enabledForDiskEncryption",
    ),
}
# A body property with no Azure alias, given a Cryptward name (Azure has no alias for a DES's principal id).
_CRYPTWARD_RENAMED: dict[str, dict[str, str]] = {DES: {"cryptward.principalId": "identity.principalId"}}

for _type in RESOURCE_TYPES:
    for _path in (*_CRYPTWARD_PATHS["*"], *_CRYPTWARD_PATHS.get(_type, ())):
        _TABLE[_type][_path] = _path
    _TABLE[_type].update(_CRYPTWARD_RENAMED.get(_type, {}))


def is_cryptward(name: str) -> bool:
    """True for Cryptward's own fields (read from the block the reader injects), false for Azure's aliases."""
    return name.lower().startswith(f"{CRYPTWARD}.")


@dataclass(frozen=True)
class Alias:
    """One alias: its name as Azure spells it, the resource type it reads, and the path into the ARM body."""

    name: str
    resource_type: str
    path: tuple[str, ...]

    @property
    def is_array(self) -> bool:
        return STAR in self.path


def parse_path(path: str) -> tuple[str, ...]:
    """`properties.a[*].b` -> ('properties', 'a', '[*]', 'b')."""
    parts: list[str] = []
    for piece in path.split("."):
        if piece.endswith(STAR):
            if piece[: -len(STAR)]:
                parts.append(piece[: -len(STAR)])
            parts.append(STAR)
        else:
            parts.append(piece)
    return tuple(parts)


def _index() -> dict[str, dict[str, Alias]]:
    by_name: dict[str, dict[str, Alias]] = {}
    for resource_type, entries in _TABLE.items():
        for name, path in entries.items():
            alias = Alias(name, resource_type, parse_path(path))
            by_name.setdefault(name.lower(), {})[resource_type.lower()] = alias
    return by_name


_BY_NAME = _index()


def lookup(name: str) -> dict[str, Alias]:
    """The alias `name` per lower-cased resource type it applies to (empty when Cryptward does not know it)."""
    return _BY_NAME.get(name.lower(), {})


def names(resource_type: str | None = None) -> tuple[str, ...]:
    """Known alias names, for one resource type or all, sorted: the valid options in error messages."""
    wanted = resource_type.lower() if resource_type else None
    found = {alias.name for per_type in _BY_NAME.values() for t, alias in per_type.items() if wanted in (None, t)}
    return tuple(sorted(found, key=str.lower))


def owner_type(name: str) -> str | None:
    """The type Cryptward reads that the alias `name` belongs to, judged from its name (`<type>/<property path>`);
    None for an alias of a type Cryptward does not read (a child type such as `.../virtualMachines/extensions/x`, a
    scale set, a data-plane type). Such an alias selects nothing on the resources Cryptward evaluates."""
    lowered = name.lower()
    best = None
    for rtype in (*RESOURCE_TYPES, KEY_DATA):
        prefix = rtype.lower() + "/"
        if lowered.startswith(prefix) and (best is None or len(rtype) > len(best)):
            best = rtype
    if best is None or "/" in name[len(best) + 1 :]:
        return None
    return best


def near_types(name: str) -> tuple[str, ...]:
    """Types Cryptward reads whose name is one letter or two away from the type part of the alias `name`: a typo
    that must not pass for an alias of a type Cryptward does not read."""
    head = "/".join(name.split("/")[:2]).lower()
    return tuple(t for t in RESOURCE_TYPES if t.lower() != head and _close(t.lower(), head))


def _close(a: str, b: str) -> bool:
    from difflib import SequenceMatcher

    return abs(len(a) - len(b)) <= 2 and SequenceMatcher(None, a, b).ratio() >= 0.93


def is_resource_type(value: str) -> bool:
    return value.lower() in {t.lower() for t in RESOURCE_TYPES}
