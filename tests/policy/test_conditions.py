"""Azure Policy condition semantics, operator by operator, over a key vault ARM body."""

from datetime import UTC, datetime

import pytest

from remediations.errors import ConditionError
from remediations.policy.conditions import compile_condition

VAULT = "Microsoft.KeyVault/vaults"
KV = "Microsoft.KeyVault/vaults/"
RESOURCE = {
    "id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv-payments-01",
    "name": "kv-payments-01",
    "type": VAULT,
    "location": "East US 2",
    "tags": {"Env": "prod", "Acct.CostCenter": "42", "it's": "quoted"},
    "properties": {
        "enablePurgeProtection": True,
        "softDeleteRetentionInDays": 90,
        "vaultUri": "https://kv-payments-01.vault.azure.net/",
        "sku": {"family": "A", "name": "standard"},
        "networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "10.0.0.1"}, {"value": "10.0.0.2"}]},
        "accessPolicies": [
            {"objectId": "aaa", "permissions": {"keys": ["get", "purge"]}},
            {"objectId": "bbb", "permissions": {"keys": ["get"]}},
            {"objectId": "ccc"},
        ],
        "privateEndpointConnections": [],
    },
}
KEY = {
    "id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv-payments-01/keys/cmk",
    "name": "cmk",
    "type": "Microsoft.KeyVault/vaults/keys",
    "properties": {"kty": "RSA", "keySize": 2048, "attributes": {"enabled": True, "exp": 1767225600}},
}


def holds(condition, resource=RESOURCE, parameters=None, **kwargs):
    return compile_condition(condition, parameters=parameters).matches(resource, **kwargs)


