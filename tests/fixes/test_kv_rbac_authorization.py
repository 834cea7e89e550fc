"""kv-rbac-authorization on the sandbox's `legacy` scenario: the vault never said enableRbacAuthorization, so it is
non-compliant (as Azure's built-in 12d4fa5e says); switching it would cut its disk encryption sets off their key, so
the plan first grants each set a role on its key, refuses the switch while those roles are younger than the
propagation window, and switches afterwards; the sets keep their key throughout."""

from datetime import timedelta
from pathlib import Path

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from remediations.changes import ROLE_PROPAGATION
from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.policy.loader import load_policies
from remediations.settings import Settings
from tests.fixes.test_des_key_access import GROUP, cmk_disk

POLICIES = [
    p for p in load_policies(Path(__file__).resolve().parents[2] / "policies") if p.id == "kv-rbac-authorization"
]
SETS = ["des-legacy-revoked", "des-legacy-sys", "des-legacy-uai"]


def test_the_switch_waits_for_every_set_to_hold_a_settled_role_on_its_key(legacy):
    sandbox, azure = legacy
    scope, settings = Scope((sandbox.subscription_id,)), Settings(modes={"kv-rbac-authorization": "remediate"})
    kv = sandbox.client(KeyVaultManagementClient)

    first = scan(scope, POLICIES, apply=True, settings=settings, azure=azure)
    assert sorted(c.resource_id.rsplit("/", 1)[-1] for c in first.plan.changes) == SETS  # the grants, nothing else
    assert {r.status for r in first.results} == {"applied"}
    (skip,) = first.plan.skipped
    assert skip.reason == "blocked" and all(name in skip.detail for name in SETS), skip.detail
    assert kv.vaults.get(GROUP, "kv-legacy").properties.enable_rbac_authorization is None

    auth = sandbox.client(AuthorizationManagementClient)
    grants = [a for a in auth.role_assignments.list_for_subscription() if "/vaults/kv-legacy/keys/" in a.scope]
    assert len(grants) == 3 and {a.role_definition_id.rsplit("/", 1)[-1] for a in grants} == {
        "e147488a-f6f5-4113-8e2d-b22465e65bf6"
    }
    settled = max(a.created_on for a in grants) + ROLE_PROPAGATION
    early = scan(scope, POLICIES, apply=True, settings=settings, azure=azure, now=settled - timedelta(minutes=1))
    assert early.plan.changes == () and "less than 10 minutes old" in early.plan.skipped[0].detail

    sandbox.advance(ROLE_PROPAGATION.total_seconds() + 1)  # Azure honours the roles once they propagated
    later = scan(scope, POLICIES, apply=True, settings=settings, azure=azure, now=settled + timedelta(seconds=1))
    assert [(r.change.resource_id.rsplit("/", 1)[-1], r.status) for r in later.results] == [("kv-legacy", "applied")]
    assert kv.vaults.get(GROUP, "kv-legacy").properties.enable_rbac_authorization is True
    for des in SETS:  # every set still reaches its key, now through its role
        assert cmk_disk(sandbox, f"disk-{des}", des).encryption.type == "EncryptionAtRestWithCustomerKey"
