"""The policy loader: good folders load; every kind of bad policy is reported with file, field and options."""

import json
from pathlib import Path

import pytest
import yaml

from remediations import fixes
from remediations.errors import FixRegistryError, PolicyLoadError
from remediations.policy.loader import load_policies

BUILTIN = Path(__file__).resolve().parents[2] / "policies" / "builtin-kv-deletion-protection" / "definition.json"
VAULT = {"type": "Microsoft.KeyVault/vaults", "name": "kv1", "properties": {"enablePurgeProtection": True}}


def good_policy(policy_id: str = "kv-purge") -> dict:
    return {
        "id": policy_id,
        "title": "Key vaults have purge protection",
        "description": "Purge protection keeps deleted keys recoverable.",
        "severity": "high",
        "resourceType": "Microsoft.KeyVault/vaults",
        "parameters": {"retention": {"type": "Integer", "defaultValue": 90, "allowedValues": [7, 90]}},
        "if": {
            "anyOf": [
                {"field": "Microsoft.KeyVault/vaults/enablePurgeProtection", "notEquals": True},
                {"field": "Microsoft.KeyVault/vaults/softDeleteRetentionInDays", "less": "[parameters('retention')]"},
            ]
        },
        "fix": {"name": "test-purge", "parameters": {"wait": True}},
        "mode": "approve",
        "irreversible": True,
        "references": {
            "seed": "Resource Protection",
            "cis": None,
            "azurePolicy": "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53",
        },
    }


def write(folder: Path, doc, policy_id: str = "kv-purge") -> Path:
    path = folder / policy_id / "policy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def registered():
    """Register throwaway fixes for one test and forget them after."""
    added: list[str] = []

    def add(*names: str) -> None:
        for name in names:
            fixes.register(name)(lambda resource: [])
            added.append(name)

    add("test-purge", "test-other")
    yield add
    for name in added:
        fixes.unregister(name)


def problems_of(folder: Path, **kwargs) -> list:
    with pytest.raises(PolicyLoadError) as caught:
        load_policies(folder, **kwargs)
    return list(caught.value.problems)


def one_problem(folder: Path, **kwargs):
    found = problems_of(folder, **kwargs)
    assert len(found) == 1, found
    return found[0]


def test_a_good_folder_loads(tmp_path, registered):
    write(tmp_path, good_policy())
    (tmp_path / "builtin").mkdir()
    (tmp_path / "builtin" / "definition.json").write_text(BUILTIN.read_text())
    (tmp_path / "loose.json").write_text(BUILTIN.read_text())
    policies = load_policies(tmp_path)
    assert [p.id for p in policies] == ["builtin", "kv-purge", "loose"]
    builtin, mine, _ = policies
    assert mine.severity == "high" and mine.mode == "approve" and mine.irreversible
    assert mine.fix is not None and mine.fix.name == "test-purge" and mine.fix.parameters == {"wait": True}
    assert mine.parameters == {"retention": 90}
    assert mine.references.azure_policy == "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53"
    assert mine.source == tmp_path / "kv-purge" / "policy.yaml"
    assert builtin.mode == "audit" and builtin.effect == "Audit" and builtin.fix is None
    assert builtin.resource_type == "Microsoft.KeyVault/vaults"
    assert builtin.title == "Key vaults should have deletion protection enabled"


def test_if_holding_means_noncompliant(tmp_path, registered):
    write(tmp_path, good_policy())
    (policy,) = load_policies(tmp_path)
    assert not policy.noncompliant(VAULT | {"properties": {"enablePurgeProtection": True}})
    assert policy.noncompliant(VAULT | {"properties": {"enablePurgeProtection": False}})
    assert policy.noncompliant(VAULT | {"properties": {"enablePurgeProtection": True, "softDeleteRetentionInDays": 7}})
    disk = {"type": "Microsoft.Compute/disks", "properties": {}}
    assert not policy.applies_to(disk) and not policy.noncompliant(disk)


def test_fix_may_be_null_and_parameters_optional(tmp_path):
    doc = good_policy() | {"fix": None, "mode": "audit"}
    del doc["parameters"]
    doc["if"] = {"field": "Microsoft.KeyVault/vaults/enablePurgeProtection", "notEquals": True}
    write(tmp_path, doc)
    (policy,) = load_policies(tmp_path, fixes=[])
    assert policy.fix is None and policy.parameters == {}


