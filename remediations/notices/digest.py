"""One notice per owner per sweep: the sweep's per-resource notices, held until the sweep is done, grouped by owner
across every subscription, so an owner of resources in forty subscriptions gets one card, not forty. Pure.

    digests = group(held_notices, run_id="sweep-...")     # one Digest per owner (and one for notices without one)
    body = fit(digest)                                     # its Teams message, under cards.MAX_BYTES
    digest.to_dict(links=False)                            # its webhook body

A notice with several owners is in each owner's digest; one without an owner is in the digest without an owner,
which goes to the default route `*`. Events and alerts still tell their resource's owners at once (a person who just
changed something hears of it); only the sweep, which fans out one work item per resource, is gathered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediations.notices import cards
from remediations.notices.compose import KINDS, Notice

KIND = "digest"
_SHOWN_LINES = 3  # per resource, in full; the others are counted


@dataclass(frozen=True)
class Digest:
    """What one owner is told about one sweep: their resources' notices, across subscriptions. `owner` is "" for
    notices without an owner. `id` is stable for the same owner, run and notices (the webhook idempotency key)."""

    owner: str
    run_id: str
    notices: tuple[Notice, ...]
    created: datetime
    id: str = field(init=False)

    def __post_init__(self) -> None:
        text = "\n".join([KIND, self.owner.lower(), self.run_id, *sorted(n.id for n in self.notices)])
        object.__setattr__(self, "id", hashlib.sha256(text.encode()).hexdigest()[:32])

    @property
    def owners(self) -> tuple[str, ...]:
        return (self.owner,) if self.owner else ()

    def subscriptions(self) -> tuple[str, ...]:
        return tuple(sorted({n.subscription_id for n in self.notices}))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(KINDS, 0)
        for notice in self.notices:
            for kind, count in notice.counts().items():
                out[kind] += count
        return {k: v for k, v in out.items() if v}

    def to_dict(self, *, links: bool = True) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": KIND,
            "runId": self.run_id,
            "owner": self.owner,
            "created": self.created.isoformat(),
            "subscriptions": list(self.subscriptions()),
            "counts": self.counts(),
            "notices": [n.to_dict(links=links) for n in self.notices],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Digest:
        notices = tuple(Notice.from_dict(d) for d in doc.get("notices") or ())
        return cls(str(doc.get("owner", "")), str(doc["runId"]), notices, datetime.fromisoformat(doc["created"]))


def from_dict(doc: Mapping[str, Any]) -> Notice | Digest:
    """A kept notice or digest (the outbox stores both)."""
    return Digest.from_dict(doc) if doc.get("kind") == KIND else Notice.from_dict(doc)


def group(notices: Iterable[Notice], run_id: str, now: datetime | None = None) -> list[Digest]:
    """One digest per owner (case-insensitive, first spelling kept), owners in the order they first appear; each
    digest's notices by subscription, then resource id."""
    by_owner: dict[str, tuple[str, list[Notice]]] = {}
    for notice in notices:
        for owner in notice.owners or ("",):
            by_owner.setdefault(owner.lower(), (owner, []))[1].append(notice)
    now = now or datetime.now(UTC)
    return [
        Digest(owner, run_id, tuple(sorted(found, key=lambda n: (n.subscription_id, n.resource_id.lower()))), now)
        for owner, found in by_owner.values()
    ]


# --- the Teams card --------------------------------------------------------------------------------------------------


def card(digest: Digest, *, shown: int | None = None) -> dict[str, Any]:
    """One Adaptive Card for the owner: a heading per subscription, a block per resource with its most urgent lines
    (approve / deny links on those waiting for approval). `shown`: how many resources in full; the rest are counted."""
    notices = list(digest.notices)
    shown = len(notices) if shown is None else max(0, min(shown, len(notices)))
    total = sum(len(n.lines) for n in notices)
    subs = digest.subscriptions()
    who = cards._md(digest.owner or "owners not known")
    body: list[dict[str, Any]] = [
        cards._text(f"Cryptward sweep: {who}", size="Medium", weight="Bolder"),
        cards._text(
            f"{total} change{'s' if total != 1 else ''} to {len(notices)} resource{'s' if len(notices) != 1 else ''} "
            f"in {len(subs)} subscription{'s' if len(subs) != 1 else ''}: {cards._tally(digest.counts())}",
            spacing="None",
            isSubtle=True,
        ),
    ]
    current = None
    for notice in notices[:shown]:
        if notice.subscription_id != current:
            current = notice.subscription_id
            heading = f"Subscription {cards._md(current or '(tenant)')}"
            body.append(cards._text(heading, weight="Bolder", separator=True))
        body.append(cards._text(f"[{cards._md(notice.name)}]({notice.portal_url}): {cards._tally(notice.counts())}"))
        lines = cards.ordered(notice.lines)
        for line in lines[:_SHOWN_LINES]:
            links = f" ([approve]({line.approve_url}) · [deny]({line.deny_url}))" if line.approve_url else ""
            body.append(cards._text(f"- {cards._md(line.title)}: {cards._md(line.summary)}{links}", spacing="None"))
        if len(lines) > _SHOWN_LINES:
            body.append(cards._text(f"- … and {len(lines) - _SHOWN_LINES} more", spacing="None", isSubtle=True))
    rest = notices[shown:]
    if rest:
        body.append(
            cards._text(
                f"… and {len(rest)} more resource{'s' if len(rest) != 1 else ''}. The full list is in the run's audit "
                f"records (run {digest.run_id}).",
                weight="Bolder",
                separator=True,
            )
        )
    width = {"width": "Full"}
    return {"$schema": cards.SCHEMA, "type": "AdaptiveCard", "version": "1.4", "msteams": width, "body": body}


def fit(digest: Digest, max_bytes: int = cards.MAX_BYTES) -> bytes:
    """The encoded message showing as many resources in full as fit in `max_bytes` (binary search on the count)."""
    whole = cards.encode(cards.message(card(digest)))
    if len(whole) <= max_bytes:
        return whole
    low, high = 0, len(digest.notices) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if len(cards.encode(cards.message(card(digest, shown=mid)))) <= max_bytes:
            low = mid
        else:
            high = mid - 1
    return cards.encode(cards.message(card(digest, shown=low)))


__all__ = ["KIND", "Digest", "card", "fit", "from_dict", "group"]
