"""Let a disk encryption set's managed identity use its key: an Azure role on the key (RBAC vaults), else an access
policy (get, wrapKey, unwrapKey) on the vault.

Anyone who may create a disk encryption set in their own resource group can point it at any key URL. Granting it
access on their say-so would hand them another team's key (a confused deputy), so the grant is made at once only
where the set and the vault share a resource group, or the operator paired them (`CRYPTWARD_KEY_ACCESS_ALLOW`);
otherwise it waits for a signed-in approver (CRYPTWARD_APPROVERS), whatever the policy's mode, and its summary says
which set, in whose resource group, asks for which key. A role is granted at the key's scope, never the vault's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.changes import APPROVAL, Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.fixes.des_auto_rotation import key_vault
from remediations.resources import (
    CRYPTO_SERVICE_ENCRYPTION_USER,
    ROLE_ASSIGNMENTS_API,
    VAULT_API,
    deterministic_guid,
    get,
    name_of,
    subscription_of,
    versionless,
)

KEY_PERMISSIONS = ["get", "wrapKey", "unwrapKey"]


def _group(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[3] if len(parts) > 3 and parts[2].lower() == "resourcegroups" else ""


def _same_group(a: str, b: str) -> bool:
    return (subscription_of(a).lower(), _group(a).lower()) == (subscription_of(b).lower(), _group(b).lower())


def _current(vault: Mapping[str, Any], principal: str) -> Any:
    entries = get(vault, "properties.accessPolicies") or []
    mine = next((e for e in entries if str(e.get("objectId", "")).lower() == principal.lower()), None)
    return get(mine, "permissions.keys") if mine else None


@register("des-key-access")
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    des_id, name = str(resource["id"]), name_of(str(resource["id"]))
    principal = get(resource, "identity.principalId")
    vault = key_vault(resource, ctx)
    if not principal:
        raise FixDeclined(
            SkipReason.CANNOT_READ, f"disk encryption set {name} has no managed identity to grant access to"
        )
    if vault is None:
        raise FixDeclined(SkipReason.CANNOT_READ, f"the key vault of disk encryption set {name} was not read")
    vault_id, vault_name = str(vault["id"]), name_of(str(vault["id"]))
    key_name = name_of(versionless(str(get(resource, "properties.activeKey.keyUrl") or "")))
    crossing = not _same_group(des_id, vault_id) and not ctx.settings.key_access_allowed(des_id, vault_id)
    asks = (
        f"Disk encryption set {name} in resource group {_group(des_id)} (subscription {subscription_of(des_id)}) asks "
        f"to use key {key_name} of key vault {vault_name} in another resource group, {_group(vault_id)}: an approver "
        "must agree, since whoever made the set may not hold that key. "
        if crossing
        else ""
    )
    requires = (APPROVAL,) if crossing else ()
    if get(vault, "properties.enableRbacAuthorization") is not False:
        role = f"/subscriptions/{subscription_of(vault_id)}/providers/Microsoft.Authorization/roleDefinitions/"
        role += CRYPTO_SERVICE_ENCRYPTION_USER
        key_id = f"{vault_id}/keys/{key_name}"
        guid = deterministic_guid(key_id, str(principal), CRYPTO_SERVICE_ENCRYPTION_USER)
        body = {"properties": {"roleDefinitionId": role, "principalId": principal, "principalType": "ServicePrincipal"}}
        path = f"{key_id}/providers/Microsoft.Authorization/roleAssignments/{guid}"
        return [
            Change(
                resource_id=des_id,
                summary=(
                    f"{asks}Give disk encryption set {name} the Key Vault Crypto Service Encryption User role on key "
                    f"{key_name} of key vault {vault_name}, so that disks using it can wrap and unwrap their keys."
                ),
                requires=requires,
                operation=Operation("PUT", path, ROLE_ASSIGNMENTS_API, body),
                before={"properties.principalId": None, "properties.roleDefinitionId": None},
                after={"properties.principalId": principal, "properties.roleDefinitionId": role},
            )
        ]
    member = f"properties.accessPolicies[objectId={principal}]"
    entry = {
        "tenantId": get(vault, "properties.tenantId"),
        "objectId": principal,
        "permissions": {"keys": KEY_PERMISSIONS},
    }
    return [
        Change(
            resource_id=des_id,
            summary=(
                f"{asks}Add an access policy to key vault {vault_name} letting disk encryption set {name} get, wrap "
                "and unwrap keys, so that disks using it can be encrypted."
            ),
            requires=requires,
            operation=Operation(
                "PUT",
                f"{vault_id}/accessPolicies/add",
                VAULT_API,
                {"properties": {"accessPolicies": [entry]}},
                read_path=vault_id,
            ),
            before={f"{member}.permissions.keys": _current(vault, str(principal))},
            after={f"{member}.permissions.keys": KEY_PERMISSIONS},
        )
    ]
