"""The planner over the real policies and fixes: modes, exemptions, skips, merging, dependencies and order."""

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediations import fixes
from remediations.changes import Caller, Change, Operation, PlanContext, PlanSettings, Ref
from remediations.engine.planner import Finding, plan
from remediations.errors import PlanError
from remediations.policy.loader import FixRef, load_policies

POLICIES = Path(__file__).resolve().parents[2] / "policies"
BY_ID = {p.id: p for p in load_policies(POLICIES)}
NOW = datetime(2026, 6, 1, 8, tzinfo=UTC)
DES_ID = (
    "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg-encryption-uks/providers/"
    "Microsoft.Compute/diskEncryptionSets/des-uks-cmk"
)
CTX = PlanContext(
    now=NOW,
    caller=Caller(upn="dana.whitfield@contoso.com"),
    settings=PlanSettings(disk_encryption_sets={"uksouth": {"EncryptionAtRestWithCustomerKey": DES_ID}}),
)


def sample(policy: str, kind: str, name: str) -> dict:
    return json.loads((POLICIES / policy / "samples" / kind / f"{name}.json").read_text())


def finding(policy: str, resource: dict, mode: str | None = None) -> Finding:
    return Finding(BY_ID[policy], resource, mode=mode)


def vault_without_purge_protection() -> dict:
    vault = sample("kv-purge-protection", "noncompliant", "access-policy-vault-without-purge-protection")
    vault["name"] = "kv-disk-keys-uks2"
    vault["id"] = vault["id"].replace("rg-legacy", "rg-encryption-uks").replace("kv-legacy-apps", "kv-disk-keys-uks2")
    return vault


def des_on(vault: dict) -> dict:
    des = sample("des-auto-rotation", "noncompliant", "vault-without-purge-protection")
    des["cryptward"]["keyVault"] = vault
    return des


# --- modes and skips -------------------------------------------------------------------------------------------------


def test_approve_mode_requires_approval_and_irreversible_policy_marks_the_change():
    vault = sample("kv-purge-protection", "noncompliant", "purge-protection-not-set")
    (change,) = plan([finding("kv-purge-protection", vault)], CTX).changes
    assert change.requires == ("approval",)
    assert change.irreversible
    assert change.policy_ids == ("kv-purge-protection",)
    assert change.fixes == ("kv-purge-protection",)


def test_remediate_mode_plans_without_approval():
    vault = sample("kv-purge-protection", "noncompliant", "purge-protection-not-set")
    (change,) = plan([finding("kv-purge-protection", vault, mode="remediate")], CTX).changes
    assert change.requires == ()


def test_audit_mode_reports_only():
    vault = sample("kv-purge-protection", "noncompliant", "purge-protection-not-set")
    result = plan([finding("kv-purge-protection", vault, mode="audit")], CTX)
    assert result.changes == ()
    assert [(s.reason, s.policy_id) for s in result.skipped] == [("audit-only", "kv-purge-protection")]
    assert "audit mode" in result.skipped[0].detail


def test_a_policy_without_fix_is_audit_only_even_in_remediate_mode():
    vault = sample("kv-network-access", "noncompliant", "public-with-firewall")
    (skip,) = plan([finding("kv-network-access", vault, mode="remediate")], CTX).skipped
    assert (skip.reason, "has no fix" in skip.detail) == ("audit-only", True)


def test_an_immutable_property_is_reported_as_immutable():
    vault = sample("kv-soft-delete-retention", "noncompliant", "retention-7-days")
    (skip,) = plan([finding("kv-soft-delete-retention", vault)], CTX).skipped
    assert skip.reason == "immutable"


def test_an_unreadable_resource_is_skipped_with_the_reason():
    vault = sample("kv-purge-protection", "noncompliant", "purge-protection-not-set")
    f = Finding(BY_ID["kv-purge-protection"], vault, unreadable="GET returned 403 Forbidden")
    (skip,) = plan([f], CTX).skipped
    assert (skip.reason, skip.detail) == ("cannot-read", "GET returned 403 Forbidden")


