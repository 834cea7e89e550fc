"""A vault's access review and its expiring items, read by the bot with exactly its custom role (infra/
cryptward-role.json) through the real clients against the sandbox: what is reported, what the notice detail names,
and that a secret's value is never read."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from remediations.azure import Azure
from remediations.engine.reader import Scope
from remediations.engine.run import scan, select
from remediations.policy.loader import load_policies
from remediations.settings import Settings
from sandbox.providers.authorization_pim import ACTIVE, ELIGIBLE, add_instance
from sandbox.scenarios import assign

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
RG = "rg-hygiene"
CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
KV_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"


@pytest.fixture
def estate(sandbox, monkeypatch):
    sandbox.reset("empty")
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(RG, {"location": "westeurope"})
    kv = sandbox.client(KeyVaultManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    vault = kv.vaults.begin_create_or_update(RG, "kv-hygiene", {"location": "westeurope", "properties": props}).result()
    far = int((datetime.now(UTC) + timedelta(days=400)).timestamp())
    kv.secrets.create_or_update(RG, "kv-hygiene", "api-token", {"properties": {"value": "s3cr3t-value"}})
    kv.secrets.create_or_update(
        RG, "kv-hygiene", "db-password", {"properties": {"value": "other-value", "attributes": {"exp": far}}}
    )
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    azure = Azure.from_env()
    yield SimpleNamespace(vault=vault.id, azure=azure, rg=vault.id.split("/providers/")[0])
    azure.close()


def _scan(sandbox, azure, ids):
    return scan(Scope((sandbox.subscription_id,)), select(POLICIES, ids), settings=Settings(), azure=azure)


def test_a_secret_without_expiry_is_reported_from_its_metadata_and_its_value_is_never_read(
    sandbox, estate, grant_custom_role
):
    grant_custom_role("bot")
    since = len(sandbox.calls())
    report = _scan(sandbox, estate.azure, ["kv-item-expiry"])
    [finding] = report.findings
    assert finding.unreadable is None and finding.resource["id"].lower() == estate.vault.lower()
    names = {i["name"]: i for i in finding.resource["cryptward"]["items"]}
    assert "expires" not in names["api-token"] and "expires" in names["db-password"]
    calls = sandbox.calls(since)
    assert not any("s3cr3t-value" in str(c) for c in calls)
    assert not any("/secrets/" in c.get("path", "") and c.get("plane") == "keyvault" for c in calls)


def test_user_roles_above_the_vault_and_standing_admins_under_pim_are_named_in_the_detail(
    sandbox, estate, grant_custom_role
):
    grant_custom_role("bot")
    state = sandbox.running.sandbox.state
    user = sandbox.principal("vault-owner")
    group = SimpleNamespace(object_id="5a1b2c3d-0000-4000-8000-00000000a11e", kind="Group")
    assign(sandbox.running.sandbox, estate.rg, user, CRYPTO_USER)
    admins = assign(sandbox.running.sandbox, estate.vault, group, KV_ADMINISTRATOR)
    add_instance(state, ELIGIBLE, f"/subscriptions/{sandbox.subscription_id}", user, KV_ADMINISTRATOR)
    add_instance(state, ACTIVE, estate.vault, group, KV_ADMINISTRATOR, assignmentType="Assigned",
                 originRoleAssignmentId=admins["id"])  # fmt: skip
    report = _scan(sandbox, estate.azure, ["kv-access-review"])
    [finding] = [f for f in report.findings if f.resource["id"].lower() == estate.vault.lower()]
    problems = {(e["problem"], e["role"]) for e in finding.resource["cryptward"]["accessReview"]}
    assert ("user-data-role-above-vault", "Key Vault Crypto User") in problems
    assert ("standing-privileged", "Key Vault Administrator") in problems
    [skip] = [s for s in report.plan.skipped if s.resource_id.lower() == estate.vault.lower()]
    assert skip.reason == "audit-only"
    assert user.object_id in skip.detail and "Key Vault Reader at the vault" in skip.detail
    assert "eligible assignment in Privileged Identity Management" in skip.detail


def test_a_vault_whose_assignments_cannot_be_listed_is_not_called_compliant(sandbox, estate, grant_custom_role):
    grant_custom_role("bot", without=["Microsoft.Authorization/roleAssignments/read"])
    report = _scan(sandbox, estate.azure, ["kv-access-review"])
    [finding] = [f for f in report.findings if f.resource["id"].lower() == estate.vault.lower()]
    assert finding.unreadable and "could not read" in finding.unreadable


def test_the_demo_estate_holds_one_of_each_access_review_problem(sandbox, grant_custom_role, monkeypatch):
    sandbox.reset("estate")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    azure = Azure.from_env()
    try:
        report = _scan(sandbox, azure, ["kv-access-review", "kv-item-expiry"])
    finally:
        azure.close()
    problems = {e["problem"] for f in report.findings for e in f.resource["cryptward"].get("accessReview", [])}
    assert problems == {
        "user-data-role-above-vault",
        "user-administrator",
        "standing-privileged",
        "access-policy-all-or-purge",
    }
    assert {f.resource["name"] for f in report.findings if f.policy.id == "kv-item-expiry"} == {"kv-weu-disks"}


def test_vaults_under_one_assignment_share_its_review_entry(sandbox, estate, grant_custom_role):
    grant_custom_role("bot")
    kv = sandbox.client(KeyVaultManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    kv.vaults.begin_create_or_update(RG, "kv-hygiene-2", {"location": "westeurope", "properties": props}).result()
    user = sandbox.principal("vault-owner")
    assign(sandbox.running.sandbox, f"/subscriptions/{sandbox.subscription_id}", user, KV_ADMINISTRATOR)
    report = _scan(sandbox, estate.azure, ["kv-access-review"])
    entries = [
        [e for e in body["cryptward"]["accessReview"] if e["problem"] == "user-administrator"]
        for body in report.bodies.values()
        if body["name"] in ("kv-hygiene", "kv-hygiene-2")
    ]
    assert len(entries) == 2 and entries[0] == entries[1]
    assert user.object_id in {e["principalId"] for e in entries[0]}
    assert all(a is b for a, b in zip(*entries, strict=True))  # one entry object for both vaults, not a copy each


def test_the_items_of_many_vaults_read_at_once_land_on_their_own_vault(sandbox, estate, grant_custom_role):
    grant_custom_role("bot")
    kv = sandbox.client(KeyVaultManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    names = [f"kv-many-{i}" for i in range(6)]
    for name in names:
        kv.vaults.begin_create_or_update(RG, name, {"location": "westeurope", "properties": props}).result()
        kv.secrets.create_or_update(RG, name, f"only-in-{name}", {"properties": {"value": "v"}})
    report = _scan(sandbox, estate.azure, ["kv-item-expiry"])
    items = {f.resource["name"]: {i["name"] for i in f.resource["cryptward"]["items"]} for f in report.findings}
    assert {n: items[n] for n in names} == {n: {f"only-in-{n}"} for n in names}
    assert items["kv-hygiene"] == {"api-token", "db-password"}


def test_vaults_whose_items_cannot_be_listed_are_not_called_compliant(sandbox, estate, grant_custom_role):
    grant_custom_role("bot", without=["Microsoft.KeyVault/vaults/secrets/read"])
    kv = sandbox.client(KeyVaultManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    kv.vaults.begin_create_or_update(RG, "kv-other", {"location": "westeurope", "properties": props}).result()
    report = _scan(sandbox, estate.azure, ["kv-item-expiry"])
    assert len(report.findings) == 2
    assert all(f.unreadable and "could not read" in f.unreadable for f in report.findings)


def test_key_access_and_the_access_review_share_one_list_of_the_subscription_s_role_assignments(
    sandbox, grant_custom_role, monkeypatch
):
    sandbox.reset("estate")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    azure = Azure.from_env()
    since = len(sandbox.calls())
    try:
        report = _scan(sandbox, azure, ["kv-access-review", "des-key-access"])
    finally:
        azure.close()
    whole = f"/subscriptions/{sandbox.subscription_id}/providers/Microsoft.Authorization/roleAssignments".lower()
    lists = [c for c in sandbox.calls(since) if c["method"] == "GET" and c["path"].rstrip("/").lower() == whole]
    assert len(lists) == 1
    reviewed = [f for f in report.findings if f.policy.id == "kv-access-review"]
    assert len(reviewed) > 1 and all(f.unreadable is None for f in reviewed)
    problems = {e["problem"] for f in reviewed for e in f.resource["cryptward"]["accessReview"]}
    assert {"user-data-role-above-vault", "user-administrator", "standing-privileged"} <= problems
    sets = [f for f in report.findings if f.policy.id == "des-key-access"]
    assert sets and all("keyAccess" in f.resource["cryptward"] for f in sets)


def test_a_vault_no_policy_reading_its_items_applies_to_is_not_listed(sandbox, estate, grant_custom_role):
    import dataclasses

    grant_custom_role("bot")
    kv = sandbox.client(KeyVaultManagementClient)
    props = {"tenantId": sandbox.tenant_id, "sku": {"family": "A", "name": "standard"}}
    other = kv.vaults.begin_create_or_update(
        RG, "kv-elsewhere", {"location": "westeurope", "properties": props}
    ).result()
    [expiry] = select(POLICIES, ["kv-item-expiry"])
    narrowed = dataclasses.replace(expiry, not_scopes=(other.id.lower(),))  # the assignment's notScopes
    since = len(sandbox.calls())
    report = scan(Scope((sandbox.subscription_id,)), [narrowed], settings=Settings(), azure=estate.azure)
    listed = {c["path"].lower() for c in sandbox.calls(since) if c["path"].lower().endswith(("/secrets", "/keys"))}
    assert listed == {f"{estate.vault}/secrets".lower(), f"{estate.vault}/keys".lower()}
    assert [f.resource["name"] for f in report.findings] == ["kv-hygiene"]
