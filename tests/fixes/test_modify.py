"""Modify effects as Cryptward fixes (remediations/fixes/modify.py through the planner): the operations Azure
defines (Learn, "Azure Policy definitions modify effect"), mode-gated, and never weakening a setting."""

import json

import pytest
import yaml

from remediations.changes import MODIFY_FIX, Change, Operation, PlanContext
from remediations.engine import applier
from remediations.engine.planner import Finding, plan
from remediations.policy.loader import load_policies

VAULT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"
)
VAULT = {
    "id": VAULT_ID,
    "name": "kv1",
    "type": "Microsoft.KeyVault/vaults",
    "location": "westeurope",
    "tags": {"env": "prod", "stale": "yes"},
    "properties": {
        "enablePurgeProtection": True,
        "publicNetworkAccess": "Disabled",
        "networkAcls": {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [{"value": "203.0.113.0/24"}]},
    },
}
CTX = PlanContext.from_dict({"now": "2026-06-01T08:00:00Z"})
KV = "Microsoft.KeyVault/vaults/"


def modify_policy(tmp_path, operations, *, mode="remediate", enforcement="Default", conflict="audit", name="m"):
    rule = {
        "if": {"field": "type", "equals": "Microsoft.KeyVault/vaults"},
        "then": {
            "effect": "Modify",
            "details": {
                "roleDefinitionIds": ["/providers/Microsoft.Authorization/roleDefinitions/x"],
                "conflictEffect": conflict,
                "operations": operations,
            },
        },
    }
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "definition.json").write_text(json.dumps({"properties": {"mode": "Indexed", "policyRule": rule}}))
    (folder / "cryptward.yaml").write_text(yaml.safe_dump({"mode": mode}))
    assignment = {"properties": {"enforcementMode": enforcement}}
    (folder / "assignment.json").write_text(json.dumps(assignment))
    (policy,) = load_policies(tmp_path, fixes=[])
    return policy


def planned(policy, body=VAULT):
    return plan([Finding(policy, body)], CTX)


