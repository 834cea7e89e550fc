"""Let a disk encryption set's managed identity use its key, under the vault's permission model
(remediations/keyaccess.py): an Azure role on the key when the vault uses RBAC (`enableRbacAuthorization` true),
else an access policy (get, wrapKey, unwrapKey) on the vault, added with `PUT .../accessPolicies/add` (spec:
azure-specs openapi/keyvault/openapi.json, Vaults_UpdateAccessPolicy). The identity is the one the set uses: its
user-assigned identity when it has one, else its system-assigned one.

Anyone who may create a disk encryption set in their own resource group can point it at any key URL. Granting it
access on their say-so would hand them another team's key (a confused deputy), so the grant is made at once only
where the set and the vault share a resource group, or the operator paired them (`CRYPTWARD_KEY_ACCESS_ALLOW`);
otherwise it waits for a signed-in approver (CRYPTWARD_APPROVERS), whatever the policy's mode, and its summary says
which set, in whose resource group, asks for which key. The same holds for a user-assigned identity kept outside the
set's resource group: whoever else can use that identity would use the key too. A role is granted at the key's
scope, never the vault's; an access policy cannot be narrower than the vault, which the summary says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations import keyaccess
from remediations.changes import APPROVAL, Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.fixes.des_auto_rotation import key_vault
from remediations.resources import (
    CRYPTO_SERVICE_ENCRYPTION_USER,
    ROLE_ASSIGNMENTS_API,
    VAULT_API,
    cryptward,
    deterministic_guid,
    get,
    name_of,
    subscription_of,
)

KEY_PERMISSIONS = list(keyaccess.KEY_PERMISSIONS)


def _group(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[3] if len(parts) > 3 and parts[2].lower() == "resourcegroups" else ""


def _same_group(a: str, b: str) -> bool:
    return (subscription_of(a).lower(), _group(a).lower()) == (subscription_of(b).lower(), _group(b).lower())


def _current(vault: Mapping[str, Any], principal: str) -> Any:
    entries = get(vault, "properties.accessPolicies") or []
    mine = next((e for e in entries if str(e.get("objectId", "")).lower() == principal.lower()), None)
    return get(mine, "permissions.keys") if mine else None


def _why_approval(des: Mapping[str, Any], vault: Mapping[str, Any], ctx: PlanContext) -> str:
    """Why a person must approve granting this set its key ("" when the grant may go ahead at once)."""
    des_id, vault_id = str(des["id"]), str(vault["id"])
    name, vault_name = name_of(des_id), name_of(vault_id)
    key_name = name_of(keyaccess.key_scope(des, vault))
    why = ""
    if not _same_group(des_id, vault_id) and not ctx.settings.key_access_allowed(des_id, vault_id):
        why = (
            f"Disk encryption set {name} in resource group {_group(des_id)} (subscription {subscription_of(des_id)}) "
            f"asks to use key {key_name} of key vault {vault_name} in another resource group, {_group(vault_id)}: an "
            "approver must agree, since whoever made the set may not hold that key. "
        )
    foreign = [i for i in keyaccess.user_identities(des) if not _same_group(i, des_id)]
    if foreign:
        why += (
            f"Disk encryption set {name} uses the user-assigned identity {name_of(foreign[0])} of resource group "
            f"{_group(foreign[0])}: an approver must agree, since whatever else uses that identity could use key "
            f"{key_name} too. "
        )
    return why


def role_grant(des: Mapping[str, Any], vault: Mapping[str, Any], principal: str, ctx: PlanContext) -> Change:
    """The Key Vault Crypto Service Encryption User role for `principal` (an identity of `des`) on the set's key,
    needing approval when `_why_approval` says so."""
    des_id, vault_id = str(des["id"]), str(vault["id"])
    asks = _why_approval(des, vault, ctx)
    role = f"/subscriptions/{subscription_of(vault_id)}/providers/Microsoft.Authorization/roleDefinitions/"
    role += CRYPTO_SERVICE_ENCRYPTION_USER
    key_id = keyaccess.key_scope(des, vault)
    guid = deterministic_guid(key_id, principal, CRYPTO_SERVICE_ENCRYPTION_USER)
    body = {"properties": {"roleDefinitionId": role, "principalId": principal, "principalType": "ServicePrincipal"}}
    return Change(
        resource_id=des_id,
        summary=(
            f"{asks}Give disk encryption set {name_of(des_id)} the Key Vault Crypto Service Encryption User role on "
            f"key {name_of(key_id)} of key vault {name_of(vault_id)}, so that disks using it can wrap and unwrap their "
            "keys."
        ),
        requires=(APPROVAL,) if asks else (),
        operation=Operation("PUT", f"{key_id}/providers/Microsoft.Authorization/roleAssignments/{guid}",
                            ROLE_ASSIGNMENTS_API, body),
        before={"properties.principalId": None, "properties.roleDefinitionId": None},
        after={"properties.principalId": principal, "properties.roleDefinitionId": role},
    )  # fmt: skip


def policy_grant(des: Mapping[str, Any], vault: Mapping[str, Any], principal: str, ctx: PlanContext) -> Change:
    """An access policy letting `principal` get, wrap and unwrap keys of the vault, in the vault's tenant. Verified
    as Key Vault checks it: the entry afterwards carries the permissions and the vault's tenant."""
    des_id, vault_id = str(des["id"]), str(vault["id"])
    asks = _why_approval(des, vault, ctx)
    tenant = get(vault, "properties.tenantId")
    member = f"properties.accessPolicies[objectId={principal}]"
    entry = {"tenantId": tenant, "objectId": principal, "permissions": {"keys": KEY_PERMISSIONS}}
    return Change(
        resource_id=des_id,
        summary=(
            f"{asks}Add an access policy to key vault {name_of(vault_id)} letting disk encryption set "
            f"{name_of(des_id)} get, wrap and unwrap keys (an access policy covers every key of the vault), so that "
            "disks using it can be encrypted."
        ),
        requires=(APPROVAL,) if asks else (),
        operation=Operation(
            "PUT", f"{vault_id}/accessPolicies/add", VAULT_API, {"properties": {"accessPolicies": [entry]}},
            read_path=vault_id,
        ),
        before={f"{member}.permissions.keys": _current(vault, principal)},
        after={f"{member}.permissions.keys": KEY_PERMISSIONS},
        verify={f"{member}.permissions.keys": KEY_PERMISSIONS, f"{member}.tenantId": tenant},
    )  # fmt: skip


@register("des-key-access")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    name = name_of(str(resource["id"]))
    vault = key_vault(resource, ctx)
    if not keyaccess.principals(resource):
        raise FixDeclined(
            SkipReason.CANNOT_READ, f"disk encryption set {name} has no managed identity to grant access to"
        )
    if vault is None:
        raise FixDeclined(SkipReason.CANNOT_READ, f"the key vault of disk encryption set {name} was not read")
    if cryptward(resource, "keyExists") is False:
        key = keyaccess.key_scope(resource, vault)
        raise FixDeclined(
            SkipReason.CANNOT_READ,
            f"key {name_of(key)} of key vault {name_of(str(vault['id']))} does not exist (deleted, or never made): "
            f"Cryptward grants nothing on a key it cannot read. Recover the key if it is soft-deleted, or give "
            f"disk encryption set {name} a key that exists.",
        )
    missing = cryptward(resource, "keyAccess.missing")
    if missing is None:
        assignments = cryptward(resource, "keyVaultRoleAssignments") or []
        missing = keyaccess.block(resource, vault, assignments)["missing"]
    grant = role_grant if keyaccess.uses_rbac(vault) else policy_grant
    return [grant(resource, vault, str(principal), ctx) for principal in missing]
