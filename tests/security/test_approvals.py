"""Approvals a hostile or hurried person cannot race or misreport (issue: "Approve/Deny race", "An approval POST
answers a bare 500 when an unrelated fix of the same resource fails").

Against the bot as deployed locally (`cryptward serve` hosting function_app.py, Azurite, the sandbox): the links of
a real Teams card are followed over real HTTP.
"""

from __future__ import annotations

import threading

import httpx

from tests.test_e2e import bot, ledger_of, make_vault  # noqa: F401  (bot is a fixture)
from tests.triggers.test_decisions import change_of, purge_protected, teams_bot, wait_for_link  # noqa: F401


def test_approve_and_deny_sent_together_decide_once_and_apply_only_what_was_decided(sandbox, teams_bot, azurite):
    app = teams_bot()
    make_vault(sandbox, "kv-race-1")
    approve = wait_for_link(app, sandbox, "Approve", "kv-race-1")
    deny = wait_for_link(app, sandbox, "Deny", "kv-race-1")
    app.settle()
    assert change_of(approve) == change_of(deny)
    start = threading.Barrier(2)
    pages: dict[str, httpx.Response] = {}

    def post(name: str, link: str) -> None:
        with httpx.Client(timeout=120) as http:
            start.wait()
            pages[name] = http.post(link)

    threads = [threading.Thread(target=post, args=a) for a in (("approve", approve), ("deny", deny))]
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