def test_no_recorded_creator_no_owner_tag_whatever_the_event_says():
    vault = {k: v for k, v in sample("kv-owner-tag", "noncompliant", "no-tags").items() if k != "systemData"}
    assert CTX.caller is not None and CTX.caller.owner  # an event names someone: not trusted for ownership
    (skip,) = plan([finding("kv-owner-tag", vault)], CTX).skipped
    assert skip.reason == "no-caller" and "ARM does not record who created" in skip.detail


def test_no_workspace_no_diagnostic_setting():
    vault = sample("kv-diagnostic-setting", "noncompliant", "no-diagnostic-setting")
    (skip,) = plan([finding("kv-diagnostic-setting", vault)], CTX).skipped
    assert (skip.reason, "workspace" in skip.detail) == ("not-configured", True)


def test_a_disk_with_ade_is_never_given_a_customer_key():
    disk = sample("disk-cmk", "noncompliant", "encrypted-with-ade")
    result = plan([finding("disk-cmk", disk, mode="remediate")], CTX)
    assert result.changes == ()
    assert [s.reason for s in result.skipped] == ["ade-history"]


def test_a_disk_whose_vm_has_ade_is_never_given_a_customer_key():
    disk = sample("disk-cmk", "noncompliant", "attached-to-running-vm")
    vm = sample("vm-encryption-at-host", "noncompliant", "azure-disk-encryption")
    vm["id"] = disk["managedBy"]
    ctx = replace(CTX, resources={vm["id"]: vm})
    assert [s.reason for s in plan([finding("disk-cmk", disk)], ctx).skipped] == ["ade-history"]


def test_a_disk_on_a_running_vm_waits_for_deallocation():
    disk = sample("disk-cmk", "noncompliant", "attached-to-running-vm")
    (change,) = plan([finding("disk-cmk", disk, mode="remediate")], CTX).changes
    assert change.requires == ("deallocated",)


def test_a_disk_without_a_configured_set_for_its_region_is_left_alone():
    disk = sample("disk-cmk", "noncompliant", "unattached-platform-key")
    disk["location"] = "westeurope"
    (skip,) = plan([finding("disk-cmk", disk)], CTX).skipped
    assert (skip.reason, "westeurope" in skip.detail) == ("not-configured", True)


# --- exemptions ------------------------------------------------------------------------------------------------------


def test_an_exemption_tag_skips_the_policy_until_its_date():
    vault = sample("kv-purge-protection", "noncompliant", "purge-protection-not-set")
    vault["tags"]["cryptward-exempt"] = "kv-purge-protection until=2026-06-30"
    result = plan([finding("kv-purge-protection", vault)], CTX)
    assert result.changes == ()
    assert [s.reason for s in result.skipped] == ["exempt"]
    assert "until 2026-06-30" in result.skipped[0].detail


def test_an_expired_exemption_plans_the_change_and_says_so():
    vault = sample("kv-purge-protection", "noncompliant", "purge-protection-not-set")
    vault["tags"]["cryptward-exempt"] = "kv-purge-protection until=2026-05-31"
    result = plan([finding("kv-purge-protection", vault)], CTX)
    assert len(result.changes) == 1
    assert result.notes == ("kv-orders-test: the exemption of 'kv-purge-protection' ended on 2026-05-31",)


def test_an_exemption_naming_an_unknown_policy_is_noted_when_the_policies_are_known():
    vault = sample("kv-purge-protection", "noncompliant", "purge-protection-not-set")
    vault["tags"]["cryptward-exempt"] = "kv-purge-protecton"
    quiet = plan([finding("kv-purge-protection", vault)], CTX)
    loud = plan([finding("kv-purge-protection", vault)], replace(CTX, policy_ids=tuple(BY_ID)))
    assert quiet.notes == ()
    assert len(loud.changes) == 1 and "'kv-purge-protecton' is not a known policy id" in loud.notes[0]


