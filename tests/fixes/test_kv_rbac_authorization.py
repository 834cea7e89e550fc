"""kv-rbac-authorization on the sandbox's `legacy` scenario: the vault never said enableRbacAuthorization, so it is
non-compliant (as Azure's built-in 12d4fa5e says); switching it would cut its disk encryption sets off their key, so
the plan first grants each set a role on its key, refuses the switch while those roles are younger than the
propagation window, and switches afterwards; the sets keep their key throughout."""

from datetime import timedelta
from pathlib import Path

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
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


def test_custom_roles_granting_the_keys_count_and_nothing_is_granted_in_their_place(legacy):
    """Each set's identity holds a custom role with the key data actions (`keys/*`) on its key: the switch grants
    nothing, waits only for those roles to propagate, and the sets keep their key after it."""
    from remediations import keyaccess
    from remediations.azure import as_body
    from sandbox import scenarios
    from tests.role_coverage import define_role

    sandbox, azure = legacy
    scope, settings = Scope((sandbox.subscription_id,)), Settings(modes={"kv-rbac-authorization": "remediate"})
    doc = {"roleName": "Disk key user", "description": "", "dataActions": ["Microsoft.KeyVault/vaults/keys/*"]}
    role, sb = define_role(sandbox, doc), sandbox.running.sandbox
    for name in SETS:
        des = as_body(sandbox.client(ComputeManagementClient).disk_encryption_sets.get(GROUP, name))
        key = keyaccess.key_scope(des, {"id": des["properties"]["activeKey"]["sourceVault"]["id"]})
        for principal in keyaccess.principals(des):
            scenarios.assign(sb, key, sb.directory.by_object_id(principal), role.name)

    first = scan(scope, POLICIES, apply=True, settings=settings, azure=azure)
    assert first.plan.changes == ()  # no built-in role granted in the custom roles' place
    (skip,) = first.plan.skipped
    assert skip.reason == "blocked" and "less than 10 minutes old" in skip.detail, skip.detail

    auth = sandbox.client(AuthorizationManagementClient)
    held = [a for a in auth.role_assignments.list_for_subscription() if a.role_definition_id.endswith(role.name)]
    settled = max(a.created_on for a in held) + ROLE_PROPAGATION
    sandbox.advance(ROLE_PROPAGATION.total_seconds() + 1)
    later = scan(scope, POLICIES, apply=True, settings=settings, azure=azure, now=settled + timedelta(seconds=1))
    assert [(r.change.resource_id.rsplit("/", 1)[-1], r.status) for r in later.results] == [("kv-legacy", "applied")]
    for des in SETS:  # real access under RBAC now: DiskRP accepts the sets through their custom role
        assert cmk_disk(sandbox, f"disk-{des}", des).encryption.type == "EncryptionAtRestWithCustomerKey"


def test_roles_that_grant_the_key_only_together_are_in_effect_once_all_have_propagated():
    from datetime import UTC, datetime

    from remediations.changes import PlanContext
    from remediations.fixes.kv_rbac_authorization import _in_effect

    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    ctx = PlanContext(now=now)

    def held(role, minutes_ago):
        created = (now - timedelta(minutes=minutes_ago)).isoformat()
        roles = "/providers/Microsoft.Authorization/roleDefinitions/"
        return {"properties": {"roleDefinitionId": f"{roles}{role}", "createdOn": created}}

    cseu, custom, other = "e147488a-f6f5-4113-8e2d-b22465e65bf6", "c0570e00-0000-4000-8000-000000000001", "c0570e00-2"
    assert _in_effect([held(cseu, 30), held(custom, 1)], ctx)  # a built-in key role alone suffices
    assert not _in_effect([held(custom, 30), held(other, 1)], ctx)  # together: the fresh one is needed too
    assert _in_effect([held(custom, 30), held(other, 11)], ctx)
    assert not _in_effect([held(cseu, 1)], ctx)
