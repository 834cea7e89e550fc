"""Microsoft.Security/pricings in the sandbox: every subscription has every Defender plan, Free until a PUT turns it
to Standard, with the shapes of azure-rest-api-specs Microsoft.Security stable/2024-01-01 (ListPricings_example.json,
PutPricingByName_example.json)."""

import httpx

API = "2024-01-01"
PLAN = "providers/Microsoft.Security/pricings/KeyVaults"


def arm(sandbox, method, path, body=None, who="admin"):
    token = sandbox.credential(who).get_token("https://management.azure.com/.default").token
    url = f"{sandbox.base_url}/subscriptions/{sandbox.subscription_id}/{path}"
    with httpx.Client(verify=sandbox.ssl, timeout=30) as client:
        r = client.request(
            method, url, params={"api-version": API}, json=body, headers={"Authorization": f"Bearer {token}"}
        )
    return r.status_code, r.json() if r.content else None


def test_a_plan_never_set_is_free_and_listed_with_the_others(sandbox):
    sandbox.reset("empty")
    status, plan = arm(sandbox, "GET", PLAN)
    assert status == 200
    assert plan["id"] == f"/subscriptions/{sandbox.subscription_id}/{PLAN}"
    assert (plan["name"], plan["type"], plan["properties"]["pricingTier"]) == (
        "KeyVaults",
        "Microsoft.Security/pricings",
        "Free",
    )
    status, listed = arm(sandbox, "GET", "providers/Microsoft.Security/pricings")
    assert status == 200
    names = [p["name"] for p in listed["value"]]
    assert "KeyVaults" in names and "VirtualMachines" in names and len(names) == len(set(names))


def test_a_put_turns_the_plan_on_and_a_bad_tier_is_refused(sandbox):
    sandbox.reset("empty")
    status, plan = arm(sandbox, "PUT", PLAN, {"properties": {"pricingTier": "Standard"}})
    assert status in (200, 201)
    assert plan["properties"]["pricingTier"] == "Standard" and plan["properties"]["enablementTime"]
    assert arm(sandbox, "GET", PLAN)[1]["properties"]["pricingTier"] == "Standard"
    status, err = arm(sandbox, "PUT", PLAN, {"properties": {"pricingTier": "Gold"}})
    assert status == 400 and "Gold" in err["error"]["message"]


def test_the_reader_may_read_but_not_change_the_plan(sandbox):
    sandbox.reset("empty")
    assert arm(sandbox, "GET", PLAN, who="reader")[0] == 200
    status, err = arm(sandbox, "PUT", PLAN, {"properties": {"pricingTier": "Standard"}}, who="reader")
    assert status == 403 and err["error"]["code"] == "AuthorizationFailed"
