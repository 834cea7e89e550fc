"""A scan report for people (a rich table, or Markdown) and for programs (JSON)."""

from __future__ import annotations

import json
from typing import Any, TextIO

from remediations import display
from remediations.changes import APPROVAL, DEALLOCATED, Change
from remediations.engine.applier import APPLIED
from remediations.engine.run import Report
from remediations.resources import name_of

FORMATS = ("table", "json", "markdown")


def flags(change: Change) -> str:
    marks = []
    if change.irreversible:
        marks.append("IRREVERSIBLE")
    if change.disruptive:
        marks.append("disruptive")
    if APPROVAL in change.requires:
        marks.append("needs approval")
    if DEALLOCATED in change.requires:
        marks.append("needs VM deallocated")
    return ", ".join(marks)


def _rows(report: Report) -> dict[str, list[list[str]]]:
    status = {r.change.id: f"{r.status}{f' ({r.code})' if r.code else ''}" for r in report.results}
    findings = [
        [f.policy.severity, f.policy.id, name_of(str(f.resource.get("id", ""))), f.unreadable or f.policy.title]
        for f in report.findings
    ]
    changes = [
        [
            str(i),
            name_of(c.resource_id),
            ", ".join(c.policy_ids),
            c.summary,
            flags(c),
            status.get(c.id, "planned" if not report.applied else "-"),
        ]
        for i, c in enumerate(report.plan.changes, 1)
    ]
    skipped = [[name_of(s.resource_id), s.policy_id, s.reason, s.detail] for s in report.plan.skipped]
    return {"findings": findings, "changes": changes, "skipped": skipped}


HEADERS = {
    "findings": ["severity", "policy", "resource", "finding"],
    "changes": ["#", "resource", "policies", "change", "flags", "status"],
    "skipped": ["resource", "policy", "reason", "why"],
}


def summary(report: Report) -> str:
    where = ", ".join(report.scope.subscriptions) + (
        f" / {report.scope.resource_group}" if report.scope.resource_group else ""
    )
    done = sum(1 for r in report.results if r.status == APPLIED)
    text = (
        f"{report.resources} resource(s) in {where}: {len(report.findings)} finding(s), "
        f"{len(report.plan.changes)} planned change(s), {len(report.plan.skipped)} left alone"
    )
    if report.applied:
        text += f"; {done} applied"
    else:
        text += "; nothing written (dry run: add --apply to write)"
    return text + f"; {sum(report.calls.values())} Azure call(s)."


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2)


def write_json(report: Report, stream: TextIO) -> None:
    """`to_json` written in chunks as it is encoded: a large report is never held as one string as well."""
    json.dump(report.to_dict(), stream, indent=2)
    stream.write("\n")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    lines = ["# Cryptward scan", "", summary(report), ""]
    titles = {"findings": "Findings", "changes": "Plan", "skipped": "Left alone"}
    for key, rows in _rows(report).items():
        lines += [f"## {titles[key]}", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        lines.append("| " + " | ".join(HEADERS[key]) + " |")
        lines.append("|" + "---|" * len(HEADERS[key]))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    lines += [f"- note: {n}" for n in report.plan.notes]
    return "\n".join(lines).rstrip() + "\n"


def print_table(report: Report, console: Any) -> None:
    from rich.table import Table

    titles = {"findings": "Findings", "changes": "Plan", "skipped": "Left alone (and why)"}
    for key, rows in _rows(report).items():
        if not rows:
            continue
        table = Table(title=titles[key], show_lines=False, expand=True)
        for header in HEADERS[key]:
            table.add_column(header, overflow="fold")
        for row in rows:
            style = "bold red" if key == "changes" and "IRREVERSIBLE" in row[4] else None
            table.add_row(*(display.rich_text(c) for c in row), style=style)
        console.print(table)
    for note in report.plan.notes:
        console.print(f"note: {note}", markup=False)
    console.print(summary(report))


__all__ = ["FORMATS", "flags", "print_table", "summary", "to_json", "to_markdown"]
