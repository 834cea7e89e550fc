"""remediations/expiry.py: items from management-plane bodies, and the 30/14/7/1-day announcements, each once."""

from datetime import UTC, datetime, timedelta

from remediations import expiry

NOW = datetime(2026, 12, 1, tzinfo=UTC)
VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"


def _entry(days: float | None, name: str = "db", enabled: bool = True) -> dict:
    attrs = {"enabled": enabled}
    if days is not None:
        attrs["exp"] = int((NOW + timedelta(days=days)).timestamp())
    return expiry.item({"id": f"{VAULT}/secrets/{name}", "name": name, "properties": {"attributes": attrs}})


def test_items_say_their_kind_and_expiry_and_never_carry_a_value():
    cert = expiry.item(
        {
            "id": f"{VAULT}/secrets/web",
            "name": "web",
            "properties": {"contentType": "application/x-pkcs12", "attributes": {"exp": 1900000000}, "value": "x"},
        }
    )
    key = expiry.item({"id": f"{VAULT}/keys/k", "name": "k", "properties": {"attributes": {}}})
    assert cert == {"id": f"{VAULT}/secrets/web", "name": "web", "kind": "certificate", "enabled": True,
                    "expires": "2030-03-17T17:46:40Z"}  # fmt: skip
    assert key["kind"] == "key" and "expires" not in key


def test_each_window_is_announced_once_and_the_nearest_only():
    items = [_entry(29.5, "a"), _entry(5, "b"), _entry(45, "c"), _entry(None, "d"), _entry(3, "off", enabled=False)]
    first = expiry.due(items, NOW)
    assert [(a.name, a.window) for a in first] == [("a", 30), ("b", 7)]
    assert expiry.due(items, NOW, {a.key for a in first}) == []
    later = expiry.due(items, NOW + timedelta(days=16), {a.key for a in first})
    assert [(a.name, a.window) for a in later] == [("a", 14), ("b", 0), ("c", 30)]  # b expired, c came within 30


def test_an_expired_item_is_escalated_once_and_a_renewed_one_announced_again():
    gone = [_entry(-1, "old")]
    [escalation] = expiry.due(gone, NOW)
    assert escalation.escalated and "expired" in escalation.say()
    assert expiry.due(gone, NOW, {escalation.key}) == []
    renewed = [_entry(20, "old")]
    assert [a.window for a in expiry.due(renewed, NOW + timedelta(days=0), {escalation.key})] == [30]
