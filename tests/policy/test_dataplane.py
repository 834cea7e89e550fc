"""The Key Vault data plane as Azure Policy presents it: a management-plane key body as a
`Microsoft.KeyVault.Data/vaults/keys` object, its times ISO 8601 so that template date arithmetic works."""

import json
from pathlib import Path

import pytest

from remediations.errors import ConditionError
from remediations.policy.conditions import compile_condition
from remediations.policy.dataplane import duration, key_view

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "azure-specs" / "examples" / "keyvault" / "getKey.json"
KEY = json.loads(EXAMPLE.read_text())["responses"]["200"]["body"]  # azure-rest-api-specs: created 1598533051
D = "Microsoft.KeyVault.Data/vaults/keys/"


def test_a_key_as_the_data_plane_presents_it():
    view = key_view(KEY)
    assert view["type"] == "Microsoft.KeyVault.Data/vaults/keys"
    assert (view["keyType"], view["keySize"]) == ("RSA", 2048)
    assert view["attributes"] == {
        "enabled": True,
        "recoveryLevel": "Purgeable",
        "createdOn": "2020-08-27T12:57:31.000000Z",
        "updatedOn": "2020-08-27T12:57:31.000000Z",
    }
    assert "expiresOn" not in view["attributes"] and "scheduledRotationDate" not in view


def test_date_arithmetic_on_created_on_works():
    cond = compile_condition(
        {"value": f"[addDays(field('{D}attributes.createdOn'), 90)]", "equals": "2020-11-25T12:57:31.000000Z"}
    )
    assert cond.matches(key_view(KEY))


def test_the_scheduled_rotation_follows_the_rotation_policy():
    key = json.loads(json.dumps(KEY))
    key["properties"]["rotationPolicy"] = {
        "lifetimeActions": [
            {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "notify"}},
            {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "rotate"}},
        ]
    }
    assert key_view(key)["scheduledRotationDate"] == "2020-11-25T12:57:31.000000Z"
    key["properties"]["rotationPolicy"]["lifetimeActions"] = [
        {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Rotate"}}
    ]
    key["properties"]["attributes"]["exp"] = 1598533051 + 365 * 86400
    assert key_view(key)["scheduledRotationDate"] == "2021-07-28T12:57:31.000000Z"


@pytest.mark.parametrize(("text", "days"), [("P90D", 90), ("P1Y", 365), ("P1Y6M", 545), ("PT1H", None), ("", None)])
def test_rotation_durations(text, days):
    got = duration(text)
    assert (got.days if got else None) == days


def test_an_unknown_data_plane_alias_is_refused_with_the_nearest_names():
    with pytest.raises(ConditionError) as err:
        compile_condition({"field": f"{D}keySise", "less": 2048})
    assert f"{D}keySize" in err.value.options
