"""key-rotation-policy against the sandbox, as the bot with its deployed roles: the fix keeps an owner's expiry and
fits its own rotation time to it (Key Vault refuses a rotation less than 7 days before expiry), and a key whose
management-plane body lacks `rotationPolicy` has it read on the data plane before deciding."""

import pytest

from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.fixes.key_rotation_policy import days
from tests.engine.test_run import POLICIES, settings_for
from tests.rotation.test_run import CRYPTO_OFFICER, assign, names

KV_API, DATA_API = "2026-05-15", "2025-07-01"
ONLY = [p for p in POLICIES if p.id == "key-rotation-policy"]


@pytest.fixture
def owners_policy(sandbox, grant_custom_role, azure_as):
    """The estate, the bot with its role, and `put(policy)`: the admin (a Crypto Officer on the vault) writes the
    owner's rotation policy of des-key; it answers (admin, names, the policy's data-plane URL)."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    admin, n = azure_as("admin"), names(sandbox)
    with sandbox.roles_at_once():  # set-up long before the bot runs
        assign(admin, n["vault"], sandbox.principal("admin").object_id, CRYPTO_OFFICER)
    url = admin.get(n["vault"], KV_API)["properties"]["vaultUri"] + "keys/des-key/rotationpolicy"

    def put(policy):
        admin.keyvault_request("PUT", url, DATA_API, policy)
        return admin, n, url

    return put


def test_an_owners_short_expiry_is_kept_and_the_rotation_fits_it(sandbox, owners_policy, as_bot):
    admin, _, url = owners_policy({"lifetimeActions": [], "attributes": {"expiryTime": "P60D"}})

    report = scan(Scope((sandbox.subscription_id,)), ONLY, apply=True, settings=settings_for(sandbox), azure=as_bot())

    assert [(r.change.policy_id, r.status) for r in report.results] == [("key-rotation-policy", "applied")]
    policy = admin.keyvault_request("GET", url, DATA_API)
    assert policy["attributes"]["expiryTime"] == "P60D"  # the owner's, kept
    rotate = next(a for a in policy["lifetimeActions"] if a["action"]["type"].lower() == "rotate")
    assert days(rotate["trigger"]["timeAfterCreate"]) <= 60 - 7


def test_a_key_body_without_rotation_policy_gets_it_from_the_data_plane(owners_policy, as_bot):
    # The management plane may leave rotationPolicy out (Microsoft's listKeys/getKey examples carry none); deciding
    # without it would replace the owner's policy. The reader asks the data plane then.
    from remediations.engine.reader import rotation_policy_of

    admin, n, _ = owners_policy(
        {
            "lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}],
            "attributes": {"expiryTime": "P90D"},
        }
    )
    body = admin.get(n["key"], KV_API)
    body["properties"].pop("rotationPolicy")
    got = rotation_policy_of(as_bot(), body)
    assert got["attributes"]["expiryTime"] == "P90D"
    assert [a["trigger"].get("timeAfterCreate") for a in got["lifetimeActions"]] == ["P30D"]
    assert rotation_policy_of(as_bot(), admin.get(n["key"], KV_API)) is None  # present: nothing to read
