"""kv-diagnostic-setting against the sandbox, as the bot with its deployed roles: a vault whose existing setting already
sends something to the workspace gets that setting extended (a second setting for the same workspace and category is
refused with 409 Conflict), everything in it kept, and a second run writes nothing."""

from remediations.engine.reader import Scope
from remediations.engine.run import scan
from tests.engine.test_run import POLICIES, ids, settings_for, writes_by

DIAG_API = "2021-05-01-preview"
ONLY = [p for p in POLICIES if p.id == "kv-diagnostic-setting"]


def _run(sandbox, azure):
    scope = Scope((sandbox.subscription_id,), "rg-app-weu")
    return scan(scope, ONLY, apply=True, settings=settings_for(sandbox), azure=azure)


def test_a_setting_that_sends_metrics_to_the_workspace_is_extended_not_duplicated(
    sandbox, grant_custom_role, as_bot, azure_as
):
    sandbox.reset("estate")
    grant_custom_role("bot")
    admin = azure_as("admin")
    rg = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu"
    vault = f"{rg}/providers/Microsoft.KeyVault/vaults/kv-weu-app"
    settings = f"{vault}/providers/Microsoft.Insights/diagnosticSettings"
    metrics = [{"category": "AllMetrics", "enabled": True}]
    workspace = ids(sandbox)["workspace"]
    admin.write(
        "PUT", f"{settings}/metrics-only", DIAG_API, {"properties": {"workspaceId": workspace, "metrics": metrics}}
    )

    report = _run(sandbox, as_bot())

    assert [(r.change.summary.split(",")[0], r.status) for r in report.results] == [
        ("Extend diagnostic setting metrics-only of key vault kv-weu-app", "applied")
    ]
    (setting,) = admin.list(settings, DIAG_API)
    assert setting["name"] == "metrics-only"
    assert setting["properties"]["workspaceId"].lower() == workspace.lower()
    assert [(m["category"], m["enabled"]) for m in setting["properties"]["metrics"]] == [("AllMetrics", True)]
    assert [(e["categoryGroup"], e["enabled"]) for e in setting["properties"]["logs"]] == [("audit", True)]
    since = len(sandbox.calls())
    again = _run(sandbox, as_bot())
    assert list(again.results) == []
    assert writes_by(sandbox, "bot", since) == []
