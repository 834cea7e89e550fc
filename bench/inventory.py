"""Inventory of many subscriptions: Resource Graph against per-subscription ARM lists, then evaluation, and peak RSS.

An estate of 100 subscriptions is seeded with sandbox/bulk.py (templates made through ARM, copies put straight into
the state: 100,000 resources in seconds). For each size (10k, 50k, 100k resources) a fresh process of the bot (so
its peak RSS is its own, not the sandbox's) lists vaults, disk encryption sets, disks and VMs of every subscription
through Resource Graph (remediations/engine/inventory.py: one query per 200 subscriptions, 1,000 rows a page,
the quota honoured; the sandbox's index is built before, as Azure keeps its own) and evaluates every policy over
each page as it comes, dropping its bodies before the next (remediations/engine/stream.py; empty `cryptward` blocks:
the per-resource ARM reads a sweep adds are not part of the inventory), the findings spilled to a temporary file and
read back. Peak RSS is the bot process's own (VmHWM). At the largest size the same lists are made through ARM, one
paged list per type and subscription in parallel (what the reader does without Resource Graph). Prints: seconds,
queries / calls, resources per query, resources evaluated per second, peak RSS (MB).

    .venv/bin/python bench/inventory.py                          # 100 subscriptions; 10k, 50k, 100k resources
    .venv/bin/python bench/inventory.py --subs 10 --sizes 2000   # a quick look

The sandbox's Resource Graph quota is Microsoft's (15 queries per 5 s per user), and every page takes one query of
it ("each paginated query you send takes one query quota": Learn, "Guidance for throttled requests in Azure Resource
Graph", section Pagination), so 100 pages cannot take less than 30 s with it on: 15 in each of seven windows, the
seventh starting 30 s after the first (the bench prints that floor beside the figure). The inventory asks the first
page of every batch, then the rest by `$skip`, 4 at once within the quota. The bench also runs once with the quota
lifted, to show the cost of the queries alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TYPES = {
    "vaults": "Microsoft.KeyVault/vaults",
    "sets": "Microsoft.Compute/diskEncryptionSets",
    "disks": "Microsoft.Compute/disks",
    "vms": "Microsoft.Compute/virtualMachines",
}
API = {"vaults": "2026-05-15", "sets": "2026-03-02", "disks": "2026-03-02", "vms": "2026-04-01"}


def child(mode: str, subs: list[str]) -> dict[str, Any]:
    """In the bot's own process: list (and with Resource Graph, evaluate); figures as JSON."""
    from remediations.azure import Azure
    from remediations.engine import inventory, stream
    from remediations.engine.run import configure
    from remediations.policy.loader import load_policies
    from remediations.settings import Settings

    azure = Azure.from_env()
    out: dict[str, Any] = {"mode": mode}
    t0 = time.perf_counter()
    if mode == "arm":
        jobs = [(s, what) for s in subs for what in TYPES]

        def fetch(job: tuple[str, str]) -> int:
            sub, what = job
            return sum(1 for _ in azure.list(f"/subscriptions/{sub}/providers/{TYPES[what]}", API[what]))

        counts = azure.each(fetch, jobs)
        errors = [c for c in counts if not isinstance(c, int)]
        if errors:
            raise SystemExit(f"ARM lists failed: {errors[0]}")
        out.update(seconds=time.perf_counter() - t0, resources=sum(counts), calls=azure.calls["GET"])
    else:
        # Streamed: each page is evaluated and dropped before the next is asked for (engine/stream.py).
        def prepare(what: str, body: dict[str, Any]) -> None:
            body["cryptward"] = {"locks": []}
            if what == "vaults":
                body["cryptward"].update(diagnosticSettings=[], encryptionSets=[])

        policies = configure(load_policies(ROOT / "policies"), Settings.from_env())
        pages = inventory.pages(azure, subs, TYPES, lambda _: None)
        with stream.Spill() as spill:  # every finding written out as it comes, as a report listing them would
            tally = stream.evaluate_pages(pages, policies, prepare=prepare, sink=spill.write)
            out["seconds"] = time.perf_counter() - t0 - tally.seconds  # listing alone: the wall time less evaluation
            listed = sum(1 for _ in spill.rows())  # and read back
        out["calls"] = azure.calls["POST"]
        out["resources"] = tally.resources
        out.update(
            evaluate_cpu=tally.cpu,
            evaluations=tally.evaluations,
            findings=listed,
            per_second=tally.resources / max(tally.cpu, 1e-9),
        )
    out["rss_mb"] = peak_mb()
    return out


