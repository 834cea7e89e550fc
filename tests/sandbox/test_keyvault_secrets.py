"""Management-plane secrets (Microsoft.KeyVault/vaults/secrets) through the real KeyVaultManagementClient: a secret's
properties and expiry are answered, its value never (azure-rest-api-specs keyvault SecretProperties.value "will never
be returned from the service")."""

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

RG = "rg-secrets"


@pytest.fixture
def kv(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    client = sandbox.client(KeyVaultManagementClient)
    body = {
        "location": "westeurope",
        "properties": {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}},
    }
    client.vaults.begin_create_or_update(RG, "kv-secrets", body).result()
    return client


def test_a_secret_is_answered_with_its_expiry_and_never_its_value(sandbox, kv):
    made = kv.secrets.create_or_update(
        RG, "kv-secrets", "db-password", {"properties": {"value": "hunter2", "attributes": {"exp": 1900000000}}}
    )
    listed = list(kv.secrets.list(RG, "kv-secrets"))
    got = kv.secrets.get(RG, "kv-secrets", "db-password")
    for secret in (made, got, *listed):
        assert secret.properties.value is None
        assert int(secret.properties.attributes.expires.timestamp()) == 1900000000
        assert secret.properties.secret_uri.endswith("/secrets/db-password")
    assert [s.name for s in listed] == ["db-password"]
    assert "hunter2" not in str(sandbox.calls()[-3:])


def test_a_secret_of_a_vault_that_does_not_exist_is_a_404(sandbox, kv):
    with pytest.raises(HttpResponseError) as err:
        list(kv.secrets.list(RG, "kv-nowhere"))
    assert err.value.status_code == 404