# --- merging ---------------------------------------------------------------------------------------------------------


def test_two_patches_of_one_vault_become_one_write_with_both_policies():
    vault = sample("kv-rbac-authorization", "noncompliant", "access-policy-vault")
    del vault["properties"]["enablePurgeProtection"]
    findings = [finding("kv-purge-protection", vault), finding("kv-rbac-authorization", vault, mode="remediate")]
    (change,) = plan(findings, CTX).changes
    assert change.policy_ids == ("kv-purge-protection", "kv-rbac-authorization")
    assert change.operation.method == "PATCH"
    assert change.operation.body == {"properties": {"enablePurgeProtection": True, "enableRbacAuthorization": True}}
    assert change.after == {"properties.enablePurgeProtection": True, "properties.enableRbacAuthorization": True}
    assert (change.irreversible, change.disruptive, change.requires) == (True, True, ("approval",))
    assert "purge protection" in change.summary and "RBAC" in change.summary


def test_writes_to_different_targets_are_not_merged():
    vault = sample("kv-delete-lock", "noncompliant", "no-lock")
    del vault["properties"]["enablePurgeProtection"]
    changes = plan([finding("kv-purge-protection", vault), finding("kv-delete-lock", vault)], CTX).changes
    assert [c.operation.method for c in changes] == ["PATCH", "PUT"]


def test_changes_of_many_resources_writing_one_target_are_not_compared_with_each_other(monkeypatch):
    """Every VM of a subscription may register its EncryptionAtHost feature: one target, many resources. Changes of
    different resources never combine, so merging compares none of them (it compared each with every earlier one:
    quadratic in the VMs, planning's growth exponent 1.19 over 1k, 5k and 20k vaults)."""
    from remediations.engine import planner

    sub = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590"
    register = Operation("POST", f"{sub}/providers/Microsoft.Features/providers/Microsoft.Compute/features/"
                         "EncryptionAtHost/register", "2021-07-01", {})  # fmt: skip
    changes = [
        Change(f"{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-{i}", "s", register, {}, {})
        for i in range(200)
    ]
    compared = []
    combine = planner._combine
    monkeypatch.setattr(planner, "_combine", lambda a, b: compared.append(1) or combine(a, b))
    assert planner._merge(changes) == changes
    assert compared == []
    twice = planner._merge([changes[0], changes[0]])  # the same resource and target still combine
    assert len(twice) == 1 and len(compared) == 1


def test_the_same_finding_twice_plans_one_change():
    vault = sample("kv-delete-lock", "noncompliant", "no-lock")
    assert len(plan([finding("kv-delete-lock", vault)] * 2, CTX).changes) == 1


# --- dependencies and order ------------------------------------------------------------------------------------------


def test_auto_rotation_goes_after_the_vaults_purge_protection_and_waits_for_its_approval():
    vault = vault_without_purge_protection()
    des = des_on(vault)
    result = plan([finding("des-auto-rotation", des), finding("kv-purge-protection", vault)], CTX)
    first, second = result.changes
    assert first.policy_ids == ("kv-purge-protection",)
    assert second.policy_ids == ("des-auto-rotation",) and second.depends_on == (first.id,)
    assert second.requires == ("approval",)  # des-auto-rotation is remediate, but its dependency needs approval


def test_auto_rotation_is_blocked_when_purge_protection_stays_audit_only():
    vault = vault_without_purge_protection()
    result = plan(
        [finding("kv-purge-protection", vault, mode="audit"), finding("des-auto-rotation", des_on(vault))], CTX
    )
    assert result.changes == ()
    blocked = result.skipped[-1]
    assert (blocked.reason, blocked.policy_id) == ("blocked", "des-auto-rotation")
    assert "audit-only" in blocked.detail and "kv-disk-keys-uks2" in blocked.detail


