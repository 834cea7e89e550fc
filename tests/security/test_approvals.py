"""Approvals a hostile or hurried person cannot race or misreport (issue: "Approve/Deny race", "An approval POST
answers a bare 500 when an unrelated fix of the same resource fails").

Against the bot as deployed locally (`cryptward serve` hosting function_app.py, Azurite, the sandbox): the links of
a real Teams card are followed over real HTTP.
"""

from __future__ import annotations

import threading

import httpx

from tests.test_e2e import bot, ledger_of, make_vault  # noqa: F401  (bot is a fixture)
from tests.triggers.test_decisions import (  # noqa: F401  (teams_bot is a fixture)
    change_of,
    decision_form,
    purge_protected,
    sign_in,
    teams_bot,
    wait_for_link,
)
from tests.waits import limit


def test_approve_and_deny_sent_together_decide_once_and_apply_only_what_was_decided(sandbox, teams_bot, azurite):  # noqa: F811
    app = teams_bot()
    make_vault(sandbox, "kv-race-1")
    approve = wait_for_link(app, sandbox, "Approve", "kv-race-1")
    deny = wait_for_link(app, sandbox, "Deny", "kv-race-1")
    app.settle()
    assert change_of(approve) == change_of(deny)
    forms = {name: decision_form(sign_in(sandbox, link)) for name, link in (("approve", approve), ("deny", deny))}
    start = threading.Barrier(2)
    pages: dict[str, httpx.Response] = {}

    def post(name: str) -> None:
        action, fields = forms[name]
        with httpx.Client(timeout=limit(120)) as http:
            start.wait()
            pages[name] = http.post(action, data=fields)

    threads = [threading.Thread(target=post, args=(name,)) for name in ("approve", "deny")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entry = ledger_of(azurite).find_pending(change_of(approve))
    assert entry is not None and entry.decision in ("approved", "denied")
    winner, loser = ("approve", "deny") if entry.decision == "approved" else ("deny", "approve")
    assert pages[winner].status_code == 200, pages[winner].text
    assert pages[loser].status_code == 409 and "Already decided" in pages[loser].text, pages[loser].text
    assert f"already {entry.decision}" in pages[loser].text
    # what the ledger says is what happened to the vault: purge protection is irreversible
    assert purge_protected(sandbox, "kv-race-1") == (entry.decision == "approved")


def test_an_approval_applies_the_approved_change_only_and_another_fix_failing_does_not_spoil_it(
    sandbox,
    teams_bot,  # noqa: F811
    azurite,
):
    """Another fix of the same vault (its diagnostic setting, remediate mode) fails while a person approves purge
    protection: the approval applies that change and nothing else, the decision is recorded, and the page says so
    (it was a bare 500 and the approved irreversible change was applied with no decision recorded)."""
    from azure.mgmt.resource.locks import ManagementLockClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    app = teams_bot()
    vault = make_vault(sandbox, "kv-approve-only")
    approve = wait_for_link(app, sandbox, "Approve", "kv-approve-only")
    app.settle()
    action, fields = decision_form(sign_in(sandbox, approve))
    for sub in sandbox.admin("GET", "/_sandbox/eventSubscriptions")["value"]:  # nothing but the approval runs now
        sandbox.admin("DELETE", f"/_sandbox/eventSubscriptions?id={sub['id']}")
    sandbox.client(ManagementLockClient).management_locks.delete_by_scope(vault.id, "cryptward-cannot-delete")
    setting = f"{vault.id}/providers/Microsoft.Insights/diagnosticSettings/cryptward"
    rm = sandbox.client(ResourceManagementClient)
    rm.resources.begin_delete_by_id(setting, api_version="2021-05-01-preview").result()
    sandbox.admin(
        "POST", "/_sandbox/faults", {"rules": [{"kind": "500", "method": "PUT", "path": "diagnosticSettings"}]}
    )
    try:
        start = len(sandbox.calls())
        with httpx.Client(timeout=limit(120)) as http:
            page = http.post(action, data=fields)
        during = [c for c in sandbox.calls(start) if c["method"] == "PUT" and "diagnosticsettings" in c["path"].lower()]
    finally:
        sandbox.admin("POST", "/_sandbox/faults", {"rules": []})
    assert page.status_code == 200 and "Change approved" in page.text, page.text
    assert purge_protected(sandbox, "kv-approve-only")
    entry = ledger_of(azurite).find_pending(change_of(approve))
    assert entry is not None and entry.decision == "approved" and entry.status == "resolved"
    assert during == []  # the approval's run wrote nothing but the approved change
