"""Azure definitions with their assignment and Cryptward settings: parameters, notScopes, enforcementMode, effect
overrides, modes, Disabled, Modify; a bad assignment or settings file is an error naming the field."""

import json
from pathlib import Path

import pytest
import yaml

from remediations.changes import PlanContext
from remediations.engine.planner import Finding, plan
from remediations.errors import PolicyLoadError
from remediations.policy.loader import load_policies

ROOT = Path(__file__).resolve().parents[2]
DELETION = json.loads((ROOT / "policies" / "builtin-kv-deletion-protection" / "definition.json").read_text())
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
VAULT_ID = f"{SUB}/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1"
VAULT = {
    "id": VAULT_ID,
    "type": "Microsoft.KeyVault/vaults",
    "name": "kv1",
    "location": "westeurope",
    "properties": {"enableSoftDelete": True, "networkAcls": {"defaultAction": "Allow"}},
}
KEY = {"id": f"{VAULT_ID}/keys/k1", "type": "Microsoft.KeyVault/vaults/keys", "name": "k1", "properties": {}}
REQUIRE_TAG = {
    "properties": {
        "displayName": "Require a tag on resources",
        "mode": "Indexed",
        "parameters": {"tagName": {"type": "String", "metadata": {"displayName": "Tag Name"}}},
        "policyRule": {
            "if": {"field": "[concat('tags[', parameters('tagName'), ']')]", "exists": "false"},
            "then": {"effect": "deny"},
        },
    },
    "name": "871b6d14-10aa-478d-b590-94f262ecfa99",
}
FIREWALL_MODIFY = {
    "properties": {
        "displayName": "Configure key vaults to enable firewall",
        "mode": "Indexed",
        "parameters": {"effect": {"type": "String", "allowedValues": ["Modify", "Disabled"], "defaultValue": "Modify"}},
        "policyRule": {
            "if": {
                "allOf": [
                    {"field": "type", "equals": "Microsoft.KeyVault/vaults"},
                    {"field": "Microsoft.KeyVault/vaults/networkAcls.defaultAction", "notEquals": "Deny"},
                ]
            },
            "then": {
                "effect": "[parameters('effect')]",
                "details": {
                    "conflictEffect": "audit",
                    "roleDefinitionIds": [
                        "/providers/Microsoft.Authorization/roleDefinitions/f25e0fa2-a7c8-4377-a976-54943a77a395"
                    ],
                    "operations": [
                        {
                            "operation": "addOrReplace",
                            "field": "Microsoft.KeyVault/vaults/networkAcls.defaultAction",
                            "value": "Deny",
                        }
                    ],
                },
            },
        },
    },
    "name": "ac673a9a-f77d-4846-b2d8-a57f8e1c01dc",
}


def folder(root: Path, definition: dict, assignment: dict | None = None, settings: dict | None = None, name="p"):
    where = root / name
    where.mkdir(parents=True)
    (where / "definition.json").write_text(json.dumps(definition))
    if assignment is not None:
        (where / "assignment.json").write_text(json.dumps(assignment))
    if settings is not None:
        (where / "cryptward.yaml").write_text(yaml.safe_dump(settings))
    return where


def assignment(**props) -> dict:
    """An assignment body as `az policy assignment show` prints it."""
    return {
        "id": f"{SUB}/providers/Microsoft.Authorization/policyAssignments/a1",
        "name": "a1",
        "type": "Microsoft.Authorization/policyAssignments",
        "location": None,
        "properties": {"displayName": "a1", "scope": SUB, "enforcementMode": "Default", **props},
    }


def only(root: Path, **kwargs):
    loaded = load_policies(root, fixes=kwargs.pop("fixes", []))
    assert not loaded.refused, [str(r) for r in loaded.refused]
    (policy,) = loaded
    return policy


def test_a_required_parameter_comes_from_the_assignment(tmp_path):
    folder(tmp_path, REQUIRE_TAG, assignment(parameters={"tagName": {"value": "owner"}}))
    policy = only(tmp_path)
    assert policy.parameters == {"tagName": "owner"}
    assert policy.noncompliant(VAULT)
    assert not policy.noncompliant(VAULT | {"tags": {"owner": "me"}})


