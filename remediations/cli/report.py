"""`cryptward report`: a read-only scan and the ledger's history, as a table, Markdown or a self-contained HTML page.

Exit codes as `cryptward scan`: 0 compliant, 1 findings, 2 error (the message says which, and what to do).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediations.cli.scan import command

if TYPE_CHECKING:
    from remediations.report.compliance import ComplianceReport

FORMATS = ("table", "markdown", "html")


def run(
    subscriptions: Sequence[str],
    resource_group: str | None,
    policy_ids: Sequence[str],
    *,
    output: str = "table",
    file: str | None = None,
    policies_dir: str | None = None,
    management_groups: Sequence[str] = (),
) -> int:
    def produce(
        scope: Any, policies: Any, settings: Any, azure: Any, step: Callable[[str], None], groups: Any = None
    ) -> Any:
        from remediations.report.compliance import generate

        return generate(scope, policies, settings=settings, azure=azure, progress=step, groups=groups)

    def write(report: ComplianceReport) -> None:
        _write(report, output, file)
        if file:
            Console(stderr=True).print(f"report written to {file}", highlight=False)

    from rich.console import Console

    return command(
        subscriptions, resource_group, policy_ids, output=output, formats=FORMATS, policies_dir=policies_dir,
        produce=produce, write=write, management_groups=management_groups,
    )  # fmt: skip


def _write(report: ComplianceReport, output: str, file: str | None) -> None:
    from rich.console import Console

    from remediations.report import html as report_html
    from remediations.report import text as report_text

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
