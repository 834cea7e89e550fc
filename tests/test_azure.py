"""The Azure access module: the cloud profile from the environment, lazy SDK imports, generic ARM and Key Vault
requests against the sandbox through the real pipeline (auth, LRO polling, errors)."""

import subprocess
import sys

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.mgmt.authorization import AuthorizationManagementClient

from remediations.azure import PUBLIC_ARM, Azure, CloudProfile
from remediations.errors import AzureAccessError, CredentialError, SettingsError

KV_API, DISK_API = "2026-05-15", "2026-03-02"
OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"  # Key Vault Crypto Officer


def test_public_azure_by_default():
    profile = CloudProfile.from_env({"REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca.pem"})
    assert profile.arm_endpoint == PUBLIC_ARM and profile.is_public
    assert profile.ca_bundle is None  # public Azure: the system's trust store, not whatever bundle is lying around
    assert profile.verify_challenge_resource is True
    assert profile.polling_interval == 30.0
    assert profile.credential_scopes == ("https://management.azure.com/.default",)


def test_a_loopback_endpoint_is_the_sandbox():
    env = {"AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:8443", "REQUESTS_CA_BUNDLE": "/tmp/ca.pem"}
    profile = CloudProfile.from_env(env)
    assert profile.arm_endpoint == "https://127.0.0.1:8443/" and profile.is_loopback
    assert (profile.ca_bundle, profile.verify_challenge_resource, profile.polling_interval) == ("/tmp/ca.pem", False, 0)


def test_another_cloud_keeps_challenge_verification_and_a_real_pause():
    env = {
        "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://management.usgovcloudapi.net/",
        "CRYPTWARD_ARM_SCOPE": "https://management.usgovcloudapi.net/.default",
        "CRYPTWARD_POLLING_INTERVAL": "5",
    }
    profile = CloudProfile.from_env(env)
    assert profile.verify_challenge_resource and not profile.is_public
    assert profile.polling_interval == 5.0
    assert profile.credential_scopes == ("https://management.usgovcloudapi.net/.default",)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AZURE_RESOURCE_MANAGER_ENDPOINT": "http://127.0.0.1:8443"}, "https"),
        ({"CRYPTWARD_POLLING_INTERVAL": "soon"}, "number of seconds"),
    ],
)
def test_bad_settings_say_what_is_expected(env, message):
    with pytest.raises(SettingsError, match=message):
        CloudProfile.from_env(env)


def test_read_and_write_settings_are_read_by_the_cli_and_the_function_apps_runtime():
    from remediations.azure import Azure
    from remediations.runtime import Runtime
    from remediations.settings import Settings

    env = {
        "CRYPTWARD_WRITE_CONCURRENCY": "3",
        "CRYPTWARD_READ_CONCURRENCY": "5",
        "CRYPTWARD_INVENTORY": "ResourceGraph",
        "CRYPTWARD_INVENTORY_THRESHOLD": "40",
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    }
    want = (3, 5, "resourcegraph", 40)
    cli = Azure.from_env(env)
    assert (cli.write_workers, cli.workers, cli.inventory, cli.inventory_threshold) == want
    runtime = Runtime(Settings.from_env(env))
    app = runtime.azure
    assert (app.write_workers, app.workers, app.inventory, app.inventory_threshold) == want
    runtime.close()
    with pytest.raises(SettingsError, match="CRYPTWARD_INVENTORY must be one of"):
        Settings.from_env({**env, "CRYPTWARD_INVENTORY": "graph"})
    assert Azure.from_env({}).write_workers == 8
    with pytest.raises(SettingsError, match="whole number of at least 1"):
        Azure.from_env({"CRYPTWARD_WRITE_CONCURRENCY": "0"})