def test_auto_rotation_needs_nothing_when_the_vault_has_purge_protection():
    des = sample("des-auto-rotation", "noncompliant", "fixed-key-version")
    (change,) = plan([finding("des-auto-rotation", des)], CTX).changes
    assert change.depends_on == () and change.requires == ()


def test_a_disk_goes_after_its_sets_key_access_when_both_are_planned():
    disk = sample("disk-cmk", "noncompliant", "unattached-platform-key")
    des = sample("des-key-access", "noncompliant", "rbac-role-missing")
    assert des["id"] == DES_ID
    result = plan([finding("disk-cmk", disk), finding("des-key-access", des)], CTX)
    access, encrypt = result.changes
    assert access.policy_ids == ("des-key-access",) and encrypt.depends_on == (access.id,)
    alone = plan([finding("disk-cmk", disk)], CTX)  # access already in place: an ordering hint only
    assert len(alone.changes) == 1 and alone.changes[0].depends_on == ()


def test_a_change_after_a_role_grant_says_how_long_it_may_wait_for_the_role():
    disk = sample("disk-cmk", "noncompliant", "unattached-platform-key")
    des = sample("des-key-access", "noncompliant", "rbac-role-missing")
    access, encrypt = plan([finding("disk-cmk", disk), finding("des-key-access", des)], CTX).changes
    assert CTX.settings.role_propagation_seconds == 600  # Microsoft: up to 10 minutes
    assert encrypt.summary.endswith(" It waits up to 10 minutes for the role to take effect.")
    assert "waits up to" not in access.summary
    quick = replace(CTX, settings=replace(CTX.settings, role_propagation_seconds=90))
    assert (
        plan([finding("disk-cmk", disk), finding("des-key-access", des)], quick)
        .changes[1]
        .summary.endswith(" It waits up to 1.5 minutes for the role to take effect.")
    )
    (alone,) = plan([finding("disk-cmk", disk)], CTX).changes  # no grant in the plan: nothing to wait for
    assert "waits up to" not in alone.summary


def test_the_role_propagation_window_is_one_setting():
    from remediations.errors import SettingsError
    from remediations.settings import Settings

    assert Settings.from_env({}).plan.role_propagation_seconds == 600
    assert Settings.from_env({"CRYPTWARD_ROLE_PROPAGATION_SECONDS": "120"}).plan.role_propagation_seconds == 120
    for bad in ("soon", "-1", "inf"):
        with pytest.raises(SettingsError, match="CRYPTWARD_ROLE_PROPAGATION_SECONDS"):
            Settings.from_env({"CRYPTWARD_ROLE_PROPAGATION_SECONDS": bad})


def test_order_is_stable_otherwise():
    vaults = [sample("kv-owner-tag", "noncompliant", n) for n in ("no-tags", "environment-tag-only")]
    result = plan([finding("kv-owner-tag", v) for v in vaults], CTX)
    assert [c.resource_id for c in result.changes] == [v["id"] for v in vaults]


@pytest.fixture
def cyclic():
    def fix_a(resource, params, ctx):
        return [Change(resource["id"], "a", Operation("PUT", resource["id"] + "/a", "1", {}), {}, {"x": 1},
                       needs=(Ref(resource["id"], "test-b"),))]  # fmt: skip

    def fix_b(resource, params, ctx):
        return [Change(resource["id"], "b", Operation("PUT", resource["id"] + "/b", "1", {}), {}, {"x": 1},
                       needs=(Ref(resource["id"], "test-a"),))]  # fmt: skip

    fixes.register("test-a")(fix_a)
    fixes.register("test-b")(fix_b)
    yield
    fixes.unregister("test-a")
    fixes.unregister("test-b")


def test_a_dependency_cycle_is_an_error(cyclic):
    base = BY_ID["kv-delete-lock"]
    a, b = replace(base, id="a", fix=FixRef("test-a")), replace(base, id="b", fix=FixRef("test-b"))
    vault = sample("kv-delete-lock", "noncompliant", "no-lock")
    with pytest.raises(PlanError, match="cycle"):
        plan([Finding(a, vault), Finding(b, vault)], CTX)


