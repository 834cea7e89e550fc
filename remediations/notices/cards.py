"""A notice as a Teams message: one Adaptive Card (1.4) per resource per run. Pure.

    body = fit(notice)            # the encoded message, under MAX_BYTES: lines beyond what fits become a digest
    message(card(notice))         # the envelope a Teams Workflows webhook takes, unencoded

The card says what changed (before -> after) under which policy and why, links to the resource in the portal,
says how to exempt it, and carries approve / deny buttons (Action.OpenUrl: Workflows cannot deliver Action.Submit)
for changes waiting for approval. Lines are ordered by urgency (failed, escalated, pending, applied, skipped), so a
digest keeps the ones a person must act on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from remediations import display
from remediations.engine.applier import Status
from remediations.notices import compose as n

if TYPE_CHECKING:
    from remediations.notices.compose import Line, Notice

ADAPTIVE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_BYTES = 27 * 1024  # Teams takes ~28 KB per message; keep a margin for what the service adds
_ORDER = {n.FAILED: 0, n.ESCALATED: 1, n.PENDING: 2, n.APPLIED: 3, n.SKIPPED: 4}
_LABEL = {
    n.APPLIED: ("Applied", "Good"),
    n.PENDING: ("Waiting", "Warning"),
    n.SKIPPED: ("Left alone", "Default"),
    n.FAILED: ("Failed", "Attention"),
    n.ESCALATED: ("Needs a person", "Attention"),
}
_STATUS: dict[str, str] = {  # by Line.status: the applier status (or skip reason) a label says more about
    Status.PENDING_APPROVAL: "Waiting for approval",
    Status.PENDING_DEALLOCATION: "Waiting for the VM to be deallocated",
    Status.BLOCKED: "Needs a person (blocked)",
    Status.REFUSED: "Needs a person (refused)",
}
_VALUE_CHARS = 160


def _md(text: str) -> str:
    """Text from Azure or from tags, shown as itself: TextBlocks and facts render markdown (`_` in a disk name
    would italicize; a tag value could forge a link)."""
    return display.markdown(text)


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _value(value: Any) -> str:
    if value is None:
        return "(not set)"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _facts(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, str]]:
    paths = list(dict.fromkeys([*after, *before]))
    return [{"title": _md(p), "value": _md(f"{_value(before.get(p))} → {_value(after.get(p))}")} for p in paths]


def ordered(lines: tuple[Line, ...]) -> list[Line]:
    return sorted(lines, key=lambda line: _ORDER[line.kind])


def _line(line: Line) -> dict[str, Any]:
    label, colour = _LABEL[line.kind]
    label = _STATUS.get(line.status, label)
    items: list[dict[str, Any]] = [_text(f"{label}: {_md(line.title)}", weight="Bolder", color=colour)]
    if line.summary:
        items.append(_text(_md(line.summary), spacing="Small"))
    if line.before or line.after:
        items.append({"type": "FactSet", "facts": _facts(line.before, line.after)})
    notes = [f"Why: {line.why}" if line.why else ""]
    if line.detail and line.kind != n.APPLIED:
        notes.append(line.detail[:1].upper() + line.detail[1:])
    if line.policy_ids:
        notes.append(f"Policy: {', '.join(line.policy_ids)}")
    items += [_text(_md(t), isSubtle=True, size="Small", spacing="None") for t in notes if t]
    if line.approve_url and line.deny_url:
        items.append(
            {
                "type": "ActionSet",
                "actions": [
                    {"type": "Action.OpenUrl", "title": "Approve", "url": line.approve_url, "style": "positive"},
                    {"type": "Action.OpenUrl", "title": "Deny", "url": line.deny_url, "style": "destructive"},
                ],
            }
        )
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _tally(counts: Mapping[str, int]) -> str:
    words: dict[str, str] = {n.APPLIED: "applied", n.PENDING: "waiting", n.SKIPPED: "left alone", n.FAILED: "failed"}
    words[n.ESCALATED] = "need a person"
    return ", ".join(f"{count} {words[kind]}" for kind, count in counts.items())


def _header(notice: Notice) -> list[dict[str, Any]]:
    parts = notice.resource_id.split("/")
    group = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
    kind = "/".join(parts[6:8]) if len(parts) > 7 and parts[5].lower() == "providers" else ""
    facts = [("Resource type", kind), ("Resource group", group), ("Subscription", notice.subscription_id)]
    facts += [("Owners", ", ".join(notice.owners) or "(none known)"), ("Run", notice.run_id)]
    facts = [(t, _md(v)) for t, v in facts]
    total = len(notice.lines)
    return [
        _text(f"Cryptward: {_md(notice.name)}", size="Medium", weight="Bolder"),
        _text(f"{total} change{'s' if total != 1 else ''}: {_tally(notice.counts())}", spacing="None", isSubtle=True),
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts if v]},
    ]


def _footer(notice: Notice) -> dict[str, Any]:
    policy = next((p for line in notice.lines for p in line.policy_ids), "<policy-id>")
    return _text(
        _md(
            f'To exempt this resource from a policy, tag it "{notice.exemption_tag}" with a value such as '
            f'"{policy} until=2030-12-31" (policy ids separated by ";", "*" for every policy, "until" optional).'
        ),
        isSubtle=True,
        size="Small",
        separator=True,
    )


def card(notice: Notice, *, shown: int | None = None) -> dict[str, Any]:
    """The Adaptive Card. `shown`: how many lines to show in full; the rest are summed up in one sentence."""
    lines = ordered(notice.lines)
    shown = len(lines) if shown is None else max(0, min(shown, len(lines)))
    body = _header(notice) + [_line(line) for line in lines[:shown]]
    rest = lines[shown:]
    if rest:
        counts: dict[str, int] = {}
        for line in rest:
            counts[line.kind] = counts.get(line.kind, 0) + 1
        body.append(
            _text(
                f"… and {len(rest)} more change{'s' if len(rest) != 1 else ''} ({_tally(counts)}). The full list "
                f"is in the run's audit records (run {notice.run_id}).",
                weight="Bolder",
                separator=True,
            )
        )
    body.append(_footer(notice))
    return {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in the Azure portal", "url": notice.portal_url}],
    }


def message(content: Mapping[str, Any]) -> dict[str, Any]:
    """The Teams Workflows envelope around one card."""
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE, "contentUrl": None, "content": content}]}


def encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def fit(notice: Notice, max_bytes: int = MAX_BYTES) -> bytes:
    """The encoded message showing as many lines in full as fit in `max_bytes` (binary search on the count)."""
    whole = encode(message(card(notice)))
    if len(whole) <= max_bytes:
        return whole
    low, high = 0, len(notice.lines) - 1  # `low` lines always fit (the header and digest are small)
    while low < high:
        mid = (low + high + 1) // 2
        if len(encode(message(card(notice, shown=mid)))) <= max_bytes:
            low = mid
        else:
            high = mid - 1
    return encode(message(card(notice, shown=low)))


__all__ = ["ADAPTIVE", "MAX_BYTES", "card", "encode", "fit", "message", "ordered"]
