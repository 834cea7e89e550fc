"""The compliance report as text: Markdown (for a pull request, a ticket or a wiki) and rich tables (a terminal).

Also the pieces the HTML page shares (property transitions, the headline, resource kinds) and the README's policy
table (`policy_table`, printed by scripts/policy_table.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from remediations import display
from remediations.engine import applier
from remediations.policy.loader import Policy, first_sentence
from remediations.report.compliance import (
    CANNOT_READ,
    LABELS,
    LEFT_ALONE,
    PLANNED,
    ComplianceReport,
    Item,
    PolicyStatus,
    azure_policy_url,
)

# --- pieces shared with the HTML page -------------------------------------------------------------------------------

KINDS = {
    "microsoft.keyvault/vaults": "key vault",
    "microsoft.keyvault/vaults/keys": "key",
    "microsoft.compute/disks": "managed disk",
    "microsoft.compute/diskencryptionsets": "disk encryption set",
    "microsoft.compute/virtualmachines": "VM",
}


def kind_of(resource_type: str) -> str:
    return KINDS.get(resource_type.lower(), resource_type)


def _value(value: Any, limit: int = 90) -> str:
    if value is None:
        return "(not set)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def transitions(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """(property, before, after) per property a change sets; one row of whole values when they are not objects."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return [("", _value(before), _value(after))] if before is not None or after is not None else []
    keys = list(dict.fromkeys([*before, *after]))
    return [(str(k).removeprefix("properties."), _value(before.get(k)), _value(after.get(k))) for k in keys]


def percent_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def headline(report: ComplianceReport) -> str:
    """One sentence: scope, compliance, and what happens to the findings."""
    t = report.totals()
    waiting = t[applier.PENDING_APPROVAL] + t[applier.PENDING_DEALLOCATION]
    failed = t[applier.FAILED] + t[applier.REFUSED] + t[CANNOT_READ]
    text = (
        f"{t['resources']} resource(s) in {report.scope_text}, {t['policies']} policies: "
        f"{percent_text(report.percent)} of {t['checks']} checks compliant; {t['findings']} finding(s): "
    )
    parts = [f"{t[PLANNED]} to fix", f"{waiting} waiting", f"{t[LEFT_ALONE]} left alone"]
    if report.scan.applied:
        parts.insert(0, f"{t[applier.APPLIED]} fixed now")
    if t[applier.BLOCKED]:
        parts.append(f"{t[applier.BLOCKED]} blocked")
    parts.append(f"{failed} failed or unreadable")
    return text + ", ".join(parts) + "."


# --- the policy table (README) and the mapping ----------------------------------------------------------------------


class _Md(str):
    """A cell Cryptward wrote as Markdown on purpose (a policy id in code, a link to Microsoft): not escaped."""


def _cell(text: str, *, trusted: bool = False) -> str:
    """One table cell. Text from a resource is shown as itself (display.markdown); Cryptward's own Markdown (`_Md`)
    and the policies' own metadata (`trusted`) keep their formatting."""
    if trusted or isinstance(text, _Md):
        return text.replace("|", "\\|").replace("\n", " ")
    return display.markdown(text).replace("\n", " ")


def policy_table(policies: Sequence[Policy]) -> str:
    """The README's "What it checks" table, in Markdown, generated from the policies (scripts/policy_table.py)."""
    lines = [
        "| id | what | severity | mode | fix | irreversible | CIS | Azure Policy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted(policies, key=lambda p: p.id):
        refs = p.references
        azure = f"[{refs.azure_policy}]({azure_policy_url(refs.azure_policy)})" if refs.azure_policy else "—"
        cells = [
            f"`{p.id}`",
            p.title,
            p.severity,
            p.mode,
            f"`{p.fix.name}`" if p.fix else "— (reports only)",
            "yes" if p.irreversible else "no",
            refs.cis.removeprefix("CIS Azure ").strip() if refs.cis else "—",
            azure,
        ]
        lines.append("| " + " | ".join(_cell(c, trusted=True) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def status_text(item: Item) -> str:
    text = LABELS[item.status]
    if item.reason and item.status == LEFT_ALONE:
        text += f" ({item.reason})"
    if item.also_needs_deallocation:
        text += ", then for VM deallocation"
    if item.irreversible and item.status not in (applier.APPLIED, applier.ALREADY):
        text += ", IRREVERSIBLE"
    if item.since:
        text += f", since {item.since:%Y-%m-%d}"
    return text


def change_text(before: Any, after: Any) -> str:
    return "; ".join(f"{k + ': ' if k else ''}{b} → {a}" for k, b, a in transitions(before, after))


def mapping_rows(report: ComplianceReport) -> list[tuple[Policy, str, str, str]]:
    """(policy, CIS id, Azure Policy guid, seed section) per policy, "" when there is none."""
    rows = []
    for status in report.policies:
        refs = status.policy.references
        rows.append((status.policy, refs.cis or "", refs.azure_policy or "", refs.seed or ""))
    return rows


def policy_counts(status: PolicyStatus) -> dict[str, int]:
    return {
        "to fix": status.count(PLANNED),
        "waiting": status.count(applier.PENDING_APPROVAL, applier.PENDING_DEALLOCATION),
        "left alone": status.count(LEFT_ALONE, applier.BLOCKED),
        "failed": status.count(applier.FAILED, applier.REFUSED, CANNOT_READ),
    }


# --- Markdown --------------------------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return ["None.", ""]
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c if isinstance(c, _Md) else str(c)) for c in row) + " |" for row in rows]
    return [*out, ""]


