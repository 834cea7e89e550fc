"""bench/function_app.py still runs: its storm and sweep at a tiny size, in a subprocess (the bench sets process-wide
environment and patches the worker). Only the correctness lines are checked here, never a rate or a time: the
figures are the bench's business, on a quiet machine (the brief: no timed unit tests). A bench that broke silently
(it once patched the worker with a stale signature, and every work item failed) fails here instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.waits import limit

ROOT = Path(__file__).resolve().parent.parent

_RUN = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("bench_function_app", "bench/function_app.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
bench.bench_storm(resources=6, per=4, debounce=3)
bench.bench_sweep(sizes=(40, 75))
"""


def _lines(out: str) -> dict[str, str]:
    """Each figure line's name -> its verdict (ok / MISSED)."""
    got = {}
    for text in out.splitlines():
        if text.startswith("  ") and text.rstrip().endswith(("ok", "MISSED")):
            name = text[2:46].strip()
            got[name] = text.rsplit(None, 1)[-1]
    return got


def test_the_function_app_bench_runs_and_its_correctness_lines_hold():
    done = subprocess.run([sys.executable, "-c", _RUN], cwd=ROOT, capture_output=True, text=True, timeout=limit(240))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "failed (attempt" not in done.stderr, done.stderr[-3000:]  # no work item failed
    verdicts = _lines(done.stdout)
    for name in ("evaluations", "writes (needed: 3 per vault)", "a write made twice"):
        assert verdicts.get(name) == "ok", done.stdout
    assert "sweep of 75 resources" in verdicts and "sweep of 40 resources" in verdicts, done.stdout
    assert verdicts["  baseline: one message per resource".strip()] == "ok", done.stdout


def test_the_management_group_event_bench_runs_and_fixes_alike_in_both() -> None:
    """bench/mg_events.py at a tiny size: both rigs fix every vault with the same three writes, the group is expanded
    once (not per event). Its latencies are the bench's business."""
    args = [sys.executable, "bench/mg_events.py", "--samples", "4", "--subs", "3"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=limit(240))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [t for t in done.stdout.splitlines() if "ARM calls per fix" in t]
    assert len(rows) == 2 and all("(3 writes)" in r for r in rows), done.stdout
    assert rows[0].endswith("management-group calls 0"), done.stdout
    assert int(rows[1].rsplit(None, 1)[-1]) <= 2, done.stdout  # expanded on the first events, not on each of 4


def test_the_per_call_bench_runs_both_ways() -> None:
    """bench/percall.py at a tiny size: the microbench prints the CPU a call of each side, the profile a full scan's
    CPU and both sides' top entries. Its figures are the bench's business."""
    micro = [sys.executable, "bench/percall.py", "--vaults", "20", "--calls", "40"]
    done = subprocess.run(micro, cwd=ROOT, capture_output=True, text=True, timeout=limit(240))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("CPU a call: bot") == 2, done.stdout
    profiled = [sys.executable, "bench/percall.py", "--profile", "--vaults", "20", "--top", "3"]
    done = subprocess.run(profiled, cwd=ROOT, capture_output=True, text=True, timeout=limit(240))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "one full scan under the profilers" in done.stdout and "ARM GETs; CPU: bot" in done.stdout, done.stdout
    assert "the bot (cryptward scan), top 3 by tottime" in done.stdout, done.stdout
    assert "the sandbox (its server thread), top 3 by cumulative" in done.stdout, done.stdout
