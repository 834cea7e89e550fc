"""Render the README's example compliance report: docs/report-example.html, and a screenshot docs/report-example.png.

    .venv/bin/python docs/render_report.py        # the PNG needs `chromium` on PATH (scripts/install-chromium.sh)

It starts a sandbox in this process, seeds the `estate` scenario, and runs `cryptward report`'s code as the `reader`
principal (read-only) with an operator's settings: a Log Analytics workspace for key vault logs and the disk
encryption set of westeurope. No ledger is configured, so the report says it shows the current state only.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from remediations.azure import Azure  # noqa: E402
from remediations.changes import PlanSettings  # noqa: E402
from remediations.engine.reader import Scope  # noqa: E402
from remediations.policy.loader import load_policies  # noqa: E402
from remediations.report import html as report_html  # noqa: E402
from remediations.report.compliance import generate  # noqa: E402
from remediations.settings import Settings  # noqa: E402
from sandbox.runner import start_in_thread  # noqa: E402
from sandbox.testing import SandboxHandle  # noqa: E402

DOCS = ROOT / "docs"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        running = start_in_thread(Path(tmp) / "sandbox")
        ca = ssl.create_default_context(cafile=str(running.ca))
        admin = httpx.Client(base_url=running.base_url, verify=ca, headers={"x-sandbox-key": running.sandbox.admin_key})
        sandbox = SandboxHandle(running, admin)
        try:
            os.environ.update(sandbox.env())
            os.environ["AZURE_CLIENT_ID"] = sandbox.principal("reader").client_id
            os.environ.pop("AzureWebJobsStorage", None)
            sandbox.reset("estate")
            sub = f"/subscriptions/{sandbox.subscription_id}"
            plan = PlanSettings(
                workspace_id=f"{sub}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/"
                "law-cryptward",
                disk_encryption_sets={
                    "westeurope": {
                        "EncryptionAtRestWithCustomerKey": f"{sub}/resourceGroups/rg-keys-weu/providers/"
                        "Microsoft.Compute/diskEncryptionSets/des-weu"
                    }
                },
            )
            azure = Azure.from_env()
            report = generate(
                Scope((sandbox.subscription_id,)), load_policies(ROOT / "policies"), settings=Settings(plan=plan),
                azure=azure,
            )  # fmt: skip
            azure.close()
        finally:
            admin.close()
            running.stop()
    page = DOCS / "report-example.html"
    page.write_text(report_html.render(report), encoding="utf-8")
    print(f"wrote docs/report-example.html ({page.stat().st_size} bytes)")
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("no chromium on PATH: docs/report-example.png not made", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        flags += ["--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp}/u"]
        flags += [f"--screenshot={DOCS / 'report-example.png'}", "--window-size=1280,1500", page.as_uri()]
        subprocess.run([browser, *flags], check=True, capture_output=True, timeout=120)
    print("wrote docs/report-example.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
