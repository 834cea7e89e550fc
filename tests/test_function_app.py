"""The function app loads, lists its functions, and stays light at import (cold start)."""

import json
import subprocess
import sys

import azure.functions as func

from remediations.functions import describe_functions, functions


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


def test_import_loads_no_azure_sdk_clients():
    code = (
        "import sys, function_app\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('azure.mgmt', 'azure.keyvault', 'azure.identity',"
        " 'azure.data', 'azure.storage', 'azure.eventgrid')))\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