@pytest.mark.parametrize(
    ("change", "field", "message", "option"),
    [
        ({"owner": "me"}, "owner", "unknown field 'owner'", "resourceType"),
        ({"title": None}, "title", "expected string", None),
        ({"severity": "urgent"}, "severity", "'urgent' is not a valid value", "critical"),
        ({"mode": "auto"}, "mode", "not a valid value", "remediate"),
        (
            {"resourceType": "Microsoft.Storage/storageAccounts"},
            "resourceType",
            "not a valid value",
            "Microsoft.Compute/disks",
        ),
        ({"irreversible": "yes"}, "irreversible", "expected boolean", None),
        ({"id": "other-id"}, "id", "must equal its folder name 'kv-purge'", None),
        ({"fix": {"name": "nope"}}, "fix.name", "unknown fix 'nope'", "test-purge"),
        ({"fix": {"name": "test-purge", "retries": 3}}, "fix.retries", "unknown field", "parameters"),
        ({"references": {"seed": None, "cis": None}}, "references.azurePolicy", "missing required field", None),
        ({"references": {"seed": None, "cis": None, "azurePolicy": "abc"}}, "references.azurePolicy", "GUID", None),
        (
            {"parameters": {"retention": {"type": "Number", "defaultValue": 1}}},
            "parameters.retention.type",
            "not a valid value",
            "Integer",
        ),
        (
            {"parameters": {"retention": {"type": "Integer", "defaultValue": "90"}}},
            "parameters.retention.defaultValue",
            "not of type Integer",
            None,
        ),
        (
            {"parameters": {"retention": {"type": "Integer", "defaultValue": 30, "allowedValues": [7, 90]}}},
            "parameters.retention.defaultValue",
            "not allowed",
            "90",
        ),
        (
            {"parameters": {"retention": {"type": "Integer"}}},
            "parameters.retention.defaultValue",
            "missing required field",
            None,
        ),
        (
            {"if": {"field": "Microsoft.KeyVault/vaults/purge", "equals": True}},
            "if.field",
            "unknown field",
            "Microsoft.KeyVault/vaults/enablePurgeProtection",
        ),
        ({"if": {"allOf": [{"field": "name", "equal": "x"}]}}, "if.allOf[0].equal", "unknown key", "equals"),
        (
            {"if": {"field": "Microsoft.Compute/disks/encryption.type", "equals": "x"}},
            "if.field",
            "Microsoft.KeyVault/vaults",
            None,
        ),
        ({"if": {"value": "[parameters('retention2')]", "equals": 1}}, "if.value", "unknown parameter", "retention"),
    ],
)
def test_a_bad_policy_names_file_field_and_options(tmp_path, registered, change, field, message, option):
    path = write(tmp_path, good_policy() | change)
    problem = one_problem(tmp_path)
    assert problem.file == path
    assert problem.field == field
    assert message in problem.message
    if option is not None:
        assert option in problem.options
    assert str(path) in str(problem) and field in str(problem)


@pytest.mark.parametrize(
    "missing", ["id", "title", "description", "severity", "resourceType", "if", "fix", "mode", "references"]
)
def test_required_fields(tmp_path, registered, missing):
    doc = good_policy()
    del doc[missing]
    write(tmp_path, doc)
    problem = one_problem(tmp_path)
    assert problem.field == missing and "missing required field" in problem.message


def test_id_pattern(tmp_path, registered):
    path = write(tmp_path, good_policy("KV_Purge"), "KV_Purge")
    problem = one_problem(tmp_path)
    assert (problem.file, problem.field) == (path, "id") and "lower-case letters" in problem.message


def test_unknown_fix_when_no_fix_is_registered(tmp_path):
    write(tmp_path, good_policy())
    problem = one_problem(tmp_path, fixes=[])
    assert problem.field == "fix.name" and "no fix is registered" in problem.message


def test_unreadable_yaml(tmp_path):
    path = write(tmp_path, "id: [unclosed\n")
    problem = one_problem(tmp_path)
    assert problem.file == path and "cannot be read" in problem.message


def test_a_folder_without_a_policy(tmp_path, registered):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("nothing")
    problem = one_problem(tmp_path)
    assert problem.file == tmp_path / "empty" and "no policy.yaml" in problem.message


