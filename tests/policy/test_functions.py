"""Template functions Azure Policy allows (Learn: "Azure Policy definition structure policy rule", Policy functions),
evaluated through `value` conditions as a definition uses them."""

import pytest

from remediations.errors import ConditionError
from remediations.policy.conditions import compile_condition

SUB = "00000000-0000-0000-0000-000000000001"
VAULT = {
    "id": f"/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/kv1",
    "type": "Microsoft.KeyVault/vaults",
    "name": "kv1",
    "properties": {"networkAcls": {"ipRules": [{"value": "203.0.113.8"}, {"value": "198.51.100.0/28"}]}},
}


def _eval(expression: str, **kwargs):
    from remediations.policy.expressions import compile_expression
    from remediations.policy.fields import Context, Scope

    scope = Scope(
        {k.lower(): (k, v) for k, v in (kwargs.get("parameters") or {}).items()}, policy=kwargs.get("policy") or {}
    )
    return compile_expression(expression, scope, "if.value").fn(Context(VAULT))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("ipRangeContains('203.0.113.0/24', '203.0.113.8')", True),
        ("ipRangeContains('203.0.113.0/24', '203.0.113.0/25')", True),
        ("ipRangeContains('203.0.113.0/25', '203.0.113.0/24')", False),
        ("ipRangeContains('10.0.0.1-10.0.0.9', '10.0.0.4')", True),
        ("ipRangeContains('2001:db8::/110', '2001:db8::3:fffe')", True),
        ("ipRangeContains('10.0.0.0/8', '11.0.0.1')", False),
        ("padLeft('7', 3, '0')", "007"),
        ("padLeft(42, 4)", "  42"),
        ("take('abcdef', 2)", "ab"),
        ("skip(createArray(1, 2, 3), 1)", [2, 3]),
        ("take(createArray(1, 2), 5)", [1, 2]),
        ("union(createArray(1, 2), createArray(2, 3))", [1, 2, 3]),
        ("intersection(createArray(1, 2, 3), createArray(3, 2, 5))", [2, 3]),
        ("union(json('{\"a\": 1}'), json('{\"b\": 2}'))", {"a": 1, "b": 2}),
        ('intersection(json(\'{"a": 1, "b": 2}\'), json(\'{"a": 1, "b": 3}\'))', {"a": 1}),
        ("indexOf('AbcDef', 'cd')", 2),
        ("indexOf(createArray('a', 'b'), 'b')", 1),
        ("lastIndexOf('abab', 'AB')", 2),
        ("join(createArray('a', 'b'), '-')", "a-b"),
        ("min(3, 1, 2)", 1),
        ("max(createArray(3, 1, 2))", 3),
        ("div(-7, 2)", -3),
        ("mod(-7, 2)", -1),
        ("range(2, 3)", [2, 3, 4]),
        ("base64ToString(base64('kv'))", "kv"),
        ("uriComponent('a b/c')", "a%20b%2Fc"),
        ("resourceGroup().name", "rg-keys"),
        ("subscription().subscriptionId", SUB),
        ("requestContext().apiVersion", "2026-05-15"),
        ("length(field('Microsoft.KeyVault/vaults/networkAcls.ipRules[*]'))", 2),
    ],
)
def test_functions(expression, expected):
    assert _eval(expression) == expected


def test_policy_returns_the_assignment_and_definition():
    info = {"assignmentId": "/subscriptions/x/providers/Microsoft.Authorization/policyAssignments/a1"}
    assert _eval("policy().assignmentId", policy=info) == info["assignmentId"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("ipRangeContains('10.0.0.0/8', '2001:db8::1')", "mixes IP families"),
        ("ipRangeContains('', '10.0.0.1')", "empty range"),
        ("padLeft('7', 3, '00')", "one character"),
    ],
)
def test_a_function_that_fails_names_why(expression, message):
    with pytest.raises(ConditionError, match=message):
        compile_condition({"value": f"[{expression}]", "equals": True})


@pytest.mark.parametrize(
    ("expression", "message", "option"),
    [
        ("reference('x')", "not allowed in an Azure Policy rule", None),
        ("resourceId('a', 'b')", "not allowed in an Azure Policy rule", None),
        ("uniqueString('a')", "not supported by Cryptward yet", None),
        ("padLef('7', 3)", "unknown function", "padLeft"),
    ],
)
def test_unavailable_functions_say_why(expression, message, option):
    with pytest.raises(ConditionError, match=message) as caught:
        compile_condition({"value": f"[{expression}]", "equals": True})
    if option:
        assert option in caught.value.options
        assert len(caught.value.options) <= 5