# --- determinism -----------------------------------------------------------------------------------------------------


def test_the_same_input_gives_the_same_plan_and_ids():
    vault = vault_without_purge_protection()
    findings = [finding("des-auto-rotation", des_on(vault)), finding("kv-purge-protection", vault)]
    assert plan(findings, CTX).to_dict() == plan(copy.deepcopy(findings), CTX).to_dict()


def test_change_ids_depend_on_resource_policy_and_target():
    op = Operation("PATCH", "/subscriptions/s/x", "1", {})
    one = Change("/subscriptions/s/x", "s", op, {}, {}, policy_ids=("p",))
    assert one.id == replace(one, summary="other").id
    assert one.id != replace(one, policy_ids=("q",)).id
    assert one.id != replace(one, operation=replace(op, path="/subscriptions/s/y")).id


def test_plan_context_from_json():
    ctx = PlanContext.from_dict(
        {
            "now": "2026-06-01T08:00:00Z",
            "caller": {"upn": None, "name": "Build pipeline", "appid": "0000-1111"},
            "settings": {
                "workspaceId": "/w",
                "diskEncryptionSets": {"UK South": {"EncryptionAtRestWithCustomerKey": "/d"}},
            },
            "resources": [{"id": "/Subscriptions/S/x", "name": "x"}],
        }
    )
    assert ctx.now == NOW and ctx.caller is not None and ctx.caller.owner == "Build pipeline"
    assert ctx.settings.disk_encryption_set("uksouth", "encryptionatrestwithcustomerkey") == "/d"
    assert ctx.related("/subscriptions/s/X") == {"id": "/Subscriptions/S/x", "name": "x"}


def test_each_vm_waits_for_its_own_feature_registration_and_no_change_waits_for_itself():
    vms = []
    for name in ("vm-a", "vm-b"):
        body = json.loads(json.dumps(sample("vm-encryption-at-host", "noncompliant", "feature-not-registered")))
        body["id"] = body["id"].rsplit("/", 1)[0] + f"/{name}"
        vms.append(body)
    result = plan([finding("vm-encryption-at-host", vm) for vm in vms], CTX)
    registrations = [c for c in result.changes if c.operation.method == "POST"]
    machines = [c for c in result.changes if c.operation.method == "PATCH"]
    # the same POST for two VMs is two changes (a change is about one resource), each needing approval
    assert [c.resource_id for c in registrations] == [vm["id"] for vm in vms]
    assert all(c.requires == ("approval",) for c in registrations)
    for registration, machine in zip(registrations, machines, strict=True):
        assert machine.depends_on == (registration.id,) and registration.depends_on == ()
    order = [c.id for c in result.changes]
    assert all(order.index(r.id) < order.index(m.id) for r, m in zip(registrations, machines, strict=True))


# --- memory: equal bodies shared -------------------------------------------------------------------------------------


def test_equal_bodies_of_many_changes_are_one_object_and_written_the_same():
    vaults = []
    for i in range(3):
        vault = copy.deepcopy(sample("kv-purge-protection", "noncompliant", "purge-protection-not-set"))
        vault["id"] = f"{vault['id']}{i}"
        vaults.append(vault)
    made = plan([finding("kv-purge-protection", v) for v in vaults], CTX).changes
    assert len(made) == 3
    assert len({id(c.operation.body) for c in made}) == 1  # failed before: each fix made its own body
    assert len({id(c.after) for c in made}) == 1 and all(c.verify is c.after for c in made)
    alone = [plan([finding("kv-purge-protection", v)], CTX).changes[0] for v in vaults]
    assert [c.to_dict() for c in made] == [c.to_dict() for c in alone]
    assert [json.dumps(c.to_dict()) for c in made] == [json.dumps(c.to_dict()) for c in alone]
