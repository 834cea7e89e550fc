"""Evaluation streamed page by page: an inventory of any size in the memory of one page.

    tally = evaluate_pages(inventory.pages(azure, subs, types, step), policies, prepare=fill_blocks)
    tally.resources, tally.evaluations, tally.findings   # findings as compact rows, or given to `sink`

    with Spill() as spill:                              # every finding listed, none held: a temporary file
        evaluate_pages(pages, policies, sink=spill.write)
        for row in spill.rows(): ...

Each page's bodies are evaluated (`run.evaluate`, the same verdicts as a scan's) and dropped before the next page
is asked for: what is held is the page, then one compact row per finding (resource id, policy id, why it could not
be decided), not the bodies. With `sink`, not even the rows: each finding is handed over as it is made (to write it
out, or spill it to a file). `prepare(what, body)` fills what the policies read beside the body (its `cryptward`
blocks) before it is evaluated; what a page's bodies need from other pages is not this module's to give.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, NamedTuple

from remediations.engine.found import Reading
from remediations.engine.planner import Finding
from remediations.engine.run import evaluate
from remediations.policy.loader import Policy


class Row(NamedTuple):
    """A finding without its body: what a report lists of it."""

    resource_id: str
    policy_id: str
    unreadable: str | None


@dataclass
class Tally:
    resources: int = 0
    evaluations: int = 0
    pages: int = 0
    findings: list[Row] = field(default_factory=list)  # empty when a sink took them
    by_policy: Counter[str] = field(default_factory=Counter)  # findings per policy id
    cpu: float = 0.0  # CPU seconds spent evaluating (not listing)
    seconds: float = 0.0  # wall seconds spent evaluating


def evaluate_pages(
    pages: Iterable[Sequence[tuple[str, str, str, dict[str, Any]]]],
    policies: Sequence[Policy],
    *,
    prepare: Callable[[str, dict[str, Any]], None] | None = None,
    sink: Callable[[Finding], None] | None = None,
    modes: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Tally:
    """Evaluate every page's bodies (`(subscription, what, lower-cased id, body)` rows, as engine/inventory.pages
    gives them) against `policies`, one page at a time."""
    tally = Tally()
    for page in pages:
        _page(page, policies, tally, prepare, sink, dict(modes or {}), now)
        del page  # not held while the next page is read
    return tally


def _page(
    page: Sequence[tuple[str, str, str, dict[str, Any]]],
    policies: Sequence[Policy],
    tally: Tally,
    prepare: Callable[[str, dict[str, Any]], None] | None,
    sink: Callable[[Finding], None] | None,
    modes: dict[str, str],
    now: datetime | None,
) -> None:
    """One page: its bodies live in this call's locals only (a loop's variables would hold the last of them)."""
    w0, c0 = time.perf_counter(), time.process_time()
    reading = Reading()
    for _, what, rid, body in page:
        if prepare is not None:
            prepare(what, body)
        reading.resources[rid] = body
    found, evaluations = evaluate(reading, policies, modes=modes, now=now)
    tally.pages += 1
    tally.resources += len(reading.resources)
    tally.evaluations += evaluations
    for f in found:
        tally.by_policy[f.policy.id] += 1
        if sink is not None:
            sink(f)
        else:
            rid = str(f.resource.get("id", ""))
            tally.findings.append(Row(rid, f.policy.id, sys.intern(f.unreadable) if f.unreadable else None))
    tally.cpu += time.process_time() - c0
    tally.seconds += time.perf_counter() - w0


class Spill:
    """Findings written to a temporary file as they come (one JSON line each: `Row`) and read back in order, for a
    report that must list every finding of an estate it cannot hold. The file is deleted on exit."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self.count = 0

    def __enter__(self) -> Spill:
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, finding: Finding) -> None:
        assert self._file is not None, "use Spill in a with block"
        row = Row(str(finding.resource.get("id", "")), finding.policy.id, finding.unreadable)
        self._file.write(json.dumps(row) + "\n")
        self.count += 1

    def rows(self) -> Iterator[Row]:
        assert self._file is not None, "use Spill in a with block"
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield Row(*json.loads(line))
        self._file.seek(0, 2)  # writing may go on after


__all__ = ["Row", "Spill", "Tally", "evaluate_pages"]
