"""Microsoft.Authorization/policyExemptions and minimal policyAssignments in the sandbox, with the shapes and list
semantics of azure-rest-api-specs Microsoft.Authorization/policy 2022-07-01-preview (sandbox/providers/policy.py)."""

import httpx

EX_API, AS_API = "2022-07-01-preview", "2023-04-01"
DEF = "/providers/Microsoft.Authorization/policyDefinitions/0b60c0b2-2dc2-4e1c-b5c9-abbed971de53"


def arm(sandbox, method, path, api, body=None, who="admin", params=None):
    token = sandbox.credential(who).get_token("https://management.azure.com/.default").token
    with httpx.Client(verify=sandbox.ssl, timeout=30) as client:
        r = client.request(
            method,
            f"{sandbox.base_url}{path}",
            params={"api-version": api, **(params or {})},
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    return r.status_code, r.json() if r.content else None


def setup(sandbox):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    group = f"{sub}/resourceGroups/rg-x"
    assert arm(sandbox, "PUT", group, "2025-04-01", {"location": "westeurope"})[0] in (200, 201)
    assignment = f"{sub}/providers/Microsoft.Authorization/policyAssignments/kv-deletion"
    status, body = arm(sandbox, "PUT", assignment, AS_API, {"properties": {"policyDefinitionId": DEF}})
    assert status == 201 and body["properties"]["scope"] == sub
    return sub, group, assignment


def exemption(assignment, **extra):
    return {"properties": {"policyAssignmentId": assignment, "exemptionCategory": "Waiver", **extra}}


def test_an_exemption_is_created_read_and_listed_as_the_spec_says(sandbox):
    sandbox.reset("empty")
    sub, group, assignment = setup(sandbox)
    path = f"{group}/providers/Microsoft.Authorization/policyExemptions/demo"
    status, body = arm(sandbox, "PUT", path, EX_API, exemption(assignment, expiresOn="2099-01-01T00:00:00Z"))
    assert status == 201
    assert (body["id"], body["name"], body["type"]) == (path, "demo", "Microsoft.Authorization/policyExemptions")
    assert body["properties"]["exemptionCategory"] == "Waiver" and body["systemData"]["createdBy"]
    assert arm(sandbox, "PUT", path, EX_API, exemption(assignment))[0] == 200
    listed = lambda scope, f=None: [  # noqa: E731
        e["name"]
        for e in arm(
            sandbox, "GET", f"{scope}/providers/Microsoft.Authorization/policyExemptions", EX_API,
            params={"$filter": f} if f else None,
        )[1]["value"]
    ]  # fmt: skip
    assert listed(sub) == ["demo"]  # unfiltered: below the subscription too
    assert listed(sub, "atScope()") == []  # at or above the subscription only
    assert listed(group, "atScope()") == ["demo"]
    assert arm(sandbox, "GET", f"{sub}/providers/Microsoft.Authorization/policyExemptions", EX_API,
               params={"$filter": "nonsense()"})[0] == 400  # fmt: skip


def test_an_exemption_needs_a_known_category_and_an_existing_assignment(sandbox):
    sandbox.reset("empty")
    _sub, group, assignment = setup(sandbox)
    path = f"{group}/providers/Microsoft.Authorization/policyExemptions/bad"
    body = exemption(assignment)
    body["properties"]["exemptionCategory"] = "Forever"
    assert arm(sandbox, "PUT", path, EX_API, body)[0] == 400
    assert arm(sandbox, "PUT", path, EX_API, exemption(f"{assignment}-gone"))[0] == 404


def test_a_reader_cannot_exempt(sandbox):
    sandbox.reset("empty")
    _sub, group, assignment = setup(sandbox)
    path = f"{group}/providers/Microsoft.Authorization/policyExemptions/mine"
    status, err = arm(sandbox, "PUT", path, EX_API, exemption(assignment), who="reader")
    assert status == 403 and err["error"]["code"] == "AuthorizationFailed"
