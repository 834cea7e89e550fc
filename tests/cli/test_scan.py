"""`cryptward scan` against the session's sandbox: exit codes, output formats, --apply, and clear errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remediations.cli.main import app
from tests.waits import limit

runner = CliRunner()


@pytest.fixture
def as_admin(sandbox, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("admin").client_id)
    for name in ("CRYPTWARD_POLICY_MODES", "CRYPTWARD_DES_MAP", "CRYPTWARD_WORKSPACE_ID", "CRYPTWARD_POLICIES"):
        monkeypatch.delenv(name, raising=False)
    return sandbox


def writes(sandbox, since):
    return [c for c in sandbox.calls(since) if c["method"] not in ("GET",) and c["path"] != "/msi/token"]


def test_help_teaches_with_examples():
    result = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    for text in ("--apply", "--format", "Exit code", "cryptward scan -s", "python -m sandbox env"):
        assert text in " ".join(result.output.split())


def test_a_compliant_scope_exits_0(as_admin):
    result = runner.invoke(app, ["scan"])
    assert result.exit_code == 0, result.output
    assert "0 finding(s)" in result.output


def test_findings_exit_1_and_a_dry_run_writes_nothing(as_admin):
    as_admin.reset("estate")
    since = len(as_admin.calls())
    result = runner.invoke(app, ["scan", "--resource-group", "rg-keys-weu"])
    assert result.exit_code == 1, result.output
    assert "IRREVERSIBLE, needs approval" in result.output
    assert "nothing written" in result.output
    assert writes(as_admin, since) == []


def test_json_output_parses(as_admin):
    as_admin.reset("estate")
    result = runner.invoke(app, ["scan", "-f", "json", "-p", "kv-delete-lock", "-p", "kv-purge-protection"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["policies"] == ["kv-delete-lock", "kv-purge-protection"]
    assert {f["policyId"] for f in report["findings"]} == {"kv-delete-lock", "kv-purge-protection"}
    assert report["applied"] is False and report["results"] == []
    assert all(c["operation"]["method"] in ("PUT", "PATCH") for c in report["plan"]["changes"])


def test_markdown_output(as_admin):
    as_admin.reset("estate")
    result = runner.invoke(app, ["scan", "-f", "markdown", "-p", "kv-delete-lock"])
    assert result.exit_code == 1
    assert result.stdout.startswith("# Cryptward scan")
    assert "| medium | kv-delete-lock | kv-weu-app |" in result.stdout


def test_apply_writes_and_the_next_scan_is_compliant(as_admin):
    as_admin.reset("estate")
    since = len(as_admin.calls())
    result = runner.invoke(app, ["scan", "-p", "kv-delete-lock", "--apply", "-f", "json"])
    assert result.exit_code == 1, result.output
    assert [r["status"] for r in json.loads(result.stdout)["results"]] == ["applied"] * 3
    assert [c["method"] for c in writes(as_admin, since)] == ["PUT"] * 3
    again = runner.invoke(app, ["scan", "-p", "kv-delete-lock"])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "kv-delete-lok"], "unknown policy id(s): kv-delete-lok; valid options: builtin-kv-deletion-protection"),
        (["-s", "11111111-2222-3333-4444-555555555555"], "unknown subscription"),
        (["--policies", "/nonexistent"], "the policies folder is not valid"),
        (["-f", "yaml"], "unknown format 'yaml'"),
    ],
)
def test_errors_exit_2_with_a_clear_message(as_admin, args, message):
    result = runner.invoke(app, ["scan", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


def test_no_subscription_is_an_error(as_admin, monkeypatch):
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    result = runner.invoke(app, ["scan"])
    assert result.exit_code == 2 and "AZURE_SUBSCRIPTION_ID" in result.stderr


def test_the_installed_command_against_the_sandbox(as_admin):
    as_admin.reset("estate")
    env = {**os.environ, "CRYPTWARD_POLICY_MODES": "{}"}
    command = [str(Path(sys.executable).parent / "cryptward"), "scan", "--format", "json"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=limit(120))
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["findings"]


def test_without_credentials_the_command_says_so(as_admin):
    env = {**os.environ, "IDENTITY_HEADER": "wrong", "AZURE_CLIENT_ID": as_admin.principal("admin").client_id}
    command = [str(Path(sys.executable).parent / "cryptward"), "scan"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=limit(120))
    assert out.returncode == 2
    assert "no credentials" in out.stderr


def test_a_definition_that_cannot_load_is_reported_and_the_others_run(as_admin, tmp_path):
    """Issue 17 item 8: one unsupported definition no longer makes scan exit 2 with "nothing was loaded"."""
    builtin = Path(__file__).resolve().parents[2] / "policies" / "builtin-kv-deletion-protection" / "definition.json"
    (tmp_path / "good.json").write_text(builtin.read_text())
    bad = json.loads(builtin.read_text())
    bad["properties"]["mode"] = "Microsoft.Network.Data"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    as_admin.reset("estate")
    result = runner.invoke(app, ["scan", "--policies", str(tmp_path), "-f", "json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["policies"] == ["good"]
    assert "not loaded (the others run): bad" in " ".join(result.stderr.split())
    assert "Microsoft.Network.Data" in result.stderr


def test_the_streamed_json_is_the_same_text_as_the_report_encoded_at_once(as_admin):
    """`write_json` makes each row as it is written (a large report is not held twice): the text must not change."""
    import io

    from remediations.azure import Azure
    from remediations.cli.output import to_json, write_json
    from remediations.engine.reader import Scope
    from remediations.engine.run import scan
    from remediations.policy.loader import load_policies
    from remediations.settings import Settings

    as_admin.reset("estate")
    policies = load_policies(Path(__file__).resolve().parents[2] / "policies")
    azure = Azure.from_env()
    try:
        report = scan(Scope((as_admin.subscription_id,)), policies, settings=Settings(), azure=azure)
    finally:
        azure.close()
    assert report.findings and report.plan.changes and report.plan.skipped  # every list has rows
    streamed = io.StringIO()
    write_json(report, streamed)
    assert streamed.getvalue() == to_json(report) + "\n"
