"""The sandbox's Resource Graph `authorizationresources`: role assignments at, above and below the query's
subscriptions as `authorizationScopeFilter` says (resourcegraph.json 2022-10-01), only those the caller may read, and
the management groups over each subscription in `resourcecontainers` (`managementGroupAncestorsChain`)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox import scenarios
from sandbox.providers import management_groups as mg
from sandbox.rbac import ROLES

ROLE_ROWS = (
    "authorizationresources | where type =~ 'microsoft.authorization/roleassignments' "
    "| project id, type, subscriptionId, properties | order by id asc"
)


def _post(sandbox: Any, body: dict[str, Any], version: str = "2022-10-01", who: str = "admin") -> httpx.Response:
    token = sandbox.credential(who).get_token("https://management.azure.com/.default").token
    return httpx.post(
        f"{sandbox.base_url}/providers/Microsoft.ResourceGraph/resources",
        params={"api-version": version},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=sandbox.ssl,
    )


def _scopes(sandbox: Any, subs: list[str], scope_filter: str | None, **kw: Any) -> set[str]:
    options = {"authorizationScopeFilter": scope_filter} if scope_filter else {}
    r = _post(sandbox, {"subscriptions": subs, "query": ROLE_ROWS, "options": options}, **kw)
    assert r.status_code == 200, r.text
    return {row["properties"]["scope"].lower() for row in r.json()["data"]}


@pytest.fixture
def tree(sandbox: Any) -> Any:
    """root -> corp -> landing -> the subscription; `lab` beside corp; roles at each level and below."""
    sandbox.reset()
    sb = sandbox.running.sandbox
    mg.add_group(sb.state, "corp", "Corp")
    mg.add_group(sb.state, "landing", "Landing zones", parent="corp")
    mg.add_group(sb.state, "lab", "Lab")
    mg.place(sb.state, sandbox.subscription_id, "landing")
    bot = sb.directory.named("bot")
    sub = f"/subscriptions/{sandbox.subscription_id}"
    for scope in (mg.group_id("corp"), mg.group_id("landing"), mg.group_id("lab"), "/", sub):
        scenarios.assign(sb, scope, bot, ROLES["Reader"])
    scenarios.assign(sb, f"{sub}/resourceGroups/rg-x", bot, ROLES["Reader"])
    scenarios.assign(sb, mg.group_id("corp"), sb.directory.named("admin"), ROLES["Reader"])  # reads corp and below
    return sb


def test_the_scope_filter_chooses_assignments_at_above_and_below(sandbox: Any, tree: Any) -> None:
    sub = f"/subscriptions/{sandbox.subscription_id}".lower()
    group, above = f"{sub}/resourcegroups/rg-x", {mg.group_id("corp").lower(), mg.group_id("landing").lower()}
    subs = [sandbox.subscription_id]
    assert {sub, group} <= _scopes(sandbox, subs, None)  # AtScopeAndBelow, the default
    assert not above & _scopes(sandbox, subs, None)
    assert _scopes(sandbox, subs, "AtScopeAboveAndBelow") >= above | {sub, group}
    assert mg.group_id("lab").lower() not in _scopes(sandbox, subs, "AtScopeAboveAndBelow")  # not above it
    assert "/" not in _scopes(sandbox, subs, "AtScopeAboveAndBelow")  # above, but admin may not read there
    assert group not in _scopes(sandbox, subs, "AtScopeAndAbove") >= above | {sub}
    assert sub in _scopes(sandbox, subs, "AtScopeExact") and not above & _scopes(sandbox, subs, "AtScopeExact")
    # Before 2022-10-01 the option does not exist: below only (unverified)
    assert not above & _scopes(sandbox, subs, "AtScopeAboveAndBelow", version="2021-03-01")
    r = _post(sandbox, {"subscriptions": subs, "query": ROLE_ROWS, "options": {"authorizationScopeFilter": "Up"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"


def test_rows_have_arms_shape_and_only_what_the_caller_may_read(sandbox: Any, tree: Any) -> None:
    r = _post(sandbox, {"subscriptions": [sandbox.subscription_id], "query": ROLE_ROWS})
    (row,) = [x for x in r.json()["data"] if x["properties"]["scope"] == f"/subscriptions/{sandbox.subscription_id}"
              and x["properties"]["principalId"] == tree.directory.named("bot").object_id]  # fmt: skip
    assert row["type"] == "microsoft.authorization/roleassignments"  # lower-cased, as every Resource Graph type
    assert row["id"].startswith(f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/")
    assert row["subscriptionId"] == sandbox.subscription_id
    assert {"roleDefinitionId", "principalId", "principalType", "scope", "createdOn"} <= set(row["properties"])
    group_rows = _post(
        sandbox,
        {"subscriptions": [sandbox.subscription_id], "query": ROLE_ROWS,
         "options": {"authorizationScopeFilter": "AtScopeAboveAndBelow"}},
    ).json()["data"]  # fmt: skip
    corp = [x for x in group_rows if x["properties"]["scope"].lower() == mg.group_id("corp").lower()]
    assert corp and corp[0]["subscriptionId"] == ""  # what Learn's queries leave out with `id startswith "/subs"`
    assert not [x for x in group_rows if x["properties"]["scope"] == "/"]  # admin may not read at the root
    # A principal with no role anywhere reads no assignment at all
    refused = _post(sandbox, {"subscriptions": [sandbox.subscription_id], "query": ROLE_ROWS}, who="intruder")
    assert refused.status_code == 200 and refused.json()["data"] == []


def test_subscription_rows_carry_their_management_groups_nearest_first(sandbox: Any, tree: Any) -> None:
    query = "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' | project properties"
    (row,) = _post(sandbox, {"subscriptions": [sandbox.subscription_id], "query": query}).json()["data"]
    chain = row["properties"]["managementGroupAncestorsChain"]
    assert [g["name"] for g in chain] == ["landing", "corp", sandbox.tenant_id]
    assert chain[0]["displayName"] == "Landing zones"