def test_without_an_assignment_a_required_parameter_refuses_the_definition(tmp_path):
    folder(tmp_path, REQUIRE_TAG)
    loaded = load_policies(tmp_path, fixes=[])
    assert list(loaded) == []
    (refused,) = loaded.refused
    assert "needs a value" in refused.problems[0].message
    assert refused.problems[0].field == "properties.parameters.tagName"


def test_indexed_mode_never_evaluates_a_key_vault_key(tmp_path):
    """Keys support no tags (Learn, "Tag support for Azure resources"), so Indexed definitions skip them."""
    folder(tmp_path, REQUIRE_TAG, assignment(parameters={"tagName": {"value": "owner"}}))
    policy = only(tmp_path)
    assert not policy.applies_to(KEY)
    assert not policy.noncompliant(KEY)
    all_mode = json.loads(json.dumps(REQUIRE_TAG))
    all_mode["properties"]["mode"] = "All"
    folder(tmp_path / "all", all_mode, assignment(parameters={"tagName": {"value": "owner"}}))
    assert only(tmp_path / "all").noncompliant(KEY)


def test_not_scopes_exclude_what_is_under_them(tmp_path):
    folder(tmp_path, DELETION, assignment(notScopes=[f"{SUB}/resourceGroups/RG1"]))
    policy = only(tmp_path)
    assert not policy.applies_to(VAULT)
    assert policy.applies_to(VAULT | {"id": VAULT_ID.replace("rg1", "rg10")})


def test_an_effect_override_and_disabled(tmp_path):
    folder(tmp_path, DELETION, assignment(overrides=[{"kind": "policyEffect", "value": "Disabled"}]))
    policy = only(tmp_path)
    assert policy.effect == "Disabled"
    assert not policy.noncompliant(VAULT)
    folder(tmp_path / "param", DELETION, assignment(parameters={"effect": {"value": "Deny"}}))
    assert only(tmp_path / "param").effect == "Deny"


def test_a_parameter_value_outside_the_allowed_values_refuses(tmp_path):
    folder(tmp_path, DELETION, assignment(parameters={"effect": {"value": "Modify"}}))
    (refused,) = load_policies(tmp_path, fixes=[]).refused
    assert "'Modify' is not allowed" in refused.problems[0].message
    assert "Audit" in refused.problems[0].options


def test_do_not_enforce_is_reported_and_never_fixed(tmp_path):
    settings = {"mode": "remediate", "fix": {"name": "kv-purge-protection"}, "severity": "high"}
    folder(tmp_path, DELETION, assignment(enforcementMode="DoNotEnforce"), settings)
    policy = only(tmp_path, fixes=["kv-purge-protection"])
    assert (policy.enforced, policy.mode, policy.severity) == (False, "audit", "high")
    result = plan([Finding(policy, VAULT, mode="remediate")], PlanContext.from_dict({"now": "2026-06-01T08:00:00Z"}))
    assert result.changes == () or list(result.changes) == []
    assert [s.reason for s in result.skipped] == ["audit-only"]


def test_cryptward_settings_give_mode_fix_and_references(tmp_path):
    settings = {"mode": "approve", "fix": {"name": "f1"}, "severity": "low", "references": {"cis": "2.1.0 8.5"}}
    folder(tmp_path, DELETION, None, settings)
    policy = only(tmp_path, fixes=["f1"])
    assert (policy.mode, policy.fix.name, policy.severity, policy.references.cis) == (
        "approve",
        "f1",
        "low",
        "2.1.0 8.5",
    )
    assert policy.references.azure_policy == DELETION["name"]