def peak_mb() -> float:
    """This process's peak RSS: its `VmHWM`, not `ru_maxrss`, which on Linux keeps the RSS of the process that
    spawned it (the bench, holding the sandbox's estate) from before execve (see bench/scale.py, cli_scan)."""
    with open("/proc/self/status") as f:
        return next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM")), 0.0)


def run_child(env: dict[str, str], mode: str, subs: list[str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(subs, f)
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--subs-file", f.name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    os.unlink(f.name)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subs", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--child", choices=("graph", "arm"))
    parser.add_argument("--subs-file")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(Path(args.subs_file).read_text()))))
        return

    from sandbox import bulk
    from sandbox.runner import start_in_thread

    print(
        f"inventory bench, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    peaks: list[tuple[int, float]] = []
    for size in args.sizes:
        running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-inventory-")))
        try:
            sb = running.sandbox
            t0 = time.perf_counter()
            made = bulk.estate(sb, args.subs, size // args.subs)
            seeded = time.perf_counter() - t0
            subs = list(made["subscriptions"])
            info = running.info()
            env = {**os.environ, **running.client_env(), "AZURE_CLIENT_ID": info["principals"]["admin"]["client_id"]}
            print(f"\n{made['resources']:,} resources in {len(subs)} subscriptions, seeded in {seeded:.1f} s")
            # Resource Graph is an index Azure keeps up to date ahead of queries: build the sandbox's before asking.
            t0 = time.perf_counter()
            sb.resource_graph.answer(sb.directory.named("admin"), {"query": "resources | count", "subscriptions": subs})  # type: ignore[attr-defined]
            sb.resource_graph.quota.clear()  # type: ignore[attr-defined]
            print(f"  the sandbox's Resource Graph index built in {time.perf_counter() - t0:.1f} s")
            graph = run_child(env, "graph", subs)
            per_query = graph["resources"] / max(graph["calls"], 1)
            quota, window = sb.state.settings.resource_graph_quota, sb.state.settings.resource_graph_window_seconds
            floor = (math.ceil(graph["calls"] / quota) - 1) * window
            print(
                f"  Resource Graph: {graph['seconds']:.1f} s, {graph['calls']} queries "
                f"({per_query:,.0f} resources a query), {graph['resources']:,} listed; the quota ({quota} per "
                f"{window:g} s) alone needs {floor:.0f} s for {graph['calls']} queries"
            )
            print(
                f"  evaluation (streamed per page): {graph['evaluations']:,} evaluations, {graph['findings']:,} "
                f"findings in {graph['evaluate_cpu']:.2f} s CPU = {graph['per_second']:,.0f} resources/s; "
                f"peak RSS {graph['rss_mb']:.0f} MB"
            )
            peaks.append((graph["resources"], graph["rss_mb"]))
            if size == max(args.sizes):
                sb.state.settings.resource_graph_quota = 10**9
                sb.resource_graph.quota.clear()  # type: ignore[attr-defined]
                free = run_child(env, "graph", subs)
                print(f"  Resource Graph without its quota: {free['seconds']:.1f} s, {free['calls']} queries")
                sb.throttler.clear()
                arm = run_child(env, "arm", subs)
                print(
                    f"  ARM per subscription: {arm['seconds']:.1f} s, {arm['calls']:,} calls, {arm['resources']:,} "
                    f"listed; ARM / Resource Graph: {arm['calls'] / max(graph['calls'], 1):.0f}x the calls, "
                    f"{arm['seconds'] / graph['seconds']:.2f}x the time (quota on), "
                    f"{arm['seconds'] / free['seconds']:.2f}x (quota off)"
                )
        finally:
            running.stop()
    if len(peaks) > 1:
        (n0, r0), (n1, r1) = peaks[0], peaks[-1]
        print(
            f"\npeak RSS {', '.join(f'{r:.0f} MB at {n:,}' for n, r in peaks)}: "
            f"{(r1 - r0) * 2**20 / max(n1 - n0, 1):,.0f} bytes a resource more from {n0:,} to {n1:,}, "
            f"exponent {fit([float(n) for n, _ in peaks], [r for _, r in peaks]):.2f}"
        )


def fit(xs: list[float], ys: list[float]) -> float:
    """The exponent b of y = a x^b, least squares over log-log."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / den if den else float("nan")


if __name__ == "__main__":
    main()
