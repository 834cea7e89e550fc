"""End to end, Key Vault's own events as infra/vault-events.json subscribes them: a vault's event subscription
letting through exactly the policy's event types reaches `cryptward serve` (the function app), and the sandbox's
SecretNearExpiry / CertificateNearExpiry (30 days ahead, by its clock) make the bot re-read the vault and tell its
owners, once, without any sweep."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.mgmt.keyvault import KeyVaultManagementClient

from tests.test_e2e import RG, bot, make_vault  # noqa: F401 (bot is a fixture)

ROOT = Path(__file__).resolve().parent.parent
POLICY = json.loads((ROOT / "infra" / "vault-events.json").read_text())["properties"]
EVENT_TYPES = POLICY["parameters"]["eventTypes"]["defaultValue"]


def test_a_vaults_near_expiry_events_reach_the_bot_and_its_owners_hear_once(sandbox, bot, azurite):  # noqa: F811
    from remediations.notices.delivery import setting_prefix

    name = "vaultevents"
    sandbox.admin("PUT", f"/_sandbox/receivers/webhook/{name}", {"status": 200})
    app = bot(
        subscribe=False,  # no subscription-wide topic: only the vault's own events can wake the bot
        debounce=0,
        CRYPTWARD_ROUTES=json.dumps({"*": [f"webhook:{name}"]}),
        **{
            f"{setting_prefix(name)}_URL": f"{sandbox.base_url}/_receivers/webhook/{name}",
            f"{setting_prefix(name)}_SECRET": "whsec-vault-events",
        },
    )
    vault = make_vault(sandbox, "kv-e2e-vault-events")
    app.subscribe(name="cryptward-vault", scope=vault.id, filter={"includedEventTypes": EVENT_TYPES})
    kv = sandbox.client(KeyVaultManagementClient)
    exp = int((datetime.now(UTC) + timedelta(days=20)).timestamp())
    kv.secrets.create_or_update(RG, vault.name, "db", {"properties": {"value": "v", "attributes": {"exp": exp}}})
    cert = {"value": "v", "contentType": "application/x-pkcs12", "attributes": {"exp": exp}}
    kv.secrets.create_or_update(RG, vault.name, "web", {"properties": cert})

    def expiring():
        got = sandbox.admin("GET", f"/_sandbox/received?receiver=webhook/{name}")["value"]
        return sorted(
            line["summary"]
            for item in got
            for line in json.loads(item["body"])["lines"]
            if "kv-item-expiry" in line["policyIds"] and line["status"] == "expiring"
        )

    assert expiring() == []  # nothing has told the bot yet
    sandbox.advance(60)  # the sandbox's clock ticks: both are within 30 days of their expiry

    def delivered():
        return [
            d
            for d in sandbox.admin("GET", "/_sandbox/deliveries")["value"]
            if d["eventSubscriptionId"].lower()
            == f"{vault.id}/providers/microsoft.eventgrid/eventsubscriptions/cryptward-vault".lower()
            and d["status"] == 200
            and d["kind"] != "SubscriptionValidation"
        ]

    # the two NearExpiry events, at serve's door (one delivery each may come after the other: wait for both)
    assert app.wait_for(lambda: sum(len(d["eventIds"]) for d in delivered()) >= 2), delivered()
    app.wait_for(lambda: len(expiring()) >= 2)
    app.settle()
    assert expiring() == ["certificate web expires within 30 day(s)", "secret db expires within 30 day(s)"]
