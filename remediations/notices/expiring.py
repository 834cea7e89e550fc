"""Notice lines announcing the secrets, certificates and keys of the vaults a run read that are due to expire (30,
14, 7 and 1 days ahead) or have expired (escalated): remediations/expiry.py decides which are due; `first_time` (the
ledger) keeps each to once. Pure but for `first_time`, which the caller passes.

    lines(report.bodies, now, first_time=lambda key: announcements.first_time(ledger, key))  # {vault id: [Line]}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from remediations import expiry
from remediations.notices.compose import ESCALATED, SKIPPED, Line

POLICY_ID = "kv-item-expiry"
TITLE = "Secrets, certificates and keys expire, and are renewed before they do"


def lines(
    bodies: Mapping[str, Mapping[str, Any]], now: datetime, first_time: Callable[[str], bool]
) -> dict[str, list[Line]]:
    out: dict[str, list[Line]] = {}
    for rid, body in bodies.items():
        items = (body.get("cryptward") or {}).get("items") if isinstance(body.get("cryptward"), Mapping) else None
        if not isinstance(items, list):
            continue
        for due in expiry.due(items, now):
            if not first_time(due.key):
                continue
            kind, status = (ESCALATED, "expired") if due.escalated else (SKIPPED, "expiring")
            summary = f"{due.kind} {due.name} " + (
                "expired" if due.escalated else f"expires within {due.window} day(s)"
            )
            out.setdefault(rid, []).append(
                Line(
                    kind,
                    status,
                    (POLICY_ID,),
                    TITLE,
                    due.say(),
                    summary,
                    after={"expires": due.expires},
                    detail=due.item_id,
                )
            )
    return out


__all__ = ["lines"]