def _md_policy(status: PolicyStatus) -> list[str]:
    p = status.policy
    flags = [p.severity, f"mode {status.mode}", *(["irreversible"] if p.irreversible else [])]
    lines = [f"### `{p.id}`: {p.title}", "", f"_{', '.join(flags)}._ {first_sentence(p.description)}", ""]
    if not status.checked:
        return [*lines, "No resource in scope is of the type this policy checks.", ""]
    lines += [f"{status.compliant} of {status.checked} compliant ({percent_text(status.percent)}).", ""]
    if status.items:
        rows = [
            [i.resource_id.rsplit("/", 1)[-1], status_text(i), i.detail, change_text(i.before, i.after)]
            for i in status.items
        ]
        lines += _table(["resource", "status", "what / why", "before → after"], rows)
    if status.history:
        lines += ["Done earlier (ledger):", ""]
        rows = [
            [f"{d.time:%Y-%m-%d %H:%M}", d.resource_id.rsplit("/", 1)[-1], d.result, change_text(d.before, d.after)]
            for d in status.history
        ]
        lines += _table(["when (UTC)", "resource", "result", "before → after"], rows)
    return lines


def rollup_rows(report: ComplianceReport) -> list[list[str]]:
    """The roll-up per management group and subscription, when the scope holds more than one subscription or
    named a group (one subscription alone needs none)."""
    rows = report.rollup()
    if len([r for r in rows if r.subscription]) < 2 and not report.groups:
        return []
    out = []
    for r in rows:
        compliant = f"{r.passed}/{r.checks}"
        out.append([r.group or "—", r.subscription or "(all)", str(r.resources), compliant, percent_text(r.percent)])
        out[-1].append(str(r.findings))
    return out