def test_importing_the_module_loads_no_sdk():
    code = (
        "import sys, remediations.azure, remediations.engine.run, remediations.cli.main; "
        "print([m for m in sys.modules if m.startswith(('azure.mgmt', 'azure.keyvault', 'azure.identity', "
        "'azure.core'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_generic_arm_get_list_and_long_running_write(sandbox, azure_as):
    sandbox.reset("estate")
    azure = azure_as("admin")
    sub = f"/subscriptions/{sandbox.subscription_id}"
    vaults = list(azure.list(f"{sub}/providers/Microsoft.KeyVault/vaults", KV_API))
    assert {v["name"] for v in vaults} == {"kv-weu-app", "kv-neu-legacy", "kv-weu-disks"}
    disk = f"{sub}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/disks/disk-weu-data"
    since = len(sandbox.calls())
    body = azure.write("PATCH", disk, DISK_API, {"tags": {"team": "storage"}})
    assert body["tags"] == {"team": "storage"}  # the LRO's final body
    calls = sandbox.calls(since)
    assert calls[0]["method"] == "PATCH" and calls[0]["status"] == 202
    assert [c["method"] for c in calls[1:]] == ["GET"] * (len(calls) - 1)  # polled, then the final GET
    assert azure.calls["PATCH"] == 1


def test_paging_follows_next_links(sandbox, azure_as):
    sandbox.reset("estate")
    sandbox.admin("PATCH", "/_sandbox/settings", {"page_size": 1})
    azure = azure_as("admin")
    vaults = list(azure.list(f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.KeyVault/vaults", KV_API))
    assert len(vaults) == 3


def test_listed_bodies_share_their_short_strings(sandbox, azure_as):
    sandbox.reset("estate")
    sandbox.admin("PATCH", "/_sandbox/settings", {"page_size": 1})  # each body from its own page: its own decoding
    azure = azure_as("admin")
    a, b, *_ = azure.list(f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.KeyVault/vaults", KV_API)
    assert a["type"] == b["type"] and a["properties"]["tenantId"] == b["properties"]["tenantId"]
    assert a["type"] is b["type"]  # one string, not one per body (json makes a new one for each)
    assert a["properties"]["tenantId"] is b["properties"]["tenantId"]


def test_azure_errors_carry_the_arm_code(sandbox, azure_as):
    sandbox.reset("estate")
    azure = azure_as("intruder")
    with pytest.raises(AzureAccessError) as e:
        azure.get(f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.KeyVault/vaults", KV_API)
    assert (e.value.status, e.value.code) == (403, "AuthorizationFailed")


def test_no_credential_is_a_credential_error(sandbox):
    class NoCredential:
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

        def get_token_info(self, *scopes, **kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    azure = Azure(CloudProfile.from_env(), credential_factory=NoCredential)
    with pytest.raises(CredentialError, match="failed to retrieve a token"):
        azure.get(f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.KeyVault/vaults", KV_API)


def test_writes_never_delete(sandbox, azure_as):
    with pytest.raises(ValueError, match="never sends DELETE"):
        azure_as("admin").write("DELETE", f"/subscriptions/{sandbox.subscription_id}/resourceGroups/x", "2025-04-01")


def test_key_vault_data_plane_through_the_vaults_own_origin(sandbox, azure_as):
    sandbox.reset("estate")
    admin = sandbox.client(AuthorizationManagementClient, "admin")
    vault = (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-keys-weu/providers/Microsoft.KeyVault/vaults/"
        "kv-weu-disks"
    )
    bot = sandbox.principal("bot")
    with sandbox.roles_at_once():  # set-up: the role is in effect before the bot uses it
        admin.role_assignments.create(
            vault,
            "3f3a4c9e-0d6b-4b1e-9a51-5c2f0b7d8e11",
            {
                "properties": {
                    "roleDefinitionId": f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{OFFICER}",
                    "principalId": bot.object_id,
                    "principalType": "ServicePrincipal",
                }
            },
        )
    azure = azure_as("bot")
    uri = azure_as("admin").get(vault, KV_API)["properties"]["vaultUri"]
    policy = {
        "lifetimeActions": [{"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}}],
        "attributes": {"expiryTime": "P1Y"},
    }
    azure.keyvault_request("PUT", f"{uri}keys/des-key/rotationpolicy", "2025-07-01", policy)
    got = azure.keyvault_request("GET", f"{uri}keys/des-key/rotationpolicy", "2025-07-01")
    assert got["attributes"]["expiryTime"] == "P1Y"
    with pytest.raises(AzureAccessError) as e:
        azure_as("reader").keyvault_request("GET", f"{uri}keys/des-key/rotationpolicy", "2025-07-01")
    assert e.value.status == 403


def _disk(sandbox):
    return (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/disks/"
        "disk-weu-data"
    )


def test_a_write_is_done_when_the_status_says_so_and_the_resource_says_succeeded(sandbox, azure_as):
    # DiskRP answers 202 with Location = the disk itself (Disk_Update_ChangeTier.json); a 200 of that reading
    # `provisioningState: Updating` does not end the write: the status URL decides (ARMPolling's order), then the
    # resource is read again.
    sandbox.reset("estate")
    sandbox.admin("PATCH", "/_sandbox/settings", {"lro_in_progress_polls": 2})
    azure = azure_as("admin")
    since = len(sandbox.calls())
    body = azure.write("PATCH", _disk(sandbox), DISK_API, {"tags": {"team": "storage"}})
    assert body["properties"]["provisioningState"] == "Succeeded" and body["tags"] == {"team": "storage"}
    polls = [c["path"] for c in sandbox.calls(since) if c["plane"] == "arm"][1:]
    assert polls[0].lower() == _disk(sandbox).lower()  # the resource, still Updating
    assert "/operations/" in polls[1]  # then the status URL, as azure-mgmt-core's ARMPolling does
    assert polls[-1].lower() == _disk(sandbox).lower()  # then the resource


def test_a_write_whose_resource_already_says_succeeded_costs_one_get(sandbox, azure_as):
    # Issue 21: DiskRP's Location names the resource (DiskEncryptionSet_Update.json): one GET of it that says
    # Succeeded ends the write, without the status poll and the final GET ARMPolling makes after it.
    sandbox.reset("estate")
    sandbox.admin("PATCH", "/_sandbox/settings", {"lro_in_progress_polls": 0})
    since = len(sandbox.calls())
    body = azure_as("admin").write("PATCH", _disk(sandbox), DISK_API, {"tags": {"team": "storage"}})
    assert body["properties"]["provisioningState"] == "Succeeded" and body["tags"] == {"team": "storage"}
    calls = [(c["method"], c["path"].lower()) for c in sandbox.calls(since) if c["plane"] == "arm"]
    assert calls == [("PATCH", _disk(sandbox).lower()), ("GET", _disk(sandbox).lower())]


def test_a_failed_operation_whose_resource_was_left_as_it_was_raises_its_code(sandbox, azure_as):
    # The sandbox's lroFailed: the operation ends Failed and the change is undone, so the resource reads Succeeded
    # without what was sent; the write does not end there: the status URL gives the failure, with its code.
    sandbox.reset("estate")
    rule = {"kind": "lroFailed", "method": "PATCH", "path": "/disks/", "code": "DiskUpdateFailed", "count": 1}
    sandbox.admin("POST", "/_sandbox/faults", {"seed": 0, "rules": [rule]})
    with pytest.raises(AzureAccessError) as e:
        azure_as("admin").write("PATCH", _disk(sandbox), DISK_API, {"tags": {"team": "storage"}})
    assert e.value.code == "DiskUpdateFailed"


def test_a_patch_throttled_once_is_sent_again_after_retry_after(sandbox, azure_as):
    sandbox.reset("estate")
    rule = {"kind": "429", "method": "PATCH", "count": 1, "retryAfter": 0}
    sandbox.admin("POST", "/_sandbox/faults", {"seed": 0, "rules": [rule]})
    since = len(sandbox.calls())
    body = azure_as("admin").write("PATCH", _disk(sandbox), DISK_API, {"tags": {"team": "storage"}})
    assert body["tags"] == {"team": "storage"}
    assert [(c["method"], c["status"]) for c in sandbox.calls(since) if c["method"] == "PATCH"] == [
        ("PATCH", 429),
        ("PATCH", 202),
    ]


def test_a_throttled_write_waits_within_a_budget(sandbox, azure_as):
    # A Retry-After longer than the budget (60 s for one request) is not slept: the 429 comes back at once, and the
    # queue tries the work item again later. azure-core alone would sleep it, ten times over.
    sandbox.reset("estate")
    rule = {"kind": "429", "method": "PATCH", "count": 1, "retryAfter": 3600}
    sandbox.admin("POST", "/_sandbox/faults", {"seed": 0, "rules": [rule]})
    with pytest.raises(AzureAccessError) as e:
        azure_as("admin").write("PATCH", _disk(sandbox), DISK_API, {"tags": {"team": "storage"}})
    assert (e.value.status, e.value.code) == (429, "SubscriptionRequestsThrottled")


def test_a_throttled_post_without_retry_after_is_sent_again():
    # azure-core 1.41 retries POST and PATCH without Retry-After only on 500, 503 and 504 (RetryPolicyBase.
    # _is_method_retryable); a 429 means "not processed", so the bot's policy sends it again after a backoff.
    from azure.core.pipeline import PipelineRequest, PipelineResponse
    from azure.core.pipeline.transport import HttpRequest

    from remediations.azure import write_retries

    class Answer:
        def __init__(self, status):
            self.status_code, self.headers = status, {}

    policy = write_retries()
    settings = policy.configure_retries({})
    request = PipelineRequest(HttpRequest("POST", "https://vault/keys/k/rotate"), None)
    throttled = PipelineResponse(request.http_request, Answer(429), None)
    assert policy.is_retry(settings, throttled)
    assert not write_retries(total=0).is_retry(settings | {"total": 0}, throttled)
    assert not policy.is_retry(settings, PipelineResponse(request.http_request, Answer(400), None))


def test_a_write_over_the_subscriptions_write_bucket_waits_for_a_token(sandbox, azure_as):
    # ARM's write bucket (sandbox/throttling.py; Learn, "Understand how Azure Resource Manager throttles requests"):
    # one token, the next one 5 s later (however slow the machine, the second PATCH comes sooner): it gets 429 with
    # Retry-After (the wait for that token) and goes through after it.
    sandbox.reset("estate")
    sandbox.admin("PATCH", "/_sandbox/settings", {"write_budget": 1, "write_refill": 0.2})
    azure, since = azure_as("admin"), len(sandbox.calls())
    for team in ("a", "b"):
        assert azure.write("PATCH", _disk(sandbox), DISK_API, {"tags": {"team": team}})["tags"] == {"team": team}
    patches = [(c["status"], c["throttled"]) for c in sandbox.calls(since) if c["method"] == "PATCH"]
    assert (429, True) in patches and patches[-1] == (202, False)


def test_a_patch_whose_connection_was_reset_is_sent_again(sandbox, azure_as):
    # azure-core alone does not retry a PATCH after a connection error (not in its idempotent methods); the bot's
    # PATCHes are desired-state merges, safe to send again.
    sandbox.reset("estate")
    sandbox.admin("POST", "/_sandbox/faults", {"seed": 0, "rules": [{"kind": "reset", "method": "PATCH", "count": 1}]})
    since = len(sandbox.calls())
    body = azure_as("admin").write("PATCH", _disk(sandbox), DISK_API, {"tags": {"team": "storage"}})
    assert body["tags"] == {"team": "storage"}
    patches = [(c["status"], c["fault"]) for c in sandbox.calls(since) if c["method"] == "PATCH"]
    assert patches == [(None, "reset"), (202, None)]
