"""Role assignments through Resource Graph (remediations/engine/rgroles.py) against the sandbox, through the real
SDK clients: the same key-access blocks as ARM's per-subscription lists with no such list, inherited assignments
of management groups where they hold, and Resource Graph's lag never causing a grant: a set that seems to lack its
key role is read again through ARM at its key before anything is planned."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from remediations.engine import rgroles
from remediations.engine.reader import Needs, Scope, read_scope
from remediations.engine.run import scan
from remediations.policy.loader import load_policies
from sandbox import scenarios
from sandbox.providers import management_groups as mg
from sandbox.rbac import ROLES
from sandbox.scenarios import KV_API

POLICIES = [p for p in load_policies(Path(__file__).resolve().parents[2] / "policies") if p.id == "des-key-access"]
NEEDS = Needs.of(POLICIES)
CSEU = ROLES["Key Vault Crypto Service Encryption User"]


@pytest.fixture
def subs(sandbox: Any, azure_as: Any) -> tuple[str, ...]:
    """A bulk estate whose disk encryption sets' keys exist (bulk copies have none): ARM can list at each key."""
    sandbox.reset()
    made = sandbox.admin("POST", "/_sandbox/estate", {"subscriptions": 3, "perSubscription": 40})
    azure = bot(azure_as, "arm")
    for body in read_scope(azure, Scope(tuple(made["subscriptions"])), NEEDS).resources.values():
        if "keyAccess" in body.get("cryptward", {}):
            azure.write("PUT", body["cryptward"]["keyAccess"]["keyScope"], KV_API, {"properties": {"kty": "RSA"}})
    return tuple(made["subscriptions"])


def bot(azure_as: Any, mode: str) -> Any:
    azure = azure_as("admin")
    azure.inventory = mode
    return azure


def role_calls(sandbox: Any, since: int) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls(since) if "/roleassignments" in c["path"].lower()]


def template(reading: Any) -> dict[str, Any]:
    """The first subscription's first disk encryption set (on the key of a vault of its own resource group)."""
    return sorted((rid, b) for rid, b in reading.resources.items() if rid.lower().endswith("/desbulk00000"))[0][1]


def grant(sandbox: Any, scope: str, principal: str) -> None:
    auth = sandbox.client(AuthorizationManagementClient)
    body = RoleAssignmentCreateParameters(
        role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{CSEU}",
        principal_id=principal,
        principal_type="ServicePrincipal",
    )
    auth.role_assignments.create(scope, str(uuid.uuid4()), body)


def test_key_access_as_arm_lists_it_without_a_list_per_subscription(
    sandbox: Any, azure_as: Any, subs: tuple[str, ...]
) -> None:
    sb = sandbox.running.sandbox
    mg.add_group(sb.state, "corp", "Corp")
    for sub in subs:
        mg.place(sb.state, sub, "corp")
    arm = read_scope(bot(azure_as, "arm"), Scope(subs), NEEDS)
    principal = template(arm)["cryptward"]["keyAccess"]["principals"][0]  # every bulk set's identity
    # The sets' role held at the management group over their subscriptions: inherited, as ARM's list answers it
    scenarios.assign(sb, mg.group_id("corp"), sb.directory.by_object_id(principal), CSEU)
    scenarios.assign(sb, "/", sb.directory.named("admin"), ROLES["Reader"])  # the bot may read the groups' roles
    arm = read_scope(bot(azure_as, "arm"), Scope(subs), NEEDS)
    since = len(sandbox.calls())
    steps: list[str] = []
    graph = read_scope(bot(azure_as, "resourcegraph"), Scope(subs), NEEDS, progress=steps.append)
    sets = [rid for rid, b in arm.resources.items() if "/diskencryptionsets/" in rid.lower()]
    assert len(sets) == 12 and set(sets) <= set(graph.resources)
    for rid in sets:
        assert graph.resources[rid]["cryptward"]["keyAccess"]["missing"] == []  # the group's role holds there
        for block in ("keyAccess", "keyVaultRoleAssignments"):
            assert graph.resources[rid]["cryptward"][block] == arm.resources[rid]["cryptward"][block], (rid, block)
    assert role_calls(sandbox, since) == []  # no ARM list: nothing lacks its role, nothing is decided on them
    assert any(s.startswith("Resource Graph: role assignments in 3") for s in steps)


