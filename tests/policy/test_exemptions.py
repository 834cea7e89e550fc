"""Exemption tags: what they exempt on a given day, and why a malformed one exempts nothing."""

from datetime import date

import pytest

from remediations.policy.exemptions import DEFAULT_TAG, Exemption, decide, parse_exemptions, read_exemptions

POLICIES = ["kv-purge-protection", "kv-owner-tag", "disk-cmk"]
DAY = date(2026, 6, 1)


def test_parse_the_documented_example():
    parsed = parse_exemptions("kv-purge-protection until=2027-01-31; kv-owner-tag")
    assert parsed.entries == (Exemption("kv-purge-protection", date(2027, 1, 31)), Exemption("kv-owner-tag"))
    assert parsed.problems == ()


@pytest.mark.parametrize(
    ("value", "exempt"),
    [
        ("kv-purge-protection", {"kv-purge-protection"}),
        ("kv-purge-protection, kv-owner-tag", {"kv-purge-protection", "kv-owner-tag"}),
        ("  KV-Purge-Protection ;; ", {"kv-purge-protection"}),
        ("*", set(POLICIES)),
        ("* until=2026-06-01", set(POLICIES)),
        ("* until=2026-05-31", set()),
        ("kv-owner-tag UNTIL=2030-12-31", {"kv-owner-tag"}),
        ("", set()),
    ],
)
def test_which_policies_are_exempt_on_a_day(value, exempt):
    decision = decide({DEFAULT_TAG: value}, POLICIES, DAY)
    assert set(decision.exempt) == exempt


def test_the_reason_names_the_tag_and_the_end():
    decision = decide({"cryptward-exempt": "kv-purge-protection until=2027-01-31"}, POLICIES, DAY)
    assert decision.exempt == {
        "kv-purge-protection": "exempted by tag 'cryptward-exempt' (kv-purge-protection until 2027-01-31)"
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("kv-purge-protection until=2027-13-01", "'2027-13-01' is not a valid date"),
        ("kv-purge-protection until 2027-01-31", "expected at most one 'until=YYYY-MM-DD'"),
        ("kv-purge-protection until=31/01/2027", "expected 'until=YYYY-MM-DD', got 'until=31/01/2027'"),
        ("kv-purge-protection for=ever", "expected 'until=YYYY-MM-DD'"),
        ("kv-purge-protection until=2027-01-31 until=2028-01-31", "at most one"),
        ("(all)", "'(all)' is not a policy id"),
        ("kv-purge-protection=yes", "is not a policy id"),
    ],
)
def test_a_malformed_entry_exempts_nothing_and_says_why(value, reason):
    decision = decide({DEFAULT_TAG: value}, POLICIES, DAY)
    assert decision.exempt == {}
    assert len(decision.problems) == 1
    assert reason in decision.problems[0] and "exempts nothing" in decision.problems[0]


def test_a_malformed_entry_does_not_spoil_the_others():
    decision = decide({DEFAULT_TAG: "kv-purge-protection until=tomorrow; kv-owner-tag"}, POLICIES, DAY)
    assert set(decision.exempt) == {"kv-owner-tag"}
    assert len(decision.problems) == 1


def test_unknown_and_expired_entries_are_reported():
    decision = decide({DEFAULT_TAG: "kv-purge-protections; disk-cmk until=2026-01-01"}, POLICIES, DAY)
    assert decision.exempt == {}
    assert (
        "'kv-purge-protections' is not a known policy id; valid options: disk-cmk, kv-owner-tag" in decision.problems[0]
    )
    assert "ended on 2026-01-01" in decision.problems[1]


def test_tag_name_is_configurable_and_matched_case_insensitively():
    tags = {"Cryptward-Exempt": "disk-cmk", "security-waiver": "kv-owner-tag"}
    assert set(decide(tags, POLICIES, DAY).exempt) == {"disk-cmk"}
    assert set(decide(tags, POLICIES, DAY, tag_name="Security-Waiver").exempt) == {"kv-owner-tag"}


@pytest.mark.parametrize("tags", [None, {}, {"owner": "team"}])
def test_no_tag_exempts_nothing(tags):
    decision = decide(tags, POLICIES, DAY)
    assert decision.exempt == {} and decision.problems == ()


def test_a_non_string_tag_value_is_a_problem():
    declared = read_exemptions({DEFAULT_TAG: ["kv-owner-tag"]})
    assert declared.entries == () and "must be a string" in declared.problems[0]


def test_the_until_day_itself_is_still_exempt():
    entry = Exemption("disk-cmk", date(2026, 6, 1))
    assert entry.covers("DISK-CMK", date(2026, 6, 1))
    assert not entry.covers("disk-cmk", date(2026, 6, 2))
    assert not entry.covers("kv-owner-tag", date(2026, 6, 1))
