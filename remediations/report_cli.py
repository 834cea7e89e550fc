"""`cryptward report`: a read-only scan and the ledger's history, as a table, Markdown or a self-contained HTML page.

Exit codes as `cryptward scan`: 0 compliant, 1 findings, 2 error (the message says which, and what to do).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from remediations.errors import (
    AzureAccessError,
    CredentialError,
    PolicyLoadError,
    SettingsError,
    UnknownPolicyError,
    options_text,
)
from remediations.scan import _UNKNOWN_SUBSCRIPTION, COMPLIANT, ERROR, FINDINGS, _progress

if TYPE_CHECKING:
    from remediations.report import ComplianceReport

FORMATS = ("table", "markdown", "html")


def run(
    subscriptions: Sequence[str],
    resource_group: str | None,
    policy_ids: Sequence[str],
    *,
    output: str = "table",
    file: str | None = None,
    policies_dir: str | None = None,
) -> int:
    from rich.console import Console

    err = Console(stderr=True)

    def fail(message: str) -> int:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        return ERROR

    if output not in FORMATS:
        return fail(f"unknown format {output!r}{options_text(FORMATS)}")
    subs = tuple(subscriptions) or tuple(s for s in [os.environ.get("AZURE_SUBSCRIPTION_ID", "").strip()] if s)
    if not subs:
        return fail("no subscription: pass --subscription ID or set AZURE_SUBSCRIPTION_ID")
    try:
        from remediations.azure import Azure
        from remediations.engine import select
        from remediations.policy import load_policies
        from remediations.reader import Scope
        from remediations.report import generate
        from remediations.settings import Settings

        settings = Settings.from_env()
        policies = select(load_policies(Path(policies_dir) if policies_dir else settings.policies), policy_ids)
        azure = Azure.from_env()
        try:
            with _progress(err) as step:
                report = generate(Scope(subs, resource_group), policies, settings=settings, azure=azure, progress=step)
        finally:
            azure.close()
    except PolicyLoadError as e:
        return fail(f"the policies folder is not valid:\n{e}")
    except (UnknownPolicyError, SettingsError) as e:
        return fail(str(e))
    except CredentialError as e:
        return fail(
            'no credentials: run `az login` (or `eval "$(python -m sandbox env)"` for the sandbox), or run where a '
            f"managed identity is available.\n{e.message}"
        )
    except AzureAccessError as e:
        if e.code in _UNKNOWN_SUBSCRIPTION:
            return fail(f"unknown subscription among {', '.join(subs)}: {e.message}")
        return fail(f"Azure refused the scan: {e}")
    try:
        _write(report, output, file)
    except OSError as e:
        return fail(f"cannot write {file}: {e}")
    if file:
        err.print(f"report written to {file}", highlight=False)
    return COMPLIANT if report.compliant else FINDINGS


def _write(report: ComplianceReport, output: str, file: str | None) -> None:
    from rich.console import Console

    from remediations import report_html, report_text

    if output == "table":
        if file:
            with open(file, "w", encoding="utf-8") as fh:
                report_text.print_table(report, Console(file=fh, width=160))
        else:
            report_text.print_table(report, Console(width=None if sys.stdout.isatty() else 160))
        return
    text = report_html.render(report) if output == "html" else report_text.to_markdown(report)
    if file:
        Path(file).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


__all__ = ["FORMATS", "run"]