def test_an_alias_operation_is_one_patch_keeping_the_siblings_of_what_it_sets(tmp_path):
    ops = [{"operation": "addOrReplace", "field": f"{KV}networkAcls.defaultAction", "value": "Deny"}]
    (change,) = planned(modify_policy(tmp_path, ops)).changes
    assert (change.operation.method, change.operation.path, change.operation.api_version) == (
        "PATCH",
        VAULT_ID,
        "2026-05-15",
    )
    acls = change.operation.body["properties"]["networkAcls"]
    assert acls == {"bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}
    assert change.before == {"properties.networkAcls.defaultAction": "Allow"}
    assert change.after == change.verify == {"properties.networkAcls.defaultAction": "Deny"}
    assert change.fixes == (MODIFY_FIX,) and change.requires == ()


@pytest.mark.parametrize(
    ("mode", "enforcement", "outcome"),
    [
        ("remediate", "Default", "change"),
        ("approve", "Default", "approval"),
        ("audit", "Default", "runs in audit mode"),
        ("remediate", "DoNotEnforce", "DoNotEnforce"),
    ],
)
def test_modify_is_mode_gated_and_do_not_enforce_never_fixes(tmp_path, mode, enforcement, outcome):
    ops = [{"operation": "addOrReplace", "field": f"{KV}networkAcls.defaultAction", "value": "Deny"}]
    made = planned(modify_policy(tmp_path, ops, mode=mode, enforcement=enforcement))
    if outcome == "change":
        assert len(made.changes) == 1 and not made.changes[0].requires
    elif outcome == "approval":
        assert made.changes[0].requires == ("approval",)
    else:
        (skip,) = made.skipped
        assert made.changes == () and outcome in skip.detail


@pytest.mark.parametrize(
    ("operation", "words"),
    [
        (
            {"operation": "addOrReplace", "field": f"{KV}enablePurgeProtection", "value": False},
            "turns a protection off",
        ),
        ({"operation": "addOrReplace", "field": f"{KV}publicNetworkAccess", "value": "Enabled"}, "opens"),
        ({"operation": "addOrReplace", "field": f"{KV}networkAcls.defaultAction", "value": "Allow"}, "same"),
        ({"operation": "remove", "field": f"{KV}networkAcls.bypass"}, "only tags can be removed"),
        ({"operation": "addOrReplace", "field": f"{KV}sku.name", "value": "standard"}, "no never-weaken rule"),
        ({"operation": "addOrReplace", "field": f"{KV}networkAcls.ipRules[*].value", "value": "1"}, "cannot be"),
    ],
)
def test_an_operation_that_weakens_or_cannot_be_shown_not_to_is_refused_with_the_reason(tmp_path, operation, words):
    made = planned(modify_policy(tmp_path, [operation]))
    if words == "same":  # already Allow: nothing to do, nothing weakened
        assert made.changes == () and made.skipped == ()
        return
    (skip,) = made.skipped
    assert made.changes == () and words in skip.detail
    assert skip.reason in ("weakening", "conflict")


def test_a_weakening_vault_is_refused_even_when_it_starts_weaker(tmp_path):
    body = json.loads(json.dumps(VAULT))
    body["properties"]["networkAcls"]["defaultAction"] = "Deny"
    ops = [{"operation": "addOrReplace", "field": f"{KV}networkAcls.defaultAction", "value": "Allow"}]
    (skip,) = planned(modify_policy(tmp_path, ops), body).skipped
    assert skip.reason == "weakening" and "'Allow'" in skip.detail


def test_tags_add_replace_and_remove_through_the_tags_api(tmp_path):
    ops = [
        {"operation": "addOrReplace", "field": "tags['owner']", "value": "platform"},
        {"operation": "addOrReplace", "field": "tags.env", "value": "prod"},  # already so: nothing to write
        {"operation": "remove", "field": "tags['stale']"},
        {"operation": "add", "field": "tags['costCenter']", "value": "[concat('cc-', field('name'))]"},
        {"operation": "addOrReplace", "field": "tags['never']", "value": "x", "condition": "[equals(1, 2)]"},
    ]
    merge, delete = planned(modify_policy(tmp_path, ops)).changes
    tags_path = f"{VAULT_ID}/providers/Microsoft.Resources/tags/default"
    assert (merge.operation.path, merge.operation.body) == (
        tags_path,
        {"operation": "Merge", "properties": {"tags": {"owner": "platform", "costCenter": "cc-kv1"}}},
    )
    assert delete.operation.body == {"operation": "Delete", "properties": {"tags": {"stale": "yes"}}}
    assert delete.before == {"properties.tags.stale": "yes"} and delete.after == {"properties.tags.stale": None}


def test_add_does_not_replace_an_existing_different_value(tmp_path):
    ops = [{"operation": "add", "field": "tags['env']", "value": "test"}]
    (skip,) = planned(modify_policy(tmp_path, ops)).skipped
    assert skip.reason == "conflict" and "conflictEffect audit" in skip.detail


def test_the_applier_lets_only_a_modify_remove_a_tag():
    op = Operation("PATCH", f"{VAULT_ID}/providers/Microsoft.Resources/tags/default", "2025-04-01", {})
    removal = {"before": {"properties.tags.stale": "yes"}, "after": {"properties.tags.stale": None}}
    applier._assert_not_weakening(Change(VAULT_ID, "x", op, **removal, fixes=(MODIFY_FIX,)))
    with pytest.raises(AssertionError):
        applier._assert_not_weakening(Change(VAULT_ID, "x", op, **removal, fixes=("kv-owner-tag",)))
    flag = {"before": {"properties.enablePurgeProtection": True}, "after": {"properties.enablePurgeProtection": False}}
    with pytest.raises(AssertionError):
        applier._assert_not_weakening(Change(VAULT_ID, "x", op, **flag, fixes=(MODIFY_FIX,)))


def test_two_modify_definitions_setting_the_same_property_differently_both_stand_down(tmp_path):
    def one(name, tag, value):
        ops = [{"operation": "addOrReplace", "field": f"tags['{tag}']", "value": value}]
        return modify_policy(tmp_path / name, ops, name=name)

    first, second, third = one("a", "owner", "a"), one("b", "owner", "b"), one("c", "team", "c")
    made = plan([Finding(first, VAULT), Finding(second, VAULT), Finding(third, VAULT)], CTX)
    assert made.changes == ()  # the third merged into the conflicting write: it stands down with them
    assert {s.reason for s in made.skipped} == {"conflict"}


def test_a_property_is_never_set_from_what_the_resource_says(tmp_path):
    # A tag writer must not choose a disk access or a firewall setting through a definition that copies a tag.
    ops = [{"operation": "addOrReplace", "field": f"{KV}networkAcls.defaultAction", "value": "[field('tags.acl')]"}]
    (skip,) = planned(modify_policy(tmp_path, ops), {**VAULT, "tags": {"acl": "Deny"}}).skipped
    assert skip.reason == "weakening" and "read from the resource" in skip.detail
