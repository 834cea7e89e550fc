"""Where a scan's bytes are: tracemalloc over an in-process `scan` (read, evaluate, plan; dry run) of the bench's
estate (bench/scale.py: N vaults, half as many disks, a tenth as many VMs, a hundredth as many sets).

Prints the traced peak, what the report still holds once `scan` returns (by line), and the per-resource figure.

    .venv/bin/python bench/memprofile.py --vaults 5000
    .venv/bin/python bench/memprofile.py --vaults 1000 --top 30 --frames 3
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale import UNLIMITED, estate_steps, grant_bot  # noqa: E402

from remediations.azure import Azure, CloudProfile  # noqa: E402
from remediations.engine.reader import Scope  # noqa: E402
from remediations.engine.run import scan  # noqa: E402
from remediations.policy.loader import load_policies  # noqa: E402
from remediations.settings import Settings  # noqa: E402
from sandbox.runner import start_in_thread  # noqa: E402
from sandbox.scenarios import play  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vaults", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth to group by (1: by line)")
    args = parser.parse_args()
    running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-memprofile-")), scenario="empty")
    try:
        info, sb = running.info(), running.sandbox
        sub = info["subscriptionId"]
        steps, counts = estate_steps(sub, info["tenantId"], args.vaults)
        play(sb, steps)
        grant_bot(running, sub)
        sb.state.settings.read_budget, sb.state.settings.read_refill = UNLIMITED, float(UNLIMITED)
        env = {**os.environ, **running.client_env(), "AZURE_CLIENT_ID": info["principals"]["bot"]["client_id"]}
        os.environ.update(env)
        azure = Azure(CloudProfile.from_env(env), credential_factory=Azure.from_env(env).credential_factory)
        policies = load_policies(ROOT / "policies")
        settings = Settings.from_env(env)
        gc.collect()
        tracemalloc.start(args.frames)
        base = tracemalloc.take_snapshot()
        t0 = time.perf_counter()
        report = scan(Scope((sub,)), policies, settings=settings, azure=azure)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        held = tracemalloc.take_snapshot()
        resources = sum(counts.values())
        print(
            f"{args.vaults} vaults ({resources} resources): scan {seconds:.1f} s under tracemalloc, "
            f"{len(report.findings)} findings, {len(report.plan.changes)} changes, {len(report.plan.skipped)} skipped"
        )
        stats = held.compare_to(base, "traceback" if args.frames > 1 else "lineno")
        total = sum(s.size_diff for s in stats)
        print(
            f"traced peak {peak / 2**20:.0f} MB; held by the report {total / 2**20:.0f} MB "
            f"({total / resources / 1024:.1f} KB a resource)"
        )
        for s in stats[: args.top]:
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in s.traceback)
            print(f"  {s.size_diff / 2**20:7.1f} MB {s.count_diff:>9,} blocks  {where}")
        del report
        azure.close()
    finally:
        running.stop()


if __name__ == "__main__":
    main()
