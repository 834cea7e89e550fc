"""The function app loads, lists its functions, and stays light at import (cold start)."""

import json
import subprocess
import sys

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediations.cli.functions import describe_functions, functions


def test_app_lists_its_functions():
    names = {f.get_function_name() for f in functions()}
    assert "health" in names
    assert any(line.startswith("health (") for line in describe_functions())


def test_health_answers_version_and_missing_settings(monkeypatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    health = next(f for f in functions() if f.get_function_name() == "health")
    resp = health.get_user_function()(func.HttpRequest("GET", "/api/health", body=b""))
    body = json.loads(resp.get_body())
    assert resp.status_code == 200
    assert body["service"] == "cryptward"
    assert body["missingSettings"] == ["AzureWebJobsStorage"]


def test_health_counts_identity_based_storage_as_configured(monkeypatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "stcryptward")
    health = next(f for f in functions() if f.get_function_name() == "health")
    resp = health.get_user_function()(func.HttpRequest("GET", "/api/health", body=b""))
    assert json.loads(resp.get_body())["missingSettings"] == []


def test_import_loads_no_azure_sdk_clients():
    code = (
        "import sys, function_app\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('azure.mgmt', 'azure.keyvault', 'azure.identity',"
        " 'azure.data', 'azure.storage', 'azure.eventgrid')))\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_triggers_are_bound_to_settings():
    by_name = {f.get_function_name(): f.get_trigger() for f in functions()}
    assert {n: t.get_binding_name() for n, t in by_name.items()} == {
        "health": "httpTrigger",
        "eventgrid": "eventGridTrigger",
        "alerts": "httpTrigger",
        "sweep": "timerTrigger",
        "rotation": "timerTrigger",
        "worker": "queueTrigger",
        "approvals": "httpTrigger",
        "notices": "timerTrigger",
    }
    assert by_name["sweep"].schedule == "%SWEEP_SCHEDULE%"
    assert by_name["notices"].schedule == "%NOTICES_SCHEDULE%"
    assert by_name["approvals"].auth_level == func.AuthLevel.ANONYMOUS  # the signed token is the authorization
    assert by_name["approvals"].route == "approvals"
    assert by_name["rotation"].schedule == "%ROTATION_SCHEDULE%"
    assert (by_name["worker"].queue_name, by_name["worker"].connection) == (
        "%CRYPTWARD_WORK_QUEUE%",
        "AzureWebJobsStorage",
    )
    assert by_name["alerts"].auth_level == func.AuthLevel.FUNCTION


def test_local_settings_name_every_binding_setting():
    from pathlib import Path

    values = json.loads((Path(__file__).resolve().parent.parent / "local.settings.json").read_text())["Values"]
    for name in (
        "SWEEP_SCHEDULE",
        "ROTATION_SCHEDULE",
        "NOTICES_SCHEDULE",
        "CRYPTWARD_WORK_QUEUE",
        "CRYPTWARD_DEBOUNCE_SECONDS",
    ):
        assert name in values


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
_data = st.recursive(
    _scalars, lambda s: st.lists(s, max_size=3) | st.dictionaries(st.text(max_size=10), s), max_leaves=10
)


@pytest.fixture
def storage(azurite, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    monkeypatch.setenv("CRYPTWARD_SCOPES", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("CRYPTWARD_TABLE_PREFIX", "tfuzz")
    monkeypatch.setenv("CRYPTWARD_WORK_QUEUE", "cw-fuzz")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event_type=st.sampled_from(
        ["Microsoft.Resources.ResourceWriteSuccess", "Microsoft.KeyVault.KeyNearExpiry", "Other", ""]
    )
    | st.text(max_size=20),
    subject=st.text(max_size=60) | st.just("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/disks/d"),
    data=_data,
    when=st.none() | st.datetimes(),
)
def test_the_eventgrid_trigger_never_crashes(storage, event_type, subject, data, when):
    fn = next(f for f in functions() if f.get_function_name() == "eventgrid").get_user_function()
    event = func.EventGridEvent(
        id="1",
        data=data,
        topic="/subscriptions/x",
        subject=subject,
        event_type=event_type,
        event_time=when,
        data_version="1",
    )
    assert fn(event) is None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300) | _data.map(lambda d: json.dumps(d).encode()))
def test_the_alert_trigger_answers_400_for_anything_malformed(storage, body):
    fn = next(f for f in functions() if f.get_function_name() == "alerts").get_user_function()
    resp = fn(func.HttpRequest("POST", "/api/alerts", body=body))
    assert resp.status_code == 400 and json.loads(resp.get_body())["reason"]


def test_a_route_to_a_destination_that_is_not_configured_turns_health_red(monkeypatch, caplog):
    """Security issue: a typo in CRYPTWARD_ROUTES silently dropped every notice while /api/health stayed green."""
    from remediations import runtime

    monkeypatch.setenv("CRYPTWARD_ROUTES", '{"*": ["teams:secpos"]}')  # the operator meant secops
    monkeypatch.setenv("CRYPTWARD_DEST_SECOPS_URL", "https://example.invalid/workflows/secops")
    runtime.reset()
    health = next(f for f in functions() if f.get_function_name() == "health")
    with caplog.at_level("ERROR", logger="cryptward.runtime"):
        resp = health.get_user_function()(func.HttpRequest("GET", "/api/health", body=b""))
    body = json.loads(resp.get_body())
    assert resp.status_code == 503 and body["healthy"] is False
    assert any("teams:secpos" in p and "CRYPTWARD_DEST_SECPOS_URL" in p for p in body["problems"])
    assert "example.invalid" not in resp.get_body().decode()  # names, never values
    assert any("teams:secpos" in r.getMessage() for r in caplog.records)  # said at start, in the log
    monkeypatch.setenv("CRYPTWARD_ROUTES", '{"*": ["teams:secops"]}')
    runtime.reset()
    assert health.get_user_function()(func.HttpRequest("GET", "/api/health", body=b"")).status_code == 200


def test_a_definition_that_cannot_load_is_logged_at_start_and_listed_by_health(monkeypatch, caplog, tmp_path):
    """Issue 17 item 8: one unsupported definition is reported (start-up log, health) and the others run."""
    from pathlib import Path

    from remediations import runtime

    builtin = Path(__file__).resolve().parent.parent / "policies" / "builtin-kv-deletion-protection" / "definition.json"
    (tmp_path / "good.json").write_text(builtin.read_text())
    bad = json.loads(builtin.read_text())
    bad["properties"]["policyRule"]["then"]["effect"] = "Append"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    monkeypatch.setenv("CRYPTWARD_POLICIES", str(tmp_path))
    runtime.reset()
    try:
        with caplog.at_level("WARNING", logger="cryptward.runtime"):
            assert [p.id for p in runtime.current().policies] == ["good"]
        assert any("bad" in r.getMessage() and "Append" in r.getMessage() for r in caplog.records)
        health = next(f for f in functions() if f.get_function_name() == "health")
        body = json.loads(health.get_user_function()(func.HttpRequest("GET", "/api/health", body=b"")).get_body())
        (listed,) = body["policiesNotLoaded"]
        assert listed.startswith("bad (") and "Append" in listed
    finally:
        monkeypatch.delenv("CRYPTWARD_POLICIES")
        runtime.reset()