def compile_error(condition, parameters=None, resource_type=None) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        compile_condition(condition, parameters=parameters, resource_type=resource_type)
    return caught.value


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # equals / notEquals: case-insensitive strings, coercion of booleans and numbers, absent fields
        ({"field": "type", "equals": "microsoft.keyvault/VAULTS"}, True),
        ({"field": "name", "equals": "kv-payments-02"}, False),
        ({"field": f"{KV}enablePurgeProtection", "equals": True}, True),
        ({"field": f"{KV}enablePurgeProtection", "equals": "TRUE"}, True),
        ({"field": f"{KV}enablePurgeProtection", "equals": "false"}, False),
        ({"field": f"{KV}softDeleteRetentionInDays", "equals": "90"}, True),
        ({"field": f"{KV}softDeleteRetentionInDays", "equals": 90.0}, True),
        ({"field": f"{KV}softDeleteRetentionInDays", "equals": "ninety"}, False),
        ({"field": f"{KV}enableSoftDelete", "equals": "false"}, False),
        ({"field": f"{KV}enableSoftDelete", "notEquals": "false"}, True),
        ({"field": f"{KV}sku.name", "notEquals": "Standard"}, False),
        # in / notIn
        ({"field": f"{KV}sku.name", "in": ["premium", "STANDARD"]}, True),
        ({"field": f"{KV}sku.name", "notIn": ["premium"]}, True),
        ({"field": f"{KV}enableSoftDelete", "in": ["true", "false"]}, False),
        ({"field": f"{KV}enableSoftDelete", "notIn": ["true", "false"]}, True),
        ({"field": f"{KV}softDeleteRetentionInDays", "in": [7, 90]}, True),
        # contains / notContains: substring of a string, member of an array
        ({"field": f"{KV}vaultUri", "contains": "VAULT.azure"}, True),
        ({"field": f"{KV}vaultUri", "notContains": "vault.azure"}, False),
        ({"field": "name", "contains": "prod"}, False),
        ({"field": f"{KV}enableSoftDelete", "contains": "x"}, False),
        ({"field": f"{KV}enableSoftDelete", "notContains": "x"}, True),
        ({"value": ["a", "B"], "contains": "b"}, True),
        # containsKey / notContainsKey: keys of an object, case-insensitive
        ({"field": "tags", "containsKey": "env"}, True),
        ({"field": "tags", "containsKey": "owner"}, False),
        ({"field": "tags", "notContainsKey": "owner"}, True),
        ({"field": f"{KV}sku", "containsKey": "FAMILY"}, True),
        ({"field": "name", "containsKey": "x"}, False),
        # like / notLike: one * wildcard, whole-value, case-insensitive
        ({"field": "name", "like": "KV-*"}, True),
        ({"field": "name", "like": "*-01"}, True),
        ({"field": "name", "like": "kv-*-02"}, False),
        ({"field": "name", "like": "kv-payments"}, False),
        ({"field": "name", "like": "kv-payments-01"}, True),
        ({"field": "name", "notLike": "kv-*"}, False),
        ({"field": f"{KV}softDeleteRetentionInDays", "like": "9*"}, True),
        ({"field": f"{KV}enableSoftDelete", "like": "*"}, False),
        ({"field": f"{KV}enableSoftDelete", "notLike": "*"}, True),
        ({"field": "name", "like": "kv.payments*"}, False),
        # match: # digit, ? letter, . any character; case-sensitive unless matchInsensitively
        ({"field": "name", "match": "kv-????????-##"}, True),
        ({"field": "name", "match": "KV-????????-##"}, False),
        ({"field": "name", "matchInsensitively": "KV-????????-##"}, True),
        ({"field": "name", "match": "kv-????????-#"}, False),
        ({"field": "name", "match": "..-..........."}, True),
        ({"field": "name", "notMatch": "kv-????????-##"}, False),
        ({"field": "name", "notMatchInsensitively": "KV-????????-##"}, False),
        ({"field": "name", "notMatch": "KV-????????-##"}, True),
        ({"field": f"{KV}enableSoftDelete", "match": "#"}, False),
        # exists: null and absent are the same; an empty string exists
        ({"field": f"{KV}enablePurgeProtection", "exists": True}, True),
        ({"field": f"{KV}enablePurgeProtection", "exists": "false"}, False),
        ({"field": f"{KV}enableSoftDelete", "exists": "false"}, True),
        ({"field": f"{KV}enableSoftDelete", "exists": "TRUE"}, False),
        ({"field": "tags['Env']", "exists": True}, True),
        ({"field": "tags['owner']", "exists": True}, False),
        ({"field": "kind", "exists": False}, True),
        ({"value": "", "exists": True}, True),
        # greater / less: numbers, numeric strings, dates, strings
        ({"field": f"{KV}softDeleteRetentionInDays", "greater": 89}, True),
        ({"field": f"{KV}softDeleteRetentionInDays", "greater": 90}, False),
        ({"field": f"{KV}softDeleteRetentionInDays", "greaterOrEquals": 90}, True),
        ({"field": f"{KV}softDeleteRetentionInDays", "less": "100"}, True),
        ({"field": f"{KV}softDeleteRetentionInDays", "lessOrEquals": 89.5}, False),
        ({"field": f"{KV}enableSoftDelete", "less": 5}, False),
        ({"field": f"{KV}enableSoftDelete", "greaterOrEquals": 5}, False),
        ({"value": "2026-05-15", "greaterOrEquals": "2019-09-01"}, True),
        ({"value": "2026-05-15T10:00:00Z", "greater": "2026-05-15"}, True),
        ({"value": "2026-05-15T10:00:00+02:00", "less": "2026-05-15T09:00:00Z"}, True),
        ({"value": "Beta", "greater": "alpha"}, True),
        ({"value": "beta", "less": "ALPHA"}, False),
        ({"value": "10", "less": "9"}, True),
        ({"value": 10, "greater": "9"}, True),
        # location is normalised: "East US 2" is "eastus2"
        ({"field": "location", "equals": "eastus2"}, True),
        ({"field": "location", "in": ["westeurope", "East US 2"]}, True),
        ({"field": "location", "like": "east*"}, True),
        # built-in fields and tag syntaxes
        ({"field": "fullName", "equals": "kv-payments-01"}, True),
        ({"field": "id", "like": "/subscriptions/s1/*"}, True),
        ({"field": "tags['Acct.CostCenter']", "equals": "42"}, True),
        ({"field": "tags[Acct.CostCenter]", "equals": "42"}, True),
        ({"field": "tags.env", "equals": "PROD"}, True),
        ({"field": "tags['it''s']", "equals": "quoted"}, True),
        ({"field": "Microsoft.keyvault/VAULTS/SKU.NAME", "equals": "standard"}, True),
        # logical operators
        ({"allOf": [{"field": "type", "equals": VAULT}, {"field": "name", "like": "kv-*"}]}, True),
        ({"allOf": [{"field": "type", "equals": VAULT}, {"field": "name", "like": "x*"}]}, False),
        ({"anyOf": [{"field": "name", "like": "x*"}, {"field": "tags.env", "equals": "prod"}]}, True),
        ({"anyOf": [{"field": "name", "like": "x*"}, {"field": "tags.env", "equals": "dev"}]}, False),
        ({"not": {"field": "name", "like": "x*"}}, True),
        ({"NOT": {"ALLOF": [{"FIELD": "type", "EQUALS": VAULT}]}}, False),
    ],
)
def test_operators(condition, expected):
    assert holds(condition) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # outside count, an [*] condition must hold for every member
        ({"field": f"{KV}networkAcls.ipRules[*].value", "like": "10.0.0.*"}, True),
        ({"field": f"{KV}networkAcls.ipRules[*].value", "equals": "10.0.0.1"}, False),
        ({"field": f"{KV}networkAcls.ipRules[*].value", "notEquals": "10.0.0.1"}, False),
        ({"not": {"field": f"{KV}networkAcls.ipRules[*].value", "notEquals": "10.0.0.1"}}, True),
        ({"field": f"{KV}accessPolicies[*].permissions.keys[*]", "in": ["get", "purge"]}, True),
        ({"field": f"{KV}accessPolicies[*].permissions.keys[*]", "equals": "get"}, False),
        # a member without the property selects null: exists false holds for it, not for the others
        ({"field": f"{KV}accessPolicies[*].permissions", "exists": True}, False),
        ({"field": f"{KV}accessPolicies[*].objectId", "exists": True}, True),
        # an empty array selects nothing, so the condition holds for all (none) of its members
        ({"field": f"{KV}privateEndpointConnections[*].id", "equals": "anything"}, True),
        ({"field": f"{KV}privateEndpointConnections[*]", "exists": True}, True),
        # an absent array also selects an empty collection (Azure docs: "An empty collection of values")
        ({"field": f"{KV}networkAcls.virtualNetworkRules[*].id", "equals": "x"}, True),
        # the array itself, without [*], is one value
        ({"field": f"{KV}networkAcls.ipRules", "exists": True}, True),
        ({"value": "[length(field('Microsoft.KeyVault/vaults/networkAcls.ipRules'))]", "equals": 2}, True),
        ({"value": "[field('Microsoft.KeyVault/vaults/networkAcls.ipRules[*].value')]", "contains": "10.0.0.2"}, True),
        (
            {"value": "[field('Microsoft.KeyVault/vaults/networkAcls.virtualNetworkRules[*].id')]", "equals": "[[]"},
            False,
        ),
        (
            {
                "value": "[length(field('Microsoft.KeyVault/vaults/networkAcls.virtualNetworkRules[*].id'))]",
                "equals": 0,
            },
            True,
        ),
        ({"value": "[field('Microsoft.KeyVault/vaults/enableSoftDelete')]", "equals": ""}, True),
    ],
)
def test_array_aliases_outside_count(condition, expected):
    assert holds(condition) is expected


