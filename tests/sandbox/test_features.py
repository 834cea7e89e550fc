"""Microsoft.Features in the sandbox: a subscription registers the EncryptionAtHost feature of Microsoft.Compute
(Registering, then Registered on the sandbox's clock), and only then may a VM name `securityProfile.encryptionAtHost`;
the provider is registered again as az asks (recorded, not required: sandbox/providers/features.py)."""

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource.resources import ResourceManagementClient

from sandbox.providers.features import provider_registered_since
from tests.sandbox.test_compute import Env

API = "2021-07-01"
FEATURE = "providers/Microsoft.Features/providers/Microsoft.Compute/features/EncryptionAtHost"
EAH = {"securityProfile": {"encryptionAtHost": True}}


@pytest.fixture
def env(sandbox):
    return Env(sandbox)


def arm(sandbox, method, path, api=API, who="admin"):
    token = sandbox.credential(who).get_token("https://management.azure.com/.default").token
    url = f"{sandbox.base_url}/subscriptions/{sandbox.subscription_id}/{path}"
    with httpx.Client(verify=sandbox.ssl, timeout=30) as client:
        r = client.request(method, url, params={"api-version": api}, headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json() if r.content else None


def refused_eah(env, name):
    with pytest.raises(HttpResponseError) as err:
        env.vm(name, env.disk(f"{name}-os").id, **EAH)
    return err.value.status_code, err.value.error.code, err.value.error.message


def test_a_new_subscription_has_the_feature_unregistered_and_refuses_encryption_at_host(env, sandbox):
    status, body = arm(sandbox, "GET", FEATURE)
    assert status == 200 and body == {
        "id": f"/subscriptions/{sandbox.subscription_id}/{FEATURE}",
        "name": "Microsoft.Compute/EncryptionAtHost",
        "properties": {"state": "NotRegistered"},
        "type": "Microsoft.Features/providers/features",
    }
    status, code, message = refused_eah(env, "vm1")
    assert (status, code) == (400, "InvalidParameter")
    assert message == (
        "The property 'securityProfile.encryptionAtHost' is not valid because the 'Microsoft.Compute/EncryptionAtHost'"
        " feature is not enabled for this subscription."
    )
    env.vm("vm2", env.disk("vm2-os").id)  # a VM that does not name the property is fine


def test_registering_takes_time_then_the_provider_is_registered_again(env, sandbox):
    status, body = arm(sandbox, "POST", f"{FEATURE}/register")
    assert (status, body["properties"]["state"]) == (200, "Registering")
    assert arm(sandbox, "GET", FEATURE)[1]["properties"]["state"] == "Registering"
    assert refused_eah(env, "vm1")[:2] == (400, "InvalidParameter")
    sandbox.advance(sandbox.admin("GET", "/_sandbox/settings")["feature_registration_seconds"] + 1)
    assert arm(sandbox, "GET", FEATURE)[1]["properties"]["state"] == "Registered"
    provider = sandbox.client(ResourceManagementClient).providers.register("Microsoft.Compute")
    assert (provider.namespace, provider.registration_state) == ("Microsoft.Compute", "Registered")
    assert provider_registered_since(
        sandbox.running.sandbox.state, sandbox.subscription_id, "Microsoft.Compute", "EncryptionAtHost"
    )
    vm = env.vm("vm3", env.disk("vm3-os").id, **EAH)
    assert vm.security_profile.encryption_at_host is True
    listed = arm(sandbox, "GET", "providers/Microsoft.Features/providers/Microsoft.Compute/features")[1]["value"]
    assert {"Microsoft.Compute/EncryptionAtHost": "Registered"}.items() <= {
        f["name"]: f["properties"]["state"] for f in listed
    }.items()
    everything = arm(sandbox, "GET", "providers/Microsoft.Features/features")[1]["value"]
    assert "Microsoft.Compute/EncryptionAtHost" in {f["name"] for f in everything}


def test_registering_a_feature_needs_its_permission(sandbox):
    status, body = arm(sandbox, "POST", f"{FEATURE}/register", who="reader")
    assert (status, body["error"]["code"]) == (403, "AuthorizationFailed")
    assert "Microsoft.Features/providers/features/register/action" in body["error"]["message"]
    assert arm(sandbox, "GET", FEATURE, who="reader")[0] == 200


def test_an_unknown_feature_is_not_found(sandbox):
    status, body = arm(sandbox, "GET", "providers/Microsoft.Features/providers/Microsoft.Compute/features/NoSuch")
    assert (status, body["error"]["message"]) == (404, "The feature 'NoSuch' could not be found.")


def enable_encryption_at_host(sandbox, sub=None):
    """What an administrator does once per subscription: register the feature, wait, register the provider again."""
    sub = sub or sandbox.subscription_id
    token = sandbox.credential("admin").get_token("https://management.azure.com/.default").token
    base = f"{sandbox.base_url}/subscriptions/{sub}/providers"
    with httpx.Client(verify=sandbox.ssl, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        client.post(
            f"{base}/Microsoft.Features/providers/Microsoft.Compute/features/EncryptionAtHost/register",
            params={"api-version": API},
        ).raise_for_status()
        sandbox.advance(sandbox.admin("GET", "/_sandbox/settings")["feature_registration_seconds"] + 1)
        client.post(f"{base}/Microsoft.Compute/register", params={"api-version": "2025-04-01"}).raise_for_status()