@pytest.mark.parametrize(
    ("body", "settings", "file", "field", "message"),
    [
        (assignment(enforcementMode="Sometimes"), None, "assignment.json", "properties.enforcementMode", "not a valid"),
        (
            assignment(parameters={"effect": "Audit"}),
            None,
            "assignment.json",
            "properties.parameters.effect",
            "expected",
        ),
        (
            assignment(parameters={"efect": {"value": "Audit"}}),
            None,
            "assignment.json",
            "properties.parameters.efect",
            "not a parameter",
        ),
        (assignment(notScopes=["rg1"]), None, "assignment.json", "properties.notScopes[0]", "not a subscription"),
        (
            assignment(resourceSelectors=[{"name": "x"}]),
            None,
            "assignment.json",
            "properties.resourceSelectors",
            "not supported",
        ),
        (
            assignment(
                overrides=[{"kind": "policyEffect", "value": "Audit", "selectors": [{"kind": "resourceLocation"}]}]
            ),
            None,
            "assignment.json",
            "properties.overrides[0].selectors",
            "not supported",
        ),
        (
            assignment(overrides=[{"kind": "policyEffect", "value": "Modify"}]),
            None,
            "assignment.json",
            "properties.overrides",
            "not an allowed value of the effect parameter",
        ),
        (
            assignment(overrides=[{"kind": "policyEffect", "value": "Append"}]),
            None,
            "assignment.json",
            "properties.overrides",
            "not supported",
        ),
        ({"name": "x"}, None, "assignment.json", "properties", "missing required field"),
        (None, {"mode": "sometimes"}, "cryptward.yaml", "mode", "not a valid value"),
        (None, {"fix": {"name": "nope"}}, "cryptward.yaml", "fix.name", "unknown fix"),
        (None, {"title": "x"}, "cryptward.yaml", "title", "unknown field"),
    ],
)
def test_a_bad_assignment_or_settings_file_is_an_error(tmp_path, body, settings, file, field, message):
    folder(tmp_path, DELETION, body, settings)
    with pytest.raises(PolicyLoadError) as caught:
        load_policies(tmp_path, fixes=[])
    (problem,) = caught.value.problems
    assert (problem.file.name, problem.field) == (file, field)
    assert message in problem.message


def test_modify_loads_its_if_evaluates_and_its_operations_are_validated(tmp_path):
    folder(tmp_path, FIREWALL_MODIFY)
    policy = only(tmp_path)
    assert policy.effect == "Modify"
    assert policy.noncompliant(VAULT)
    (op,) = policy.modify.operations
    assert (op.operation, op.field, op.value.value) == (
        "addOrReplace",
        "Microsoft.KeyVault/vaults/networkAcls.defaultAction",
        "Deny",
    )
    assert policy.modify.conflict_effect == "audit"
    bad = json.loads(json.dumps(FIREWALL_MODIFY))
    bad["properties"]["policyRule"]["then"]["details"]["operations"] = [
        {"operation": "replace", "field": "tags['a']", "value": "x"},
        {"operation": "add", "field": "Microsoft.KeyVault/vaults/networkAcls.defaultActon", "value": "Deny"},
        {"operation": "add", "field": "tags['a']"},
    ]
    folder(tmp_path / "bad", bad)
    (refused,) = load_policies(tmp_path / "bad", fixes=[]).refused
    fields = [p.field for p in refused.problems]
    assert fields == [
        "properties.policyRule.then.details.operations[0].operation",
        "properties.policyRule.then.details.operations[1].field",
        "properties.policyRule.then.details.operations[2].value",
    ]
    assert "Microsoft.KeyVault/vaults/networkAcls.defaultAction" in refused.problems[1].options


def test_deploy_if_not_exists_loads_with_its_details(tmp_path):
    dine = json.loads(json.dumps(DELETION))
    dine["properties"]["policyRule"]["then"] = {"effect": "DeployIfNotExists", "details": {"type": "x/y"}}
    folder(tmp_path, dine)
    policy = only(tmp_path)
    assert (policy.effect, policy.related) == ("DeployIfNotExists", {"type": "x/y"})


def test_policy_function_sees_the_assignment_and_definition(tmp_path):
    doc = json.loads(json.dumps(DELETION))
    doc["id"] = "/providers/Microsoft.Authorization/policyDefinitions/" + doc["name"]
    doc["properties"]["policyRule"]["if"] = {"value": "[policy().assignmentId]", "contains": "policyAssignments/a1"}
    folder(tmp_path, doc, assignment())
    assert only(tmp_path).noncompliant(VAULT)


def test_a_finding_of_deploy_if_not_exists_or_modify_in_audit_mode_says_what_is_not_run(tmp_path):
    dine = json.loads(json.dumps(DELETION))
    dine["properties"]["policyRule"]["then"] = {"effect": "DeployIfNotExists", "details": {"type": "x/y"}}
    folder(tmp_path / "d", dine)
    folder(tmp_path / "m", FIREWALL_MODIFY)
    context = PlanContext.from_dict({"now": "2026-06-01T08:00:00Z"})
    for root, words in (
        (tmp_path / "d", "does not deploy its template"),
        (tmp_path / "m", "runs in audit mode"),
    ):
        (skip,) = plan([Finding(only(root), VAULT)], context).skipped
        assert words in skip.detail
