"""The compliance report as one self-contained HTML page: inline CSS, no scripts, fonts, images or anything fetched
(a Content-Security-Policy says so to the browser), readable on screen and on paper.

    page = render(report)       # str: <!doctype html> ...

Order: a summary header (totals, overall compliance, compliance per policy), then one section per policy, the
resources, the EAH-or-ADE advice per VM, the mapping to CIS and Azure Policy, and notes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from remediations import display
from remediations.engine import applier
from remediations.policy.loader import first_sentence
from remediations.report.compliance import (
    CANNOT_READ,
    CIS_BENCHMARK,
    LABELS,
    LEFT_ALONE,
    PLANNED,
    ComplianceReport,
    Done,
    Item,
    PolicyStatus,
    VmAdvice,
    azure_policy_url,
)
from remediations.report.text import headline, kind_of, percent_text, policy_counts, rollup_rows, transitions

CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--accent:#0b5cad;
  --good:#1a7f37;--good-bg:#dafbe1;--warn:#8a5a00;--warn-bg:#fff1c2;--bad:#c0262d;--bad-bg:#ffe3e3;
  --info:#0b5cad;--info-bg:#ddf4ff;--odd:#6639ba;--odd-bg:#f1e8ff;--grey-bg:#eaeef2}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
  "Helvetica Neue","DejaVu Sans",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:0 28px 40px}
header.top{background:#0f2a44;color:#fff;padding:22px 28px 20px;margin:0 -28px 22px}
header.top .brand{font-size:12px;letter-spacing:.08em;text-transform:uppercase;opacity:.8}
header.top h1{margin:4px 0 6px;font-size:24px;font-weight:600}
header.top p{margin:0;opacity:.9;font-size:13px}
h2{font-size:19px;margin:30px 0 10px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:0 0 4px}
p{margin:6px 0}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
  background:var(--soft);padding:1px 4px;border-radius:4px}
a{color:var(--accent)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(124px,1fr));gap:10px;margin:0 0 12px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fff}
.tile .n{font-size:26px;font-weight:650;line-height:1.1}
.tile .l{color:var(--muted);font-size:12px}
.tile.big{grid-column:span 2;background:var(--soft)}
.tile.good .n{color:var(--good)}.tile.warn .n{color:var(--warn)}
.tile.bad .n{color:var(--bad)}.tile.info .n{color:var(--info)}
.lead{font-size:15px;margin:4px 0 12px}
.note{border-left:4px solid var(--warn);background:var(--warn-bg);padding:8px 12px;border-radius:4px;margin:10px 0}
.note.ok{border-color:var(--good);background:var(--good-bg)}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13px}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid var(--line)}
th{background:var(--soft);font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;white-space:nowrap}
td.pc{white-space:nowrap}
td.zero{color:#aab3bd}
.bar{display:inline-block;width:120px;height:10px;background:var(--grey-bg);border-radius:5px;overflow:hidden;
  vertical-align:middle;margin-right:8px}
.bar span{display:block;height:100%}
.bar .good{background:var(--good)}.bar .warn{background:#d29922}.bar .bad{background:var(--bad)}
.pct{display:inline-block;width:40px;text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:11.5px;font-weight:600;white-space:nowrap}
.s-failed,.s-refused,.s-cannot-read,.sev-high{background:var(--bad-bg);color:var(--bad)}
.s-pending-approval,.s-pending-deallocation,.s-waiting-for-role,.sev-medium{background:var(--warn-bg);color:var(--warn)}
.s-planned{background:var(--info-bg);color:var(--info)}
.s-applied,.s-already-compliant,.s-compliant{background:var(--good-bg);color:var(--good)}
.s-blocked{background:var(--odd-bg);color:var(--odd)}
.s-left-alone,.sev-low,.mode{background:var(--grey-bg);color:var(--muted)}
.irrev{background:var(--bad);color:#fff}
article.policy{border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:0 0 12px}
article.policy.clean{padding:8px 14px}
article.policy .head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
article.policy .desc{color:var(--muted)}
.chg div{overflow-wrap:anywhere}
.chg .k{color:var(--muted)}
.chg .b{text-decoration:line-through;color:var(--bad)}
.chg .a{color:var(--good);font-weight:600}
.rid{font-weight:600}
.sub{color:var(--muted);font-size:12px}
.vms{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:12px}
.vm{border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.vm .rec{font-weight:600;margin:6px 0}
.vm ul{margin:6px 0 0;padding-left:18px}
.opt-yes{color:var(--good);font-weight:600}.opt-no{color:var(--bad);font-weight:600}
footer{margin-top:30px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:10px}
@media print{
  body{font-size:10pt}
  main{max-width:none;padding:0}
  header.top{background:none;color:var(--ink);margin:0 0 12px;padding:0 0 8px;border-bottom:2px solid var(--ink)}
  a{color:inherit;text-decoration:none}
  tr,article.policy,.vm,.tile{break-inside:avoid}
  h2,h3{break-after:avoid}
  .bar,.badge,.tile{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  @page{margin:14mm}
}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(text: object) -> str:
    return display.html(text)


def _badge(text: str, cls: str) -> str:
    return f'<span class="badge {cls}">{_e(text)}</span>'


def _status(item: Item) -> str:
    out = _badge(LABELS[item.status], f"s-{item.status}")
    if item.status == LEFT_ALONE and item.reason:
        out += f' <span class="sub">{_e(item.reason)}</span>'
    if item.also_needs_deallocation:
        out += f" {_badge('then VM deallocation', 's-pending-deallocation')}"
    if item.irreversible and item.status not in (applier.APPLIED, applier.ALREADY):
        out += f" {_badge('irreversible', 'irrev')}"
    if item.since:
        out += f'<div class="sub">since {item.since:%Y-%m-%d}</div>'
    return out


def _change(before: object, after: object) -> str:
    rows = []
    for key, b, a in transitions(before, after):
        label = f'<span class="k">{_e(key)}</span> ' if key else ""
        rows.append(f'<div>{label}<span class="b">{_e(b)}</span> → <span class="a">{_e(a)}</span></div>')
    return f'<div class="chg">{"".join(rows)}</div>' if rows else ""


def _resource(resource_id: str) -> str:
    name = resource_id.rstrip("/").rsplit("/", 1)[-1]
    return f'<span class="rid" title="{_e(resource_id)}">{_e(name)}</span>'


def _bar(percent: float | None) -> str:
    if percent is None:
        return '<span class="sub">not applicable</span>'
    tone = "good" if percent >= 90 else "warn" if percent >= 50 else "bad"
    return (
        f'<span class="bar"><span class="{tone}" style="width:{percent:.0f}%"></span></span>'
        f'<span class="pct">{percent_text(percent)}</span>'
    )


def _num(value: int) -> str:
    return f'<td class="num{" zero" if not value else ""}">{value}</td>'


def _table(headers: Sequence[str], rows: Iterable[str], nums: Sequence[int] = ()) -> str:
    head = "".join(f"<th{' class=num' if i in nums else ''}>{_e(h)}</th>" for i, h in enumerate(headers))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


# --- sections --------------------------------------------------------------------------------------------------------


def _summary(report: ComplianceReport) -> str:
    t = report.totals()
    waiting = t[applier.PENDING_APPROVAL] + t[applier.PENDING_DEALLOCATION]
    failed = t[applier.FAILED] + t[applier.REFUSED] + t[CANNOT_READ]
    pct = report.percent
    tone = "good" if pct is not None and pct >= 90 else "warn" if pct is not None and pct >= 50 else "bad"
    tiles = [
        ("big " + tone, percent_text(pct), f"overall compliance: {report.passed} of {report.checks} checks"),
        ("", str(t["resources"]), "resources checked"),
        ("bad" if t["findings"] else "good", str(t["findings"]), "findings"),
        ("info", str(t[PLANNED]), "to fix automatically"),
        ("warn", str(waiting), f"waiting ({t[applier.PENDING_APPROVAL]} approval, "
         f"{t[applier.PENDING_DEALLOCATION]} deallocation)"),
        ("", str(t[LEFT_ALONE] + t[applier.BLOCKED]), "left alone, with reasons"),
        ("bad" if failed else "", str(failed), "failed or unreadable"),
    ]  # fmt: skip
    if report.scan.applied:
        tiles.insert(3, ("good", str(t[applier.APPLIED]), "fixed in this run"))
    if not report.history.problem:
        tiles.append(("good", str(t["applied earlier"]), "fixed earlier (ledger)"))
    body = "".join(
        f'<div class="tile {cls}"><div class="n">{_e(n)}</div><div class="l">{_e(label)}</div></div>'
        for cls, n, label in tiles
    )
    return f'<section id="summary"><div class="tiles">{body}</div><p class="lead">{_e(headline(report))}</p></section>'


def _by_policy(report: ComplianceReport) -> str:
    rows = []
    for s in report.policies:
        counts = policy_counts(s)
        rows.append(
            f'<tr><td><a href="#p-{_e(s.policy.id)}"><code>{_e(s.policy.id)}</code></a>'
            f'<div class="sub">{_e(s.policy.title)}</div></td>'
            f"<td>{_badge(s.policy.severity, 'sev-' + s.policy.severity)}</td><td>{_badge(s.mode, 'mode')}</td>"
            f'<td class="num">{s.compliant}/{s.checked}</td><td class="pc">{_bar(s.percent)}</td>'
            + "".join(_num(v) for v in counts.values())
            + "</tr>"
        )
    headers = ["policy", "severity", "mode", "compliant", "compliance", "to fix", "waiting", "left alone", "failed"]
    return (
        '<section id="by-policy"><h2>Compliance by policy</h2>'
        '<p class="sub">Compliance is the share of the resources in scope a policy applies to that comply; a resource '
        "that could not be read counts as not compliant.</p>"
        f"{_table(headers, rows, nums=(3, 5, 6, 7, 8))}</section>"
    )


def _rollup(report: ComplianceReport) -> str:
    rows = ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rollup_rows(report)]
    if not rows:
        return ""
    headers = ["management group", "subscription", "resources", "compliant", "%", "findings"]
    return (
        '<section id="by-scope"><h2>Compliance by management group and subscription</h2>'
        f"{_table(headers, rows, nums=(2, 3, 4, 5))}</section>"
    )


def _history_rows(done: Sequence[Done]) -> list[str]:
    return [
        f"<tr><td>{d.time:%Y-%m-%d %H:%M}</td><td>{_resource(d.resource_id)}</td>"
        f"<td>{_badge(d.result, 's-' + d.result)}</td><td>{_e(d.caller)}</td><td>{_change(d.before, d.after)}</td></tr>"
        for d in done
    ]


def _policy(s: PolicyStatus) -> str:
    p = s.policy
    badges = _badge(p.severity, "sev-" + p.severity) + " " + _badge(f"mode: {s.mode}", "mode")
    if p.irreversible:
        badges += " " + _badge("irreversible", "irrev")
    head = (
        f'<div class="head"><h3><code>{_e(p.id)}</code> {_e(p.title)}</h3>{badges}'
        f'<span class="sub">{s.compliant} of {s.checked} compliant</span></div>'
    )
    if not s.checked:
        return (
            f'<article class="policy clean" id="p-{_e(p.id)}">{head}'
            '<p class="sub">No resource in scope is of the type this policy checks.</p></article>'
        )
    if not s.items and not s.history:
        return f'<article class="policy clean" id="p-{_e(p.id)}">{head}</article>'
    parts = [head, f'<p class="desc">{_e(first_sentence(p.description))}</p>']
    if s.items:
        rows = [
            f"<tr><td>{_resource(i.resource_id)}</td><td>{_status(i)}</td><td>{_e(i.detail)}</td>"
            f"<td>{_change(i.before, i.after)}</td></tr>"
            for i in s.items
        ]
        parts.append(_table(["resource", "status", "what / why", "before → after"], rows))
    if s.history:
        parts.append("<p><b>Done earlier</b> (from the ledger):</p>")
        parts.append(_table(["when (UTC)", "resource", "result", "by", "before → after"], _history_rows(s.history)))
    return f'<article class="policy" id="p-{_e(p.id)}">{"".join(parts)}</article>'


def _resources(report: ComplianceReport) -> str:
    rows = []
    for r in report.resources:
        findings = " ".join(
            f"<div><code>{_e(i.policy_id)}</code> {_badge(LABELS[i.status], 's-' + i.status)}</div>" for i in r.items
        )
        fixed = sum(1 for d in r.history if d.result == applier.APPLIED)
        ok = len(r.checked) - len({i.policy_id for i in r.items})
        rows.append(
            f"<tr><td>{_resource(r.resource_id)}<div class='sub'>{_e(r.group)}</div></td><td>{_e(kind_of(r.type))}</td>"
            f"<td>{_e(r.location)}</td><td class='num'>{ok}/{len(r.checked)}</td>"
            f"<td>{findings or _badge('compliant', 's-compliant')}</td>{_num(fixed)}</tr>"
        )
    headers = ["resource", "kind", "location", "policies met", "findings", "fixed earlier"]
    return f'<section id="resources"><h2>Resources</h2>{_table(headers, rows, nums=(3, 5))}</section>'


def _vm(vm: VmAdvice) -> str:
    a = vm.advice
    names = {"encryption-at-host": "encryption at host", "azure-disk-encryption": "Azure Disk Encryption"}
    recommended = names.get(a.recommended or "", "neither, as it is")
    options = []
    for option, label in ((a.eah, "Encryption at host"), (a.ade, "Azure Disk Encryption")):
        verdict = '<span class="opt-yes">available</span>' if option.available else '<span class="opt-no">not '
        verdict += "" if option.available else "available</span>"
        reasons = "".join(f"<li>{_e(r)}</li>" for r in option.reasons)
        options.append(f"<div>{label}: {verdict}<ul>{reasons}</ul></div>")
    disks = f'<div class="sub">Disks: {_e("; ".join(vm.disks))}</div>' if vm.disks else ""
    kind = "" if vm.kind == "VM" else f", {_e(vm.kind)}"
    return (
        f'<div class="vm"><h3>{_resource(vm.vm_id)} <span class="sub">{_e(vm.size)}, {_e(vm.os_type)}{kind}</span></h3>'
        f'<div>Now: {_e(vm.current)}</div>{disks}<div class="rec">Recommended: {_e(recommended)}</div>'
        f"<p>{_e(a.summary)}</p>{''.join(options)}</div>"
    )


def _vms(report: ComplianceReport) -> str:
    intro = (
        "Encryption at host and Azure Disk Encryption (ADE) both encrypt a VM end to end, and they are mutually "
        "exclusive. Encryption at host also covers temporary disks and caches, costs the VM no CPU, keeps every Azure "
        "Backup restore option and allows customer-managed keys on the disks; ADE runs in the guest (BitLocker, "
        "dm-crypt), needs platform-managed keys, and restores only whole disks in the same region."
    )
    cards = "".join(_vm(vm) for vm in report.vms) or '<p class="sub">No VM was read in this scope.</p>'
    return (
        '<section id="vms"><h2>Encryption at host or Azure Disk Encryption, per VM and scale set</h2>'
        f'<p class="sub">{_e(intro)}</p><div class="vms">{cards}</div></section>'
    )


def _mapping(report: ComplianceReport) -> str:
    rows = []
    for s in report.policies:
        refs = s.policy.references
        guid = (
            f'<a href="{_e(azure_policy_url(refs.azure_policy))}"><code>{_e(refs.azure_policy)}</code></a>'
            if refs.azure_policy
            else "—"
        )
        rows.append(
            f"<tr><td><code>{_e(s.policy.id)}</code></td><td>{_e(s.policy.title)}</td>"
            f"<td>{_e(refs.cis or '—')}</td><td>{guid}</td><td>{_e(refs.seed or '—')}</td></tr>"
        )
    return (
        '<section id="mapping"><h2>Mapping to the CIS Azure benchmark and Azure Policy</h2>'
        f'<p class="sub">Recommendation numbers of the <a href="{CIS_BENCHMARK}">CIS Microsoft Azure Foundations '
        "Benchmark</a> (with its version), and the built-in Azure Policy definition that audits the same thing.</p>"
        f"{_table(['policy', 'what', 'CIS Azure', 'Azure Policy built-in', 'seed section'], rows)}</section>"
    )


def render(report: ComplianceReport) -> str:
    """The whole page."""
    scan = report.scan
    how = "a scan that applied its plan" if scan.applied else "a read-only scan (nothing was written)"
    ledger = (
        f'<div class="note">{_e(report.history.problem)}</div>'
        if report.history.problem
        else '<div class="note ok">History from the ledger: what Cryptward changed earlier, and what waits.</div>'
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    sections = [
        _summary(report),
        ledger,
        _by_policy(report),
        _rollup(report),
        '<section id="policies"><h2>Policies</h2>' + "".join(_policy(s) for s in report.policies) + "</section>",
        _resources(report),
        _vms(report),
        _mapping(report),
        f'<section id="notes"><h2>Notes</h2><ul>{notes}</ul></section>' if notes else "",
    ]
    title = f"Cryptward compliance report: {report.scope_text}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        '<header class="top"><div class="brand">Cryptward · compliance report</div>'
        f"<h1>Encryption hygiene of {_e(report.scope_text)}</h1>"
        f"<p>Generated {report.generated:%Y-%m-%d %H:%M} UTC from {how} · {scan.resources} resources · "
        f"{len(report.policies)} policies · {sum(scan.calls.values())} Azure calls</p></header>"
        + "".join(sections)
        + "<footer>Made by <code>cryptward report --format html</code>. The same data: <code>--format markdown</code>"
        " or <code>--format table</code>. Exit code 0 compliant, 1 findings, 2 error.</footer>"
        "</main></body></html>\n"
    )


__all__ = ["CSS", "render"]
