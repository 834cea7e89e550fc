"""An approver decides in a real browser (issue: "tests, the demo and a headless browser test go through the real
sign-in flow"): headless Chromium, driven by Playwright, follows a Teams card's Approve link to `cryptward serve`, is
sent to the sandbox's Entra ID sign-in, picks the approver on its account page, comes back through the form post,
and clicks "Approve this change". No login hint, no shortcut: what a person's browser does.
"""

from __future__ import annotations

import shutil

import pytest

from tests.test_e2e import bot, ledger_of, make_vault  # noqa: F401  (bot is a fixture)
from tests.triggers.test_decisions import change_of, purge_protected, teams_bot, wait_for_link  # noqa: F401
from tests.waits import limit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright  # requirements-dev.txt; it drives Debian's Chromium, no download

    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium is missing: make test installs it (scripts/install-chromium.sh)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # The sandbox's TLS certificate comes from its own CA, which this browser profile does not trust.
        context = launched.new_context(ignore_https_errors=True)
        context.set_default_timeout(limit(60) * 1000)  # a limit to give up at, scaled like every wait (tests/waits.py)
        try:
            yield context.new_page()
        finally:
            context.close()
            launched.close()


def test_an_approver_signs_in_and_approves_in_a_browser(sandbox, teams_bot, azurite, browser):  # noqa: F811
    app = teams_bot()
    make_vault(sandbox, "kv-browser-1")
    approve = wait_for_link(app, sandbox, "Approve", "kv-browser-1")
    app.settle()
    browser.goto(approve)
    assert browser.url.startswith(f"{sandbox.base_url}/{sandbox.tenant_id}/oauth2/v2.0/authorize")  # sent to sign in
    approver = sandbox.principal("approver")
    browser.click(f"button[value='{approver.name}']")  # the account picker
    browser.wait_for_selector("button[type=submit]")  # back at Cryptward: the confirmation page
    page = browser.content()
    assert "kv-browser-1" in page and "Approve this change" in page
    assert not purge_protected(sandbox, "kv-browser-1")  # signing in decided nothing
    browser.click("button[type=submit]")
    browser.wait_for_selector("h1")
    assert "Change approved" in browser.content()
    assert purge_protected(sandbox, "kv-browser-1")
    entry = ledger_of(azurite).find_pending(change_of(approve))
    assert entry is not None and entry.decision == "approved"
