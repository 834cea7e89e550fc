"""des-key-access on the sandbox's `legacy` scenario, as the bot with exactly infra/cryptward-role.json: a vault made
before API version 2026-02-01 without enableRbacAuthorization uses access policies, so the set gets an access policy
(not a role the vault would ignore), and a set with a user-assigned identity is checked, and granted, through that
identity. "Fixed" means a disk can be encrypted with the set afterwards."""

from pathlib import Path

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.policy.loader import load_policies
from remediations.settings import Settings

POLICIES = [p for p in load_policies(Path(__file__).resolve().parents[2] / "policies") if p.id == "des-key-access"]
GROUP = "rg-legacy"


def cmk_disk(sandbox, name, des_name):
    compute = sandbox.client(ComputeManagementClient)
    des = compute.disk_encryption_sets.get(GROUP, des_name)
    body = {
        "location": "westeurope",
        "sku": {"name": "Premium_LRS"},
        "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32,
                       "encryption": {"diskEncryptionSetId": des.id}},
    }  # fmt: skip
    return compute.disks.begin_create_or_update(GROUP, name, body).result()


def test_access_policy_vaults_get_an_access_policy_for_the_identity_the_set_uses(legacy):
    sandbox, azure = legacy
    scope = Scope((sandbox.subscription_id,))
    report = scan(scope, POLICIES, apply=True, settings=Settings(), azure=azure)
    got = {r.change.resource_id.rsplit("/", 1)[-1]: (r.status, r.change.operation.path) for r in report.results}
    assert sorted(got) == ["des-legacy-revoked", "des-legacy-sys"]  # the user-assigned one with a policy complies
    assert all(status == "applied" and path.endswith("/accessPolicies/add") for status, path in got.values())
    vault = sandbox.client(KeyVaultManagementClient).vaults.get(GROUP, "kv-legacy")
    assert vault.properties.enable_rbac_authorization is None  # untouched: still access policies
    compute = sandbox.client(ComputeManagementClient)
    revoked = compute.disk_encryption_sets.get(GROUP, "des-legacy-revoked")
    (uai,) = revoked.identity.user_assigned_identities.values()
    granted = {p.object_id: sorted(p.permissions["keys"]) for p in vault.properties.access_policies}
    assert granted[uai.principal_id] == ["get", "unwrapKey", "wrapKey"]  # the user-assigned identity's principal
    auth = sandbox.client(AuthorizationManagementClient)
    assert [a for a in auth.role_assignments.list_for_subscription() if a.principal_id == uai.principal_id] == []
    for des in ("des-legacy-revoked", "des-legacy-sys", "des-legacy-uai"):  # real access: DiskRP accepts the sets
        assert cmk_disk(sandbox, f"disk-{des}", des).encryption.type == "EncryptionAtRestWithCustomerKey"
    assert not scan(scope, POLICIES, apply=True, settings=Settings(), azure=azure).findings