def to_markdown(report: ComplianceReport) -> str:
    t = report.totals()
    lines = [
        "# Cryptward compliance report",
        "",
        f"{headline(report)}",
        "",
        f"Generated {report.generated:%Y-%m-%d %H:%M} UTC from a read-only scan"
        + (" that applied its plan." if report.scan.applied else " (nothing was written)."),
        "",
    ]
    if report.history.problem:
        lines += [f"> {display.markdown(report.history.problem)}", ""]
    lines += ["## Compliance by policy", ""]
    rows = []
    for s in report.policies:
        c = policy_counts(s)
        rows.append(
            [_Md(f"`{s.policy.id}`"), s.policy.severity, s.mode, f"{s.compliant}/{s.checked}", percent_text(s.percent)]
            + [str(v) for v in c.values()]
        )
    lines += _table(["policy", "severity", "mode", "compliant", "%", *_COUNTS], rows)
    earlier = f"; {t['applied earlier']} change(s) applied earlier (ledger)" if not report.history.problem else ""
    lines += [
        f"Overall: {report.passed}/{report.checks} checks compliant ({percent_text(report.percent)}){earlier}.",
        "",
    ]
    if rollup := rollup_rows(report):
        lines += ["## Compliance by management group and subscription", ""]
        lines += _table(["management group", "subscription", "resources", "compliant", "%", "findings"], rollup)
    lines += ["## Policies", ""]
    for status in report.policies:
        lines += _md_policy(status)
    lines += ["## Resources", ""]
    rows = [
        [
            r.name,
            kind_of(r.type),
            r.group,
            r.location,
            f"{len(r.checked) - len({i.policy_id for i in r.items})}/{len(r.checked)}",
            "; ".join(f"{i.policy_id}: {status_text(i)}" for i in r.items) or "compliant",
            str(sum(1 for d in r.history if d.result == applier.APPLIED)),
        ]
        for r in report.resources
    ]
    lines += _table(["resource", "kind", "group", "location", "compliant", "findings", "fixed earlier"], rows)
    lines += ["## Encryption at host or Azure Disk Encryption, per VM and scale set", ""]
    if not report.vms:
        lines += ["No VM was read in this scope.", ""]
    for vm in report.vms:
        a, md = vm.advice, display.markdown
        kind = "" if vm.kind == "VM" else f", {vm.kind}"
        lines += [f"### {md(vm.name)} ({md(vm.size)}, {md(vm.os_type)}{kind})", "", f"- Now: {md(vm.current)}."]
        lines += [f"- Disks: {md('; '.join(vm.disks))}."] if vm.disks else []
        lines += [f"- **Recommended: {a.recommended or 'neither, as it is'}.** {md(a.summary)}"]
        for option, label in ((a.eah, "Encryption at host"), (a.ade, "Azure Disk Encryption")):
            reasons = md(" ".join(option.reasons))
            lines.append(f"- {label}: {'available' if option.available else 'not available'}. {reasons}".rstrip())
        lines.append("")
    lines += ["## Mapping to the CIS Azure benchmark and Azure Policy", ""]
    rows = [
        [
            _Md(f"`{p.id}`"),
            p.title,
            cis or "—",
            _Md(f"[{guid}]({azure_policy_url(guid)})") if guid else "—",
            seed or "—",
        ]
        for p, cis, guid, seed in mapping_rows(report)
    ]
    lines += _table(["policy", "what", "CIS Azure", "Azure Policy built-in", "seed section"], rows)
    lines += [f"- note: {display.markdown(n)}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


# --- rich tables -----------------------------------------------------------------------------------------------------


def print_table(report: ComplianceReport, console: Any) -> None:
    from rich.table import Table

    def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if not rows:
            return
        out = Table(title=title, expand=True, title_justify="left")
        for header in headers:
            out.add_column(header, overflow="fold")
        for row in rows:
            out.add_row(*(display.rich_text(c) for c in row))
        console.print(out)

    console.print("[bold]Cryptward compliance report[/]", highlight=False)
    if report.history.problem:
        console.print(f"note: {report.history.problem}", highlight=False, markup=False)
    rows = [
        [s.policy.id, s.policy.severity, s.mode, f"{s.compliant}/{s.checked}", percent_text(s.percent)]
        + [str(v) for v in policy_counts(s).values()]
        for s in report.policies
    ]
    table("Compliance by policy", ["policy", "severity", "mode", "compliant", "%", *_COUNTS], rows)
    headers = ["management group", "subscription", "resources", "compliant", "%", "findings"]
    table("Compliance by management group and subscription", headers, rollup_rows(report))
    rows = [
        [s.policy.id, i.resource_id.rsplit("/", 1)[-1], status_text(i), i.detail, change_text(i.before, i.after)]
        for s in report.policies
        for i in s.items
    ]
    table("Findings", ["policy", "resource", "status", "what / why", "before → after"], rows)
    rows = [
        [
            f"{d.time:%Y-%m-%d %H:%M}",
            d.resource_id.rsplit("/", 1)[-1],
            d.policy,
            d.result,
            change_text(d.before, d.after),
        ]
        for r in report.resources
        for d in r.history
    ]
    table("Done earlier (ledger)", ["when (UTC)", "resource", "policy", "result", "before → after"], rows)
    rows = [[vm.name, vm.size, vm.current, vm.advice.recommended or "neither", vm.advice.summary] for vm in report.vms]
    table("Encryption at host or ADE, per VM and scale set", ["VM", "size", "now", "recommended", "why"], rows)
    rows = [[p.id, cis or "-", guid or "-", seed or "-"] for p, cis, guid, seed in mapping_rows(report)]
    table("Mapping", ["policy", "CIS Azure", "Azure Policy built-in", "seed section"], rows)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    console.print(headline(report), highlight=False)


_COUNTS = ("to fix", "waiting", "left alone", "failed")


__all__ = [
    "change_text",
    "headline",
    "kind_of",
    "policy_table",
    "print_table",
    "rollup_rows",
    "status_text",
    "to_markdown",
]