def count(field, where=None, **op):
    spec = {"field": field, **({"where": where} if where else {})}
    return {"count": spec, **op}


AP = f"{KV}accessPolicies[*]"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (count(AP, equals=3), True),
        (count(f"{KV}privateEndpointConnections[*]", equals=0), True),
        (count(f"{KV}networkAcls.virtualNetworkRules[*]", equals=0), True),
        (count(f"{AP}.permissions.keys[*]", equals=3), True),
        (count(AP, {"field": f"{AP}.objectId", "in": ["aaa", "bbb"]}, equals=2), True),
        # "ccc" has no keys: its empty collection of keys satisfies the [*] condition vacuously
        (count(AP, {"field": f"{AP}.permissions.keys[*]", "equals": "get"}, equals=2), True),
        (count(AP, {"field": f"{AP}.permissions", "exists": False}, equals=1), True),
        # the where sees the whole resource too
        (count(AP, {"field": "tags.env", "equals": "prod"}, equals=3), True),
        # nested count over the member being enumerated
        (
            count(
                AP,
                count(
                    f"{AP}.permissions.keys[*]", {"field": f"{AP}.permissions.keys[*]", "equals": "PURGE"}, greater=0
                ),
                equals=1,
            ),
            True,
        ),
        # current() and field() inside where
        (count(AP, {"value": f"[current('{AP}.objectId')]", "equals": "bbb"}, equals=1), True),
        (count(AP, {"value": "[current()].objectId", "equals": "aaa"}, equals=0), True),
        (count(AP, {"value": f"[current('{AP}').objectId]", "equals": "aaa"}, equals=1), True),
        (count(AP, {"value": f"[field('{AP}.objectId')]", "equals": "aaa"}, equals=0), True),
        (count(AP, {"value": f"[first(field('{AP}.objectId'))]", "equals": "aaa"}, equals=1), True),
        (
            count(
                AP, {"value": "[length(field('Microsoft.KeyVault/vaults/accessPolicies[*]'))]", "equals": 1}, equals=3
            ),
            True,
        ),
        # the count compared with any operator, including an expression operand
        (count(AP, greaterOrEquals="[length(parameters('ids'))]"), True),
        (count(AP, {"field": f"{AP}.objectId", "in": "[parameters('ids')]"}, less=2), False),
    ],
)
def test_field_count(condition, expected):
    assert holds(condition, parameters={"ids": ["aaa", "bbb"]}) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            {
                "count": {"value": ["kv-*", "sa-*"], "name": "p", "where": {"field": "name", "like": "[current('p')]"}},
                "greater": 0,
            },
            True,
        ),
        ({"count": {"value": ["sa-*"], "where": {"field": "name", "like": "[current()]"}}, "greater": 0}, False),
        (
            {
                "count": {
                    "value": "[parameters('rules')]",
                    "name": "r",
                    "where": {"value": "[current('r').n]", "greater": 1},
                },
                "equals": 1,
            },
            True,
        ),
        ({"count": {"value": []}, "equals": 0}, True),
        (
            {
                "count": {
                    "value": ["aaa", "zzz"],
                    "name": "id",
                    "where": count(AP, {"field": f"{AP}.objectId", "equals": "[current('id')]"}, equals=0),
                },
                "equals": 1,
            },
            True,
        ),
    ],
)
def test_value_count(condition, expected):
    assert holds(condition, parameters={"rules": [{"n": 1}, {"n": 2}]}) is expected


