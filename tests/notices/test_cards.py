"""Adaptive Card rendering: golden files (regenerate with UPDATE_GOLDEN=1), the size limit and the digest."""

import json
import os
from pathlib import Path

import pytest

from remediations.engine.applier import Status
from remediations.notices import cards
from remediations.notices.compose import Kind, Line
from tests import notice_samples as s

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cards"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _actions(node):
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Action."):
            yield node
        for v in node.values():
            yield from _actions(v)
    elif isinstance(node, list):
        for v in node:
            yield from _actions(v)


def _texts(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("text", "value", "title") and isinstance(v, str):
                yield v
            yield from _texts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _texts(v)


@pytest.mark.parametrize("name", sorted(s.SAMPLES))
def test_card_matches_its_golden_file(name):
    message = json.loads(cards.fit(s.SAMPLES[name]()))
    text = json.dumps(message, indent=2, ensure_ascii=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path.name} differs; UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize("name", sorted(s.SAMPLES))
def test_every_card_is_a_workflows_adaptive_card_under_the_limit(name):
    body = cards.fit(s.SAMPLES[name]())
    assert len(body) <= cards.MAX_BYTES < 28 * 1024
    message = json.loads(body)
    assert message["type"] == "message" and "@type" not in message and "sections" not in message
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert {a["type"] for a in _actions(card)} == {"Action.OpenUrl"}  # Workflows cannot deliver Action.Submit


def test_a_card_says_what_changed_why_where_and_how_to_exempt():
    card = cards.card(s.applied())
    texts = list(_texts(card))
    assert "(not set) → true" in texts and "(not set) → CanNotDelete" in texts
    policy = s.policies()["kv-purge-protection"]
    assert f"Why: {policy.description.split('. ')[0]}." in texts  # the policy's reasoning, one sentence
    [portal] = card["actions"]
    assert portal["url"] == f"https://portal.azure.com/#@{s.TENANT}/resource{s.VAULT}"
    footer = card["body"][-1]["text"]
    assert '"cryptward-exempt"' in footer and "kv-purge-protection until=2030-12-31" in footer
    assert sum(1 for b in card["body"] if b["type"] == "Container") == 2  # one card per resource, a block per change


def test_pending_approval_has_approve_and_deny_buttons_and_other_lines_do_not():
    card = cards.card(s.pending())
    buttons = [a for a in _actions(card) if a["title"] in ("Approve", "Deny")]
    assert [b["title"] for b in buttons] == ["Approve", "Deny"]
    assert all(b["url"].startswith(s.APPROVAL_URL + "?token=") for b in buttons)
    for other in (s.applied(), s.failed(), s.skipped(), s.escalated()):
        assert [a["title"] for a in _actions(cards.card(other))] == ["Open in the Azure portal"]


def test_urgent_lines_come_first():
    kinds = [line.kind for line in cards.ordered(s.many(20).lines)]
    assert kinds == sorted(kinds, key=["failed", "escalated", "pending", "applied", "skipped"].index)


@pytest.mark.parametrize("count", [40, 200, 500, 2000])
def test_long_runs_are_digested_to_fit(count):
    notice = s.many(count)
    body = cards.fit(notice)
    assert len(body) <= cards.MAX_BYTES
    card = json.loads(body)["attachments"][0]["content"]
    shown = sum(1 for b in card["body"] if b["type"] == "Container")
    digest = card["body"][-2]["text"]
    assert 10 < shown < count and digest.startswith(f"… and {count - shown} more changes (")
    # the most it can show: one more line would not fit
    assert len(cards.encode(cards.message(cards.card(notice, shown=shown + 1)))) > cards.MAX_BYTES


def test_text_from_tags_and_azure_cannot_format_or_forge_links():
    notice = s.notice(s.DISK, Line("failed", "failed", ("disk-cmk",), "t", "", "s", detail="[Approve](https://evil)"))
    notice = s.notice(s.DISK, *notice.lines, owners=("[click](https://evil.example)",))
    texts = " ".join(_texts(cards.card(notice)))
    assert "\\[click\\](https://evil.example)" in texts and "\\[Approve\\](https://evil)" in texts
    assert "vm-app-1\\_OsDisk\\_1" in texts  # not italicized


def test_a_long_value_is_shortened():
    notice = s.notice(s.VAULT, Line("applied", "applied", (), "t", "", "s", {"p": None}, {"p": "x" * 1000}))
    [fact] = cards.card(notice)["body"][3]["items"][2]["facts"]
    assert len(fact["value"]) < 200 and fact["value"].endswith("…")


def test_the_readme_example_is_the_current_card():
    example = Path(__file__).resolve().parents[2] / "docs" / "card-example.json"
    assert json.loads(example.read_text()) == cards.message(cards.card(s.example())), "run docs/render_card.py"


def test_every_kind_and_waiting_status_has_a_label():
    assert set(cards._LABEL) == set(cards._ORDER) == set(Kind)
    assert cards._tally(dict.fromkeys(Kind, 1)).count(", ") == len(Kind) - 1
    assert {Status.PENDING_APPROVAL, Status.PENDING_DEALLOCATION, Status.BLOCKED, Status.REFUSED} <= set(cards._STATUS)