def test_missing_folder(tmp_path):
    problem = one_problem(tmp_path / "nope", fixes=[])
    assert "does not exist" in problem.message


def test_duplicate_ids(tmp_path, registered):
    write(tmp_path, good_policy())
    (tmp_path / "kv-purge.json").write_text(BUILTIN.read_text())
    problem = one_problem(tmp_path)
    assert problem.field == "id" and "also used by" in problem.message


def test_nothing_is_half_loaded_and_every_problem_is_listed(tmp_path, registered):
    write(tmp_path, good_policy("good-one"), "good-one")
    write(tmp_path, good_policy("bad-one") | {"severity": "urgent", "mode": "auto"}, "bad-one")
    write(tmp_path, good_policy("bad-two") | {"fix": {"name": "nope"}}, "bad-two")
    found = problems_of(tmp_path)
    assert {(p.file.parent.name, p.field) for p in found} == {
        ("bad-one", "severity"),
        ("bad-one", "mode"),
        ("bad-two", "fix.name"),
    }


def definition(effect="[parameters('effect')]", default="Audit", **props) -> dict:
    doc = json.loads(BUILTIN.read_text())
    doc["properties"]["policyRule"]["then"]["effect"] = effect
    doc["properties"]["parameters"]["effect"]["defaultValue"] = default
    doc["properties"].update(props)
    return doc


@pytest.mark.parametrize(
    ("doc", "field", "message", "option"),
    [
        (definition(effect="Append"), "properties.policyRule.then.effect", "Cryptward sees no requests", None),
        (definition(effect="Nope"), "properties.policyRule.then.effect", "'Nope' is not supported", "Modify"),
        (
            definition(effect="[parameters('efect')]"),
            "properties.policyRule.then.effect",
            "unknown parameter",
            "effect",
        ),
        (
            definition(parameters={"effect": {"type": "String"}}),
            "properties.parameters.effect",
            "needs a value",
            None,
        ),
        ({"properties": {"displayName": "x"}}, "properties.policyRule", "not an Azure Policy definition", None),
        (
            definition(policyRule={"if": {"field": "typ", "equals": 1}, "then": {"effect": "audit"}}),
            "properties.policyRule.if.field",
            "unknown field",
            "type",
        ),
        (definition(mode="Microsoft.Network.Data"), "properties.mode", "is recognised", None),
        (definition(mode="Sometimes"), "properties.mode", "unknown mode", "Indexed"),
    ],
)
def test_a_definition_that_cannot_load_is_refused_alone(tmp_path, doc, field, message, option):
    path = tmp_path / "builtin" / "definition.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    (tmp_path / "good.json").write_text(BUILTIN.read_text())
    loaded = load_policies(tmp_path, fixes=[])
    assert [p.id for p in loaded] == ["good"]
    (refused,) = loaded.refused
    assert (refused.id, refused.source) == ("builtin", path)
    problem = refused.problems[0]
    assert problem.field == field
    assert message in problem.message
    if option is not None:
        assert option in problem.options
    assert message in str(refused)


def test_azure_definition_effects_and_related_details(tmp_path):
    doc = definition(effect="AuditIfNotExists")
    doc["properties"]["policyRule"]["then"]["details"] = {"type": "Microsoft.Insights/diagnosticSettings"}
    (tmp_path / "aine.json").write_text(json.dumps(doc))
    (policy,) = load_policies(tmp_path, fixes=[])
    assert (policy.id, policy.mode, policy.effect) == ("aine", "audit", "AuditIfNotExists")
    assert policy.related == {"type": "Microsoft.Insights/diagnosticSettings"}


def test_fix_registry():
    @fixes.register("test-registry-fix")
    class Fix:
        pass

    try:
        assert fixes.get("test-registry-fix") is Fix
        assert "test-registry-fix" in fixes.names()
        with pytest.raises(FixRegistryError, match="registered twice"):
            fixes.register("test-registry-fix")(object)
        with pytest.raises(FixRegistryError, match=r"unknown fix 'nope'; valid options: .*test-registry-fix"):
            fixes.get("nope")
    finally:
        fixes.unregister("test-registry-fix")
    assert "test-registry-fix" not in fixes.names()