PARAMS = {"prefix": "KV", "cfg": {"names": ["kv-payments-01", "x"], "env": "prod"}, "days": 30, "flag": True}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[concat(toLower(parameters('prefix')), '-payments-01')]", "kv-payments-01"),
        ("[equals(concat(createArray(1), createArray(2, 3)), createArray(1, 2, 3))]", True),
        ("[toUpper(field('name'))]", "KV-PAYMENTS-01"),
        ("[parameters('cfg').names[0]]", "kv-payments-01"),
        ("[parameters('CFG').Env]", "prod"),
        ("[if(parameters('flag'), 'yes', 'no')]", "yes"),
        ("[if(equals(field('name'), 'other'), length(field('kind')), 'short-circuit')]", "short-circuit"),
        ("[equals(field('name'), 'kv-payments-01')]", True),
        ("[equals('a', 'A')]", False),
        ("[length(split(field('name'), '-'))]", 3),
        ("[last(split(field('id'), '/'))]", "kv-payments-01"),
        ("[first('abc')]", "a"),
        ("[empty(field('tags'))]", False),
        ("[empty(parameters('cfg').names)]", False),
        ("[contains(field('tags'), 'ENV')]", True),
        ("[contains(field('name'), 'PAY')]", False),
        ("[contains(parameters('cfg').names, 'x')]", True),
        ("[string(field('Microsoft.KeyVault/vaults/softDeleteRetentionInDays'))]", "90"),
        ("[string(parameters('flag'))]", "True"),
        ("[int('42')]", 42),
        ("[bool('TRUE')]", True),
        ("[concat('it''s ', 'ok')]", "it's ok"),
        ("[requestContext().apiVersion]", "2026-05-15"),
        ("[addDays('2026-01-30T00:00:00Z', parameters('days'))]", "2026-03-01T00:00:00.000000Z"),
        ("[utcNow()]", "2026-06-01T12:00:00.000000Z"),
        ("[less(parameters('days'), 31)]", True),
        ("[not(greater(1, 2))]", True),
        ("[and(true, or(false, true()))]", True),
        ("[startsWith(field('name'), 'KV-')]", True),
        ("[substring(field('name'), 3, 8)]", "payments"),
        ("[tryGet(parameters('cfg'), 'missing')]", None),
        ("[coalesce(tryGet(field('tags'), 'owner'), 'nobody')]", "nobody"),
        ("[replace(field('name'), '-', '_')]", "kv_payments_01"),
    ],
)
def test_template_functions(expression, expected):
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert holds({"value": expression, "equals": expected}, parameters=PARAMS, now=now)


