"""Exemptions a resource owner declares with a tag. Pure: no I/O, the date is passed in.

    cryptward-exempt: "kv-purge-protection until=2027-01-31; kv-owner-tag"

Entries are separated by `,` or `;`. Each names a policy id (or `*` for every policy), optionally followed by
`until=YYYY-MM-DD` (inclusive). A malformed entry exempts nothing and yields a reason saying what is wrong; so does
an entry naming an unknown policy, when the known ids are given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

DEFAULT_TAG = "cryptward-exempt"
_ID = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]*)$")
_UNTIL = re.compile(r"^until=(\d{4}-\d{2}-\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class Exemption:
    """One well-formed entry: a policy id (or `*`) and the last day it holds (None: no end)."""

    policy_id: str
    until: date | None = None

    def covers(self, policy_id: str, on: date) -> bool:
        named = self.policy_id == "*" or self.policy_id.lower() == policy_id.lower()
        return named and (self.until is None or on <= self.until)


@dataclass(frozen=True)
class Exemptions:
    """What a tag value declares: the well-formed entries, and a reason for each malformed one."""

    entries: tuple[Exemption, ...] = ()
    problems: tuple[str, ...] = ()

    def exempt(self, policy_id: str, on: date) -> Exemption | None:
        """The entry exempting `policy_id` on day `on`, if any."""
        return next((e for e in self.entries if e.covers(policy_id, on)), None)


@dataclass(frozen=True)
class Decision:
    """Which policies are exempt on a day (id -> why), and what in the tag could not be honoured."""

    exempt: Mapping[str, str]
    problems: tuple[str, ...]


def parse_exemptions(value: str) -> Exemptions:
    """Parse a tag value. Never raises: malformed entries become `problems` and exempt nothing."""
    entries: list[Exemption] = []
    problems: list[str] = []
    for raw in re.split(r"[,;]", value):
        words = raw.split()
        if not words:
            continue
        policy_id, rest = words[0], words[1:]
        if not _ID.match(policy_id):
            problems.append(f"{raw.strip()!r}: {policy_id!r} is not a policy id (nor '*'), so it exempts nothing")
            continue
        until, reason = _until(rest)
        if reason:
            problems.append(f"{raw.strip()!r}: {reason}, so it exempts nothing")
            continue
        entries.append(Exemption(policy_id, until))
    return Exemptions(tuple(entries), tuple(problems))


def _until(words: list[str]) -> tuple[date | None, str | None]:
    if not words:
        return None, None
    if len(words) > 1:
        return None, f"expected at most one 'until=YYYY-MM-DD' after the policy id, got {' '.join(words)!r}"
    m = _UNTIL.match(words[0])
    if not m:
        return None, f"expected 'until=YYYY-MM-DD', got {words[0]!r}"
    try:
        return date.fromisoformat(m.group(1)), None
    except ValueError:
        return None, f"{m.group(1)!r} is not a valid date"


def read_exemptions(tags: Mapping[str, Any] | None, tag_name: str = DEFAULT_TAG) -> Exemptions:
    """The exemptions declared in a resource's tags (tag names match case-insensitively, as in Azure)."""
    for name, value in (tags or {}).items():
        if str(name).lower() == tag_name.lower():
            if not isinstance(value, str):
                return Exemptions(problems=(f"tag {name!r} must be a string, got {value!r}",))
            return parse_exemptions(value)
    return Exemptions()


def decide(
    tags: Mapping[str, Any] | None,
    policy_ids: Iterable[str],
    on: date,
    *,
    tag_name: str = DEFAULT_TAG,
) -> Decision:
    """Which of `policy_ids` the resource's exemption tag exempts on day `on`, with the reason for each.

    Entries naming an id outside `policy_ids`, expired entries and malformed entries are reported in `problems`.
    """
    known = list(policy_ids)
    declared = read_exemptions(tags, tag_name)
    problems = list(declared.problems)
    lowered = {p.lower() for p in known}
    for entry in declared.entries:
        if entry.policy_id != "*" and entry.policy_id.lower() not in lowered:
            problems.append(f"{entry.policy_id!r} is not a known policy id; valid options: {', '.join(sorted(known))}")
        elif entry.until is not None and on > entry.until:
            problems.append(f"the exemption of {entry.policy_id!r} ended on {entry.until.isoformat()}")
    exempt: dict[str, str] = {}
    for policy_id in known:
        match = declared.exempt(policy_id, on)
        if match is not None:
            until = f" until {match.until.isoformat()}" if match.until else ""
            exempt[policy_id] = f"exempted by tag {tag_name!r} ({match.policy_id}{until})"
    return Decision(exempt, tuple(problems))


def azure_exemption(
    twin: str | None, records: Iterable[Mapping[str, Any]], now: datetime
) -> tuple[str | None, tuple[str, ...]]:
    """Whether an Azure Policy exemption over the resource (records by engine/azexemptions.py) exempts the policy
    whose Azure Policy twin is `twin` (a definition's GUID name) at `now`: the reason, and what was not honoured
    (expired, or of an initiative whose members Cryptward does not read). Pure."""
    if not twin:
        return None, ()
    problems: list[str] = []
    for r in records:
        if r.get("policySet"):
            problems.append(
                f"Azure Policy exemption {r.get('name')!r} is of an initiative's assignment: Cryptward does not read "
                "which definitions its reference ids name, so it exempts nothing here"
            )
            continue
        if str(r.get("definition") or "").lower() != twin.lower():
            continue
        expires = r.get("expiresOn")
        until = datetime.fromisoformat(str(expires).replace("Z", "+00:00")) if expires else None
        if until is not None and until <= now:
            problems.append(f"Azure Policy exemption {r.get('name')!r} expired on {expires}")
            continue
        assignment = str(r.get("assignmentId") or "").rsplit("/", 1)[-1]
        end = f", until {expires}" if expires else ""
        return (
            f"exempted by Azure Policy exemption {r.get('name')!r} ({r.get('category')}{end}) of assignment "
            f"{assignment!r} at {r.get('scope')}",
            tuple(problems),
        )
    return None, tuple(problems)
