"""The ARM core through real clients: tokens, envelope, api-version, RBAC, paging, LROs, headers."""

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

RG_API = "2025-04-01"


def _token(sandbox, name="admin", resource="https://management.azure.com"):
    return sandbox.credential(name).get_token(f"{resource}/.default").token


def _get(sandbox, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{sandbox.base_url}{path}", params=params, headers=headers, verify=sandbox.ssl)


def test_managed_identity_token_names_the_principal(sandbox):
    import jwt

    claims = jwt.decode(_token(sandbox, "admin"), options={"verify_signature": False})
    admin = sandbox.principal("admin")
    assert claims["oid"] == admin.object_id
    assert claims["tid"] == sandbox.tenant_id
    assert claims["upn"] == admin.upn
    bot = jwt.decode(_token(sandbox, "bot"), options={"verify_signature": False})
    assert bot["appid"] == sandbox.principal("bot").client_id
    assert "upn" not in bot


def test_token_endpoint_refuses_a_wrong_identity_header(sandbox):
    r = httpx.get(
        f"{sandbox.base_url}/msi/token",
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
        headers={"X-IDENTITY-HEADER": "wrong"},
        verify=sandbox.ssl,
    )
    assert r.status_code == 400


def test_missing_token_is_401_with_arm_envelope(sandbox):
    r = _get(sandbox, f"/subscriptions/{sandbox.subscription_id}/resourcegroups", **{"api-version": RG_API})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"
    assert "WWW-Authenticate" in r.headers


def test_forged_token_is_401(sandbox):
    r = _get(
        sandbox, f"/subscriptions/{sandbox.subscription_id}/resourcegroups", "e30.e30.sig", **{"api-version": RG_API}
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_api_version_is_required_and_checked(sandbox):
    token = _token(sandbox)
    r = _get(sandbox, f"/subscriptions/{sandbox.subscription_id}/resourcegroups", token)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    r = _get(
        sandbox, f"/subscriptions/{sandbox.subscription_id}/resourcegroups", token, **{"api-version": "1999-01-01"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "NoRegisteredProviderFound")


def test_request_and_ratelimit_headers(sandbox):
    r = _get(
        sandbox, f"/subscriptions/{sandbox.subscription_id}/resourcegroups", _token(sandbox), **{"api-version": RG_API}
    )
    assert r.status_code == 200
    for header in ("x-ms-request-id", "x-ms-correlation-request-id", "x-ms-ratelimit-remaining-subscription-reads"):
        assert header in r.headers


def test_subscriptions_lists_only_what_the_caller_can_see(sandbox):
    r = _get(sandbox, "/subscriptions", _token(sandbox), **{"api-version": "2022-12-01"})
    assert [s["subscriptionId"] for s in r.json()["value"]] == [sandbox.subscription_id]
    r = _get(sandbox, "/subscriptions", _token(sandbox, "intruder"), **{"api-version": "2022-12-01"})
    assert r.json()["value"] == []


def test_resource_groups_create_get_list_page_and_delete(sandbox):
    client = sandbox.client(ResourceManagementClient)
    sandbox.admin("PATCH", "/_sandbox/settings", {"page_size": 2})
    for i in range(5):
        rg = client.resource_groups.create_or_update(f"rg-{i}", {"location": "westeurope", "tags": {"n": str(i)}})
        assert rg.properties.provisioning_state == "Succeeded"
    assert client.resource_groups.get("RG-3").tags == {"n": "3"}  # ids are case-insensitive
    assert sorted(g.name for g in client.resource_groups.list()) == [f"rg-{i}" for i in range(5)]
    paged = [c for c in sandbox.calls() if c["path"].endswith("/resourcegroups") and c["method"] == "GET"]
    assert len(paged) == 3  # 5 groups at 2 per page: nextLink followed twice
    client.resource_groups.begin_delete("rg-0").result()
    with pytest.raises(ResourceNotFoundError) as err:
        client.resource_groups.get("rg-0")
    assert err.value.error.code == "ResourceGroupNotFound"


def test_caller_without_a_role_gets_authorization_failed(sandbox):
    client = sandbox.client(ResourceManagementClient, "intruder")
    with pytest.raises(HttpResponseError) as err:
        client.resource_groups.create_or_update("rg-x", {"location": "westeurope"})
    assert err.value.status_code == 403
    assert err.value.error.code == "AuthorizationFailed"
    assert "Microsoft.Resources/subscriptions/resourceGroups/write" in err.value.error.message


def test_reader_reads_but_cannot_write(sandbox):
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update("rg-r", {"location": "westeurope"})
    reader = sandbox.client(ResourceManagementClient, "reader")
    assert reader.resource_groups.get("rg-r").name == "rg-r"
    with pytest.raises(HttpResponseError) as err:
        reader.resource_groups.create_or_update("rg-r", {"location": "westeurope", "tags": {"a": "b"}})
    assert err.value.error.code == "AuthorizationFailed"


def test_unknown_subscription(sandbox):
    r = _get(
        sandbox,
        "/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups",
        _token(sandbox),
        **{"api-version": RG_API},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "SubscriptionNotFound")


def test_bad_json_body_is_400(sandbox):
    r = httpx.put(
        f"{sandbox.base_url}/subscriptions/{sandbox.subscription_id}/resourcegroups/rg-bad",
        params={"api-version": RG_API},
        content=b"{not json",
        headers={"Authorization": f"Bearer {_token(sandbox)}", "Content-Type": "application/json"},
        verify=sandbox.ssl,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidRequestContent")


def test_wrong_audience_token_is_refused(sandbox):
    token = _token(sandbox, resource="https://vault.azure.net")
    r = _get(sandbox, f"/subscriptions/{sandbox.subscription_id}/resourcegroups", token, **{"api-version": RG_API})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_client_authentication_error_type_for_sdk(sandbox):
    # A credential for a principal the sandbox does not know fails the way azure-identity reports it.
    from azure.identity import ManagedIdentityCredential

    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id="99999999-9999-9999-9999-999999999999").get_token(
            "https://management.azure.com/.default"
        )


def test_legacy_msi_form_answers_with_its_own_expiry_format(sandbox):
    r = httpx.get(
        f"{sandbox.base_url}/msi/token",
        params={"api-version": "2017-09-01", "resource": "https://management.azure.com/", "clientid": ""},
        headers={"secret": sandbox.running.sandbox.identity_header},
        verify=sandbox.ssl,
    )
    assert r.status_code == 200
    body = r.json()
    import re

    import jwt

    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d \+00:00", body["expires_on"])
    assert (
        jwt.decode(body["access_token"], options={"verify_signature": False})["oid"]
        == sandbox.principal("bot").object_id
    )
    wrong = httpx.get(
        f"{sandbox.base_url}/msi/token",
        params={"api-version": "2017-09-01", "resource": "https://management.azure.com/"},
        headers={"secret": "nope"},
        verify=sandbox.ssl,
    )
    assert wrong.status_code == 400


def test_principal_selection_by_object_id_and_mi_res_id(sandbox):
    import jwt

    admin, bot = sandbox.principal("admin"), sandbox.principal("bot")
    headers = {"X-IDENTITY-HEADER": sandbox.running.sandbox.identity_header}
    for selector, expected in (({"object_id": admin.object_id}, admin), ({"mi_res_id": bot.mi_resource_id}, bot)):
        params = {"api-version": "2019-08-01", "resource": "https://management.azure.com", **selector}
        r = httpx.get(f"{sandbox.base_url}/msi/token", params=params, headers=headers, verify=sandbox.ssl)
        assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["oid"] == expected.object_id


# ARM's answers for routes no provider serves (sources beside sandbox/arm.py's lookup): never a 500.
def test_an_unknown_namespace_is_invalid_resource_namespace(sandbox):
    sub = sandbox.subscription_id
    for path in (
        f"/subscriptions/{sub}/providers/Microsoft.Nope/things",
        f"/subscriptions/{sub}/resourceGroups/x/providers/Microsoft.Nope/things/t",
    ):
        r = _get(sandbox, path, _token(sandbox), **{"api-version": RG_API})
        assert (r.status_code, r.json()["error"]) == (
            400,
            {"code": "InvalidResourceNamespace", "message": "The resource namespace 'Microsoft.Nope' is invalid."},
        )


def test_an_unknown_type_of_a_served_namespace_is_invalid_resource_type_404(sandbox):
    path = f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Compute/nopes"
    r = _get(sandbox, path, _token(sandbox), **{"api-version": "2024-03-02"})
    assert r.status_code == 404
    assert r.json()["error"] == {
        "code": "InvalidResourceType",
        "message": "The resource type 'nopes' could not be found in the namespace 'Microsoft.Compute' for api version "
        "'2024-03-02'.",
    }


@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("POST", ""),  # a POST on the subscription itself: no action
        ("POST", "/resourceGroups"),
        ("POST", "/providers/Microsoft.Compute/disks"),
        ("GET", "/providers/Microsoft.Compute/providers/Microsoft.Authorization/locks"),
        ("DELETE", "/providers/x/providers/y/z"),
        ("PUT", "/providers/Microsoft.Nope/things/t/providers/Microsoft.Authorization/locks/l"),
    ],
)
def test_malformed_routes_get_an_arm_error_never_a_500(sandbox, method, tail):
    r = httpx.request(
        method,
        f"{sandbox.base_url}/subscriptions/{sandbox.subscription_id}{tail}",
        params={"api-version": RG_API},
        headers={"Authorization": f"Bearer {_token(sandbox)}"},
        json={},
        verify=sandbox.ssl,
    )
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) >= {"code", "message"}


def test_an_answer_s_copy_of_a_stored_body_is_deepcopy_s_and_shares_nothing_with_it():
    import copy
    from datetime import UTC, datetime

    from sandbox.arm import copy_body

    stored = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
        "properties": {"accessPolicies": [{"permissions": {"keys": ["get"]}}], "sku": {"n": 1, "f": 0.5, "b": None}},
        "tags": {},
        "other": (1, [2]),
        "when": datetime(2026, 1, 1, tzinfo=UTC),
    }
    copied = copy_body(stored)
    assert copied == copy.deepcopy(stored)
    copied["properties"]["accessPolicies"][0]["permissions"]["keys"].append("list")
    copied["tags"]["x"] = "y"
    copied["other"][1].append(3)
    assert stored["properties"]["accessPolicies"][0]["permissions"]["keys"] == ["get"]
    assert stored["tags"] == {} and stored["other"] == (1, [2])