def test_what_seems_to_lack_its_role_is_read_again_through_arm(
    sandbox: Any, azure_as: Any, subs: tuple[str, ...]
) -> None:
    arm = read_scope(bot(azure_as, "arm"), Scope(subs), NEEDS)
    since = len(sandbox.calls())
    graph = read_scope(bot(azure_as, "resourcegraph"), Scope(subs), NEEDS)
    calls = role_calls(sandbox, since)
    for rid, body in arm.resources.items():
        assert graph.resources[rid].get("cryptward", {}).get("keyAccess") == body.get("cryptward", {}).get("keyAccess")
    # Four sets lacking their role in each subscription: the first key's `atScope()` list, then the subscription's
    per_sub = {s: [c for c in calls if c["path"].lower().startswith(f"/subscriptions/{s}")] for s in subs}
    for sub, made in per_sub.items():
        assert len(made) == 2, made
        assert "atScope" in made[0]["query"] and "/keys/" in made[0]["path"]
        assert made[1]["path"].lower() == f"/subscriptions/{sub}/providers/microsoft.authorization/roleassignments"


def test_resource_graph_lag_cannot_cause_a_redundant_grant(sandbox: Any, azure_as: Any, subs: tuple[str, ...]) -> None:
    sandbox.admin("PATCH", "/_sandbox/settings", {"resource_graph_lag_seconds": 3600})
    azure = bot(azure_as, "resourcegraph")
    scope = Scope(subs[:1])
    before = template(read_scope(azure, scope, NEEDS))["cryptward"]["keyAccess"]
    (principal,) = before["missing"]
    # Its owner grants the set its role on the key's vault through ARM: Resource Graph will not show it for an hour
    grant(sandbox, str(before["keyScope"]).split("/keys/")[0], principal)
    page, _ = azure.graph_query(
        list(subs[:1]), rgroles.ASSIGNMENTS, 1000, api_version=rgroles.API_VERSION,
        options={"authorizationScopeFilter": "AtScopeAboveAndBelow"},
    )  # fmt: skip
    assert principal not in {r["properties"]["principalId"] for r in page["data"]}
    reading = read_scope(azure, scope, NEEDS)
    assert template(reading)["cryptward"]["keyAccess"]["missing"] == []  # ARM, read again at the key, has it
    since = len(sandbox.calls())
    report = scan(scope, POLICIES, apply=True, azure=azure)
    puts = [c for c in role_calls(sandbox, since) if c["method"] == "PUT"]
    des_id = str(template(reading)["id"]).lower()
    assert not [r for r in report.results if r.change.resource_id.lower() == des_id]
    assert not [c for c in puts if c["path"].lower().startswith(str(before["keyScope"]).lower() + "/")]


def test_a_role_removed_while_resource_graph_lags_never_lets_a_vault_switch(
    sandbox: Any, azure_as: Any, subs: tuple[str, ...]
) -> None:
    """An access-policy vault switches to RBAC only once its sets hold key roles (kv-rbac-authorization): a role
    removed through ARM, still in Resource Graph, must not count."""
    sb = sandbox.running.sandbox
    scope = Scope(subs[:1])
    policies = [p for p in load_policies(Path(__file__).resolve().parents[2] / "policies")
                if p.id in ("des-key-access", "kv-rbac-authorization")]  # fmt: skip
    needs = Needs.of(policies)
    des = template(read_scope(bot(azure_as, "arm"), scope, needs))
    principal, key = des["cryptward"]["keyAccess"]["principals"][0], des["cryptward"]["keyAccess"]["keyScope"]
    vault_id = str(key).split("/keys/")[0]
    vault = sb.state.get(vault_id)
    entry = {
        "tenantId": sb.state.tenant_id,
        "objectId": principal,
        "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
    }
    props = {**vault["properties"], "enableRbacAuthorization": False, "accessPolicies": [entry]}
    sb.state.put({**vault, "properties": props})  # an access-policy vault its set can use
    grant(sandbox, vault_id, principal)
    auth = sandbox.client(AuthorizationManagementClient)
    (granted,) = [a for a in auth.role_assignments.list_for_scope(vault_id, filter="atScope()")
                  if a.principal_id == principal]  # fmt: skip
    azure = bot(azure_as, "resourcegraph")
    entry_of = lambda reading: next(  # noqa: E731
        e for e in reading.resources[vault["id"]]["cryptward"]["encryptionSets"] if e["set"]["id"] == des["id"]
    )
    assert entry_of(read_scope(azure, scope, needs))["keyRoles"]  # Resource Graph and ARM both have it
    sandbox.admin("PATCH", "/_sandbox/settings", {"resource_graph_lag_seconds": 3600})
    auth.role_assignments.delete_by_id(granted.id)
    page, _ = azure.graph_query(
        list(subs[:1]), rgroles.ASSIGNMENTS, 1000, api_version=rgroles.API_VERSION,
        options={"authorizationScopeFilter": "AtScopeAboveAndBelow"},
    )  # fmt: skip
    assert granted.id.lower() in {str(r["id"]).lower() for r in page["data"]}  # still there for an hour
    assert entry_of(read_scope(azure, scope, needs))["keyRoles"] == []  # ARM, read again at the key: gone
