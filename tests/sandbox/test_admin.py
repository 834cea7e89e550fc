"""The admin API's decisions (sandbox/admin.py): the key, the settings a PATCH may change, a bad request's 400; and
the routes the providers register beside the core's."""

import pytest

from sandbox import admin
from sandbox.state import Settings


def test_only_the_admin_key_passes():
    assert admin.refused("k", "k") is None
    for key in (None, "", "K", "wrong"):
        refusal = admin.refused(key, "k")
        assert refusal is not None and refusal.status_code == 403


def test_a_settings_patch_names_known_settings_only():
    assert admin.settings_changes(Settings(), {"page_size": 2}) == {"page_size": 2}
    with pytest.raises(ValueError, match=r"unknown settings \['nope'\]; valid: \[.*'page_size'"):
        admin.settings_changes(Settings(), {"page_size": 2, "nope": 1})


def test_the_api_refuses_a_wrong_key_and_answers_a_bad_body_with_400(sandbox):
    api = sandbox.admin_api
    assert api.get("/_sandbox/health", headers={"x-sandbox-key": "wrong"}).status_code == 403
    refused = api.patch("/_sandbox/settings", json={"nope": 1})
    assert refused.status_code == 400 and "unknown settings ['nope']" in refused.json()["error"]["message"]
    assert api.post("/_sandbox/clock", json={}).status_code == 400  # KeyError: advanceSeconds
    assert sandbox.admin("GET", "/_sandbox/settings")["page_size"] == sandbox.running.sandbox.state.settings.page_size


def test_routes_are_the_core_table_then_the_providers(sandbox):
    paths = [route.path for route in admin.routes(sandbox.running.sandbox)]
    own = [path for path, _, _ in admin.TABLE]
    assert paths[: len(own)] == own
    assert "/_sandbox/eventSubscriptions" in paths[len(own) :]  # registered by the Event Grid provider
