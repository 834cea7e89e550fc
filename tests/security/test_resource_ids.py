"""A forged resource id cannot make the bot read or write outside CRYPTWARD_SCOPES (issue: "`..` in a forged resource
id made the bot read outside CRYPTWARD_SCOPES").

An HTTP client resolves dot segments (`rg1/../rg2` is `rg2`), so a prefix check that saw `rg1` would let the read
go to `rg2`. Every id from an event or an alert is checked strictly before anything is queued or read.
"""

import json

import pytest

from remediations.engine.reader import Scope
from remediations.triggers.events import owner_of, parse_alert, parse_event

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
INSIDE = f"/subscriptions/{SUB}/resourceGroups/rg-team"
VAULT = "providers/Microsoft.KeyVault/vaults/kv-victim"

FORGED = [
    f"{INSIDE}/../rg-victim/{VAULT}",
    f"{INSIDE}/./{VAULT}",
    f"{INSIDE}/..%2Frg-victim/{VAULT}",
    f"{INSIDE}%2F..%2Frg-victim/{VAULT}",
    f"{INSIDE}/{VAULT}%2F..%2F..%2Fother",
    f"{INSIDE}\\..\\rg-victim/{VAULT}",
    f"{INSIDE}/{VAULT}?api-version=2015-01-01",
    f"{INSIDE}/{VAULT}#x",
    f"{INSIDE}/{VAULT}\x00",
    f"{INSIDE}/ rg/{VAULT}",
]


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_id_is_not_a_resource_id(forged):
    with pytest.raises(ValueError):
        owner_of(forged)


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_id_in_an_event_is_never_work(forged):
    event = {
        "id": "e1",
        "topic": f"/subscriptions/{SUB}",
        "subject": forged,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-12-03T10:00:00Z",
        "dataVersion": "2",
        "data": {"operationName": "Microsoft.KeyVault/vaults/write", "claims": {"appid": "a"}},
    }
    item = parse_event(event)
    assert item.reason is not None and "not a resource id" in item.reason


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_id_in_an_alert_is_never_work(forged):
    alert = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitoringService": "Activity Log - Administrative", "alertTargetIDs": [forged]},
            "alertContext": {"operationName": "Microsoft.KeyVault/vaults/write", "caller": "mallory@contoso.com"},
        },
    }
    batch = parse_alert(json.dumps(alert))
    assert batch.items == ()
    assert [i.reason for i in batch.ignored if "not a resource id" in (i.reason or "")]


def test_the_forged_id_would_have_passed_the_scope_check():
    """Why the strict check matters: the scope's prefix test alone accepts the dot-segment id."""
    scope = Scope((SUB,), "rg-team")
    assert scope.contains(FORGED[0])
    assert not scope.contains(f"/subscriptions/{SUB}/resourceGroups/rg-victim/{VAULT}")


def test_names_with_dots_stay_resource_ids():
    rid = f"{INSIDE}/providers/Microsoft.Compute/disks/os.disk.v1"
    assert owner_of(rid) == (rid, "microsoft.compute/disks")


def test_an_alert_cannot_name_thousands_of_targets():
    """Each target costs ARM reads and ledger rows: an alert is about one resource, so a body naming many is refused
    whole (it was accepted up to 5,000, about five reads and a poison message each)."""
    from remediations.errors import EventRejected
    from remediations.triggers.events import MAX_ALERT_TARGETS

    ids = [f"{INSIDE}/providers/Microsoft.KeyVault/vaults/kv-{i}" for i in range(MAX_ALERT_TARGETS + 1)]
    alert = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {"monitoringService": "Activity Log - Administrative", "alertTargetIDs": ids},
            "alertContext": {"operationName": "Microsoft.KeyVault/vaults/write"},
        },
    }
    with pytest.raises(EventRejected, match="alertTargetIDs"):
        parse_alert(json.dumps(alert))
    alert["data"]["essentials"]["alertTargetIDs"] = ids[:MAX_ALERT_TARGETS]
    assert len(parse_alert(json.dumps(alert)).items) == MAX_ALERT_TARGETS


def test_a_resource_that_does_not_exist_is_one_recorded_outcome(sandbox, azurite, grant_custom_role, bot_runtime):
    """Each id of a forged alert that names nothing cost five ARM reads, five ledger rows and a poison message; now
    one read and one record, and the work item is done."""
    from remediations.triggers import worker
    from remediations.work import WorkItem
    from tests.botapp import bot_env

    grant_custom_role("bot")
    rt = bot_runtime(bot_env(sandbox, azurite, debounce=0))
    ghost = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-none/providers/Microsoft.KeyVault/vaults/kv-x"
    start = len(sandbox.calls())
    outcome = worker.handle(WorkItem("alert", ghost, "microsoft.keyvault/vaults", event_id="a1").to_json())
    assert outcome.status == "skipped"
    reads = [c for c in sandbox.calls(start) if c["path"].lower().startswith(ghost.lower())]
    assert len(reads) == 1
    assert [r.result for r in rt.ledger.audit_for(ghost)] == ["not-found"]
