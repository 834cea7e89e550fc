"""Azure Policy exemptions honoured beside the exemption tag: an exemption of the assignment of a Cryptward policy's
Azure Policy twin (here 0b60c0b2..., the twin of kv-purge-protection and builtin-kv-deletion-protection) exempts the
resources at or below its scope, with its category and expiry in the reason; an expired one exempts nothing; one
the bot cannot read leaves the twinned policies unfixed (cannot-read). Against the sandbox, as the bot with its role."""

from datetime import UTC, datetime
from pathlib import Path

import httpx

from remediations.azure import Azure
from remediations.changes import PlanSettings
from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.policy.exemptions import azure_exemption
from remediations.policy.loader import load_policies
from remediations.settings import Settings

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
TWIN = "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53"


def arm(sandbox, method, path, api, body=None):
    token = sandbox.credential("admin").get_token("https://management.azure.com/.default").token
    with httpx.Client(verify=sandbox.ssl, timeout=30) as client:
        r = client.request(
            method, f"{sandbox.base_url}{path}", params={"api-version": api}, json=body,
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
    assert r.status_code in (200, 201), r.text
    return r.json()


def exempt(sandbox, scope, name, **props):
    sub = f"/subscriptions/{sandbox.subscription_id}"
    assignment = f"{sub}/providers/Microsoft.Authorization/policyAssignments/kv-deletion-protection"
    definition = f"/providers/Microsoft.Authorization/policyDefinitions/{TWIN}"
    arm(sandbox, "PUT", assignment, "2023-04-01", {"properties": {"policyDefinitionId": definition}})
    body = {"properties": {"policyAssignmentId": assignment, "exemptionCategory": "Mitigated", **props}}
    arm(
        sandbox, "PUT", f"{scope}/providers/Microsoft.Authorization/policyExemptions/{name}", "2022-07-01-preview", body
    )


def sweep(sandbox, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    azure = Azure.from_env()
    try:
        modes = {"kv-purge-protection": "remediate"}
        return scan(Scope((sandbox.subscription_id,)), POLICIES, settings=Settings(plan=PlanSettings(), modes=modes),
                    azure=azure)  # fmt: skip
    finally:
        azure.close()


def skips(report, policy_id):
    return {s.resource_id.rsplit("/", 1)[-1]: s for s in report.plan.skipped if s.policy_id == policy_id}


def test_an_exemption_at_a_group_exempts_its_vaults_from_the_twinned_policies(sandbox, grant_custom_role, monkeypatch):
    sandbox.reset("estate")
    grant_custom_role("bot")
    group = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu"
    exempt(sandbox, group, "app-team-waiver", expiresOn="2099-01-01T00:00:00Z")
    report = sweep(sandbox, monkeypatch)
    purge = skips(report, "kv-purge-protection")
    assert purge["kv-weu-app"].reason == "exempt"
    assert "'app-team-waiver' (Mitigated, until 2099-01-01T00:00:00Z)" in purge["kv-weu-app"].detail
    assert skips(report, "builtin-kv-deletion-protection")["kv-weu-app"].reason == "exempt"
    planned = {c.resource_id.rsplit("/", 1)[-1] for c in report.plan.changes if "kv-purge-protection" in c.fixes}
    assert "kv-weu-app" not in planned and {"kv-weu-disks", "kv-neu-legacy"} <= planned  # outside its scope
    assert "kv-owner-tag" in {p for c in report.plan.changes if c.resource_id.endswith("/kv-weu-app") for p in c.fixes}


def test_an_expired_exemption_exempts_nothing(sandbox, grant_custom_role, monkeypatch):
    sandbox.reset("estate")
    grant_custom_role("bot")
    exempt(sandbox, f"/subscriptions/{sandbox.subscription_id}", "old", expiresOn="2020-01-01T00:00:00Z")
    report = sweep(sandbox, monkeypatch)
    assert "kv-weu-app" not in skips(report, "kv-purge-protection")
    assert any("expired on 2020-01-01" in n for n in report.plan.notes)


def test_unreadable_exemptions_leave_twinned_policies_unfixed(sandbox, grant_custom_role, monkeypatch):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Authorization/policyExemptions/read"])
    report = sweep(sandbox, monkeypatch)
    purge = skips(report, "kv-purge-protection")
    assert {s.reason for s in purge.values()} == {"cannot-read"} and len(purge) == 3
    assert "kv-delete-lock" in {f for c in report.plan.changes for f in c.fixes}  # no twin: unaffected


def test_an_initiatives_exemption_is_reported_not_honoured():
    record = {"name": "x", "policySet": True, "definition": "set", "scope": "/subscriptions/s"}
    why, problems = azure_exemption(TWIN, [record], datetime(2026, 1, 1, tzinfo=UTC))
    assert why is None and "initiative" in problems[0]


def test_an_exemption_whose_assignment_cannot_be_read_leaves_its_scope_unfixed(sandbox, grant_custom_role, monkeypatch):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Authorization/policyAssignments/read"])
    exempt(sandbox, f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu", "waiver")
    report = sweep(sandbox, monkeypatch)
    purge = skips(report, "kv-purge-protection")
    assert purge["kv-weu-app"].reason == "cannot-read" and "'waiver'" in purge["kv-weu-app"].detail
    assert "kv-weu-disks" not in purge  # outside the exemption's scope: planned as usual