def test_literal_starting_with_double_bracket_is_not_an_expression():
    assert holds({"value": "[[not an expression]", "equals": "[[NOT an expression]"})
    assert holds({"value": "[[x]", "like": "[[*"})


def test_field_given_as_expression_resolves_when_the_policy_loads():
    condition = {"field": "[concat('tags[', parameters('tag'), ']')]", "equals": "prod"}
    assert holds(condition, parameters={"tag": "env"})


def test_aliases_of_another_type_select_nothing():
    assert holds({"field": "Microsoft.KeyVault/vaults/keys/kty", "exists": False})
    assert holds({"field": "Microsoft.KeyVault/vaults/keys/keySize", "greaterOrEquals": 2048}, KEY)
    assert not holds({"field": f"{KV}enablePurgeProtection", "exists": True}, KEY)


def test_arm_property_names_match_case_insensitively():
    resource = {
        "type": "Microsoft.Compute/disks",
        "properties": {"Encryption": {"Type": "EncryptionAtRestWithCustomerKey"}},
    }
    assert holds({"field": "Microsoft.Compute/disks/encryption.type", "like": "*CustomerKey"}, resource)


def test_vm_short_aliases_and_top_level_disk_aliases():
    vm = {
        "type": "Microsoft.Compute/virtualMachines",
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {"imageReference": {"offer": "0001-com-ubuntu-server-jammy"}, "dataDisks": []},
            "securityProfile": {"encryptionAtHost": True},
        },
    }
    assert holds({"field": "Microsoft.Compute/virtualMachines/sku.name", "like": "Standard_D*"}, vm)
    assert holds({"field": "Microsoft.Compute/imageOffer", "contains": "ubuntu"}, vm)
    assert holds({"field": "Microsoft.Compute/virtualMachines/securityProfile.encryptionAtHost", "equals": True}, vm)
    disk = {"type": "Microsoft.Compute/disks", "managedBy": "/subscriptions/s/vm1", "sku": {"name": "Premium_LRS"}}
    assert holds({"field": "Microsoft.Compute/disks/sku.name", "equals": "premium_lrs"}, disk)
    assert holds({"field": "Microsoft.Compute/disks/managedBy", "exists": True}, disk)


def test_fields_lists_what_the_condition_reads():
    condition = compile_condition(
        {"allOf": [{"field": "type", "equals": VAULT}, count(AP, {"field": f"{AP}.objectId", "equals": "a"}, equals=0)]}
    )
    assert condition.fields == {"type", AP, f"{AP}.objectId"}


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "name", "greater": True},
        {"field": f"{KV}sku", "less": 3},
        {"field": "name", "greater": 3},
    ],
)
def test_ordering_values_that_cannot_be_ordered_fails_the_evaluation(condition):
    compiled = compile_condition(condition) if not isinstance(condition.get("greater"), bool) else None
    if compiled is None:
        assert "greater" in compile_error(condition).path
        return
    with pytest.raises(ConditionError) as caught:
        compiled.matches(RESOURCE)
    assert caught.value.path.startswith("if.")


def test_function_failure_at_evaluation_names_the_path():
    compiled = compile_condition({"allOf": [{"value": "[length(field('kind'))]", "equals": 0}]})
    with pytest.raises(ConditionError, match=r"if\.allOf\[0\]\.value: \[length"):
        compiled.matches({"type": VAULT, "kind": 5})


