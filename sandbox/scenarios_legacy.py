"""The `legacy` scenario: key vaults and disk encryption sets as years-old estates have them.

- `kv-legacy` was created at api-version 2019-09-01 without `enableRbacAuthorization`: the property stays absent in
  every GET, and the vault uses access policies ("Vaults where enableRbacAuthorization is null (from older API
  versions) continue using access policies",
  https://learn.microsoft.com/azure/key-vault/general/access-control-default); nor are `enableSoftDelete` and
  `softDeleteRetentionInDays` in its body (recordings keyvault/c7n-vault-get-2019-09-01*.json).
- `des-legacy-uai` reaches key `legacy-key` through a user-assigned identity that has an access policy (get,
  wrapKey, unwrapKey) on it: it has no top-level principalId (recording des/cli-des-get-system-and-user-assigned-
  2023-04-02.json for the shape). Compliant.
- `des-legacy-revoked`: a user-assigned identity whose access policy was removed after the set was made. Its key is
  out of reach.
- `des-legacy-sys`: a system-assigned identity that was never given an access policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.scenarios import COMPUTE_API, KV_API, RES_API, Step, empty, play, scenario
from sandbox.state import DEFAULT_SUBSCRIPTION

if TYPE_CHECKING:
    from sandbox.server import Sandbox

OLD_KV_API = "2019-09-01"
GROUP = "rg-legacy"
KEY_PERMISSIONS = ["get", "wrapKey", "unwrapKey"]


@scenario("legacy")
def legacy(sb: Sandbox) -> dict[str, Any]:
    """An access-policy vault made at 2019-09-01 and three disk encryption sets on its key (see the module doc)."""
    if not sb.state.subscriptions:
        empty(sb)
    group = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{GROUP}"
    vault = f"{group}/providers/Microsoft.KeyVault/vaults/kv-legacy"
    tenant = sb.state.tenant_id
    identities = {
        name: sb.directory.add_user_identity(
            f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        )
        for name in ("id-des-legacy", "id-des-revoked")
    }

    def policy(object_id: str, keys: list[str]) -> dict[str, Any]:
        return {"tenantId": tenant, "objectId": object_id, "permissions": {"keys": keys}}

    admin = policy(sb.directory.named("admin").object_id, ["all"])
    vault_body = {
        "location": "westeurope",
        "properties": {"tenantId": tenant, "sku": {"family": "A", "name": "standard"}, "accessPolicies": [admin]},
    }
    grants = {"properties": {"accessPolicies": [policy(p.object_id, KEY_PERMISSIONS) for p in identities.values()]}}
    steps = [
        Step("PUT", group, RES_API, {"location": "westeurope"}),
        Step("PUT", vault, OLD_KV_API, vault_body, made="vaults"),
        Step("PUT", f"{vault}/keys/legacy-key", KV_API, {"properties": {"kty": "RSA", "keySize": 2048}}, made="keys"),
        Step("PUT", f"{vault}/accessPolicies/add", KV_API, grants),
        *(
            _des(group, vault, name, identity)
            for name, identity in (
                ("des-legacy-uai", identities["id-des-legacy"].mi_resource_id),
                ("des-legacy-revoked", identities["id-des-revoked"].mi_resource_id),
                ("des-legacy-sys", None),
            )
        ),
    ]
    revoke = {"properties": {"accessPolicies": [policy(identities["id-des-revoked"].object_id, KEY_PERMISSIONS)]}}
    steps.append(Step("PUT", f"{vault}/accessPolicies/remove", KV_API, revoke))
    made = play(sb, steps)
    return {"subscriptions": [DEFAULT_SUBSCRIPTION], **made}


def _des(group: str, vault: str, name: str, identity: str | None) -> Step:
    def body(answers: dict[str, Any]) -> dict[str, Any]:
        key_url = answers[f"{vault}/keys/legacy-key"]["properties"]["keyUriWithVersion"]
        ident: dict[str, Any] = {"type": "SystemAssigned"}
        if identity:
            ident = {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
        return {
            "location": "westeurope",
            "identity": ident,
            "properties": {
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "activeKey": {"sourceVault": {"id": vault}, "keyUrl": key_url},
            },
        }

    path = f"{group}/providers/Microsoft.Compute/diskEncryptionSets/{name}"
    return Step("PUT", path, COMPUTE_API, body, made="diskEncryptionSets")