@pytest.mark.parametrize(
    ("condition", "path", "message", "option"),
    [
        ({"field": "name", "equalz": "x"}, "if.equalz", "unknown key", "equals"),
        ({"field": "name"}, "if", "exactly one operator", "notEquals"),
        ({"field": "name", "equals": "a", "like": "b"}, "if", "exactly one operator", "like"),
        ({"equals": "a"}, "if", "exactly one of field, value, count", "count"),
        ({"field": "name", "value": "a", "equals": "a"}, "if", "exactly one of field, value, count", "value"),
        ({"allOf": [{"field": "name", "equals": "a"}], "field": "x"}, "if", "must be alone", None),
        ({"allOf": []}, "if.allOf", "non-empty list", None),
        ({"anyOf": {"field": "name", "equals": "a"}}, "if.anyOf", "non-empty list", None),
        (
            {"allOf": [{"field": "Microsoft.KeyVault/vaults/purgeProtection", "equals": True}]},
            "if.allOf[0].field",
            "unknown field",
            f"{KV}enablePurgeProtection",
        ),
        ({"not": {"field": "name", "in": "kv"}}, "if.not.in", "needs a list", None),
        ({"field": "name", "exists": "maybe"}, "if.exists", "true or false", None),
        ({"field": "location", "equals": "[parameters('locations')]"}, "if.equals", "in/notIn", None),
        ({"field": "name", "like": ["a"]}, "if.like", "single value", None),
        ({"field": "name", "greater": None}, "if.greater", "number, string or date", None),
        ({"value": "[lenght(field('name'))]", "equals": 1}, "if.value", "unknown function 'lenght'", "length"),
        ({"value": "[parameters('missing')]", "equals": 1}, "if.value", "unknown parameter", "locations"),
        ({"value": "[toLower('a', 'b')]", "equals": 1}, "if.value", "takes 1 argument", None),
        ({"value": "[concat('a']", "equals": 1}, "if.value", "expected ')'", None),
        ({"value": "[concat('a') extra]", "equals": 1}, "if.value", "unexpected", None),
        ({"value": "[concat('a', #)]", "equals": 1}, "if.value", "cannot read", None),
        ({"value": "[current()]", "equals": 1}, "if.value", "only valid inside a count", None),
        ({"value": "[field(field('name'))]", "equals": 1}, "if.value", "literal string", None),
        ({"value": "[int('x')]", "equals": 1}, "if.value", "fails", None),
        (
            {"count": {"field": f"{KV}sku.name"}, "equals": 1},
            "if.count.field",
            "array alias",
            f"{KV}networkAcls.ipRules[*]",
        ),
        ({"count": {"field": AP, "name": "x"}, "equals": 1}, "if.count.name", "only valid in a value count", None),
        ({"count": {"value": "abc"}, "equals": 1}, "if.count.value", "must be an array", None),
        ({"count": {"field": AP, "value": []}, "equals": 1}, "if.count", "field or value", None),
        (
            {"count": {"field": AP, "where": {"value": "[current('nope')]", "equals": 1}}, "equals": 1},
            "if.count.where.value",
            "unknown field",
            None,
        ),
        ({"field": "[field('name')]", "equals": "a"}, "if.field", "must resolve to a field name", None),
        ("name equals a", "if", "expected a condition object", None),
    ],
)
def test_compile_errors_name_the_path_and_the_options(condition, path, message, option):
    error = compile_error(condition, parameters={"locations": ["a", "b"]})
    assert error.path == path
    assert message in error.message
    if option is not None:
        assert option in error.options
        assert option in str(error)


def test_resource_type_restricts_the_aliases_offered():
    error = compile_error({"field": "Microsoft.Compute/disks/encryption.type", "equals": "x"}, resource_type=VAULT)
    assert "Microsoft.KeyVault/vaults" in error.message
    assert not any(o.startswith("Microsoft.Compute") for o in error.options)
    near = compile_error({"field": f"{KV}enablePurgeProtecton", "equals": True}, resource_type=VAULT)
    assert near.options[0] == f"{KV}enablePurgeProtection"


def test_an_unknown_alias_offers_the_nearest_names_not_every_alias():
    error = compile_error({"field": f"{KV}networkAcls.defaultActon", "equals": "Deny"})
    assert f"{KV}networkAcls.defaultAction" in error.options
    assert len(error.options) <= 5


def test_an_alias_of_a_type_cryptward_does_not_read_selects_nothing():
    gallery = "Microsoft.Compute/galleries/images/versions/storageProfile.osDiskImage.source.id"
    condition = compile_condition({"field": gallery, "exists": False})
    assert condition.matches(RESOURCE)
    counted = compile_condition(
        {
            "count": {
                "field": "Microsoft.Compute/galleries/x.y[*]",
                "where": {"field": "name", "equals": 1},
            },
            "equals": 0,
        }
    )
    assert counted.matches(RESOURCE)
    with pytest.raises(ConditionError, match="did you mean") as typo:
        compile_condition({"field": "Microsoft.KeyVault/vault/enableSoftDelete", "equals": True})
    assert "Microsoft.KeyVault/vaults" in typo.value.options


def test_count_field_of_an_unknown_alias_says_unknown():
    error = compile_error({"count": {"field": f"{KV}accessPolicies[*].nope"}, "equals": 0})
    assert "unknown field" in error.message


def test_dynamic_operand_of_the_wrong_shape_fails_at_evaluation():
    compiled = compile_condition({"field": "name", "in": "[field('name')]"})
    with pytest.raises(ConditionError, match="in needs a list"):
        compiled.matches(RESOURCE)
