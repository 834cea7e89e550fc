"""Cryptward against Cloud Custodian's Azure provider (c7n-azure, pinned in requirements-c7n.txt), on the same
estate of the same sandbox, for the two checks both tools have: vault purge protection and vault delete lock; then
fixing the missing locks. Interleaved (Cryptward, c7n, Cryptward, ...), median of --runs, each a cold process, as
the same principal (the bot, with the custom role of infra/cryptward-role.json); prints wall time, ARM calls and
the ratios. Throttling off (ARM without limits), so that the work is compared, not the waiting. With --throttled, one
more Cryptward fix per size runs with ARM's buckets on (reads 250 refilled 25/s, writes 200 refilled 10/s): its
writes should take about the floor max(N / CRYPTWARD_WRITE_CONCURRENCY x latency, (N - 200) / 10 s), with no 429.

c7n-azure is installed by scripts/install-c7n.sh into its own venv outside the repository (about 4 minutes and
700 MB the first time; never by `make test`). c7n knows only Azure's public cloud, so a three-line runner points
its resource manager endpoint at the sandbox before handing over to `custodian run`.

    .venv/bin/python bench/c7n.py                      # 1000 and 5000 vaults, median of 3
    .venv/bin/python bench/c7n.py --sizes 1000 --runs 5
    .venv/bin/python bench/c7n.py --sizes 1000 --runs 1 --throttled
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import SHARED, UNLIMITED, bot_gets, cli_scan, estate_steps, grant_bot, median  # noqa: E402
from sandbox.runner import Running, start_in_thread  # noqa: E402
from sandbox.scenarios import play  # noqa: E402

CHECKS = """
policies:
  - name: kv-purge-protection
    resource: azure.keyvault
    filters:
      - type: value
        key: properties.enablePurgeProtection
        value: true
        op: ne
  - name: kv-delete-lock
    resource: azure.keyvault
    filters:
      - type: resource-lock
        lock-type: Absent
"""
FIX = """
policies:
  - name: kv-delete-lock-fix
    resource: azure.keyvault
    filters:
      - type: resource-lock
        lock-type: Absent
    actions:
      - type: lock
        lock-type: CanNotDelete
"""
RUNNER = textwrap.dedent(
    """
    import sys
    from msrestazure.azure_cloud import AZURE_PUBLIC_CLOUD
    AZURE_PUBLIC_CLOUD.endpoints.resource_manager = sys.argv.pop(1)
    from c7n.cli import main
    sys.exit(main())
    """
)
LOCKS = "microsoft.authorization/locks"


def install() -> Path:
    """scripts/install-c7n.sh: the path of the venv's python (installs on first use)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-c7n.sh")], check=True, capture_output=True, text=True
    )
    return Path(done.stdout.strip().splitlines()[-1]).parent / "python"


def c7n_run(python: Path, env: dict[str, str], base_url: str, policy: str, work: Path) -> float:
    (work / "policy.yml").write_text(policy)
    (work / "runner.py").write_text(RUNNER)
    args = [str(python), str(work / "runner.py"), base_url + "/", "run", "-s", str(work / "out"), "--cache-period", "0"]
    t0 = time.perf_counter()
    done = subprocess.run([*args, str(work / "policy.yml")], env=env, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"custodian failed: {done.stderr[-3000:]}")
    return wall


def c7n_found(work: Path, name: str) -> int:
    import json

    return len(json.loads((work / "out" / name / "resources.json").read_text()))


def unlock(running: Running, keep: set[str]) -> int:
    """Remove the locks a fix added (so that the next run has the same work)."""
    state = running.sandbox.state
    added = [k for k in list(state._by_type.get(LOCKS, {})) if k not in keep]
    for key in added:
        state.remove(key)
    return len(added)


def throttled_fix(running: Running, env: dict[str, str], sub: str, bot: str, keep: set[str]) -> dict[str, Any]:
    """Cryptward's fix with ARM's default buckets on (sandbox/throttling.py): wall time, the span of its writes (first
    PUT sent to last answered), 429s, and the floor the write bucket sets."""
    from sandbox.state import Settings

    s, default = running.sandbox.state.settings, Settings()
    s.throttle = True
    s.read_budget, s.read_refill = default.read_budget, default.read_refill
    s.write_budget, s.write_refill = default.write_budget, default.write_refill
    running.sandbox.throttler.clear()  # full buckets, as after a quiet while
    since = len(running.sandbox.state.calls)
    wall = cli_scan(env, sub, ("kv-delete-lock",), apply=True)[0]
    calls = [c for c in running.sandbox.state.calls[since:] if c.get("principal") == bot]
    puts = [c for c in calls if c["method"] == "PUT" and c["status"] != 429]
    fixed = unlock(running, keep)
    s.throttle = False
    s.read_budget, s.read_refill, s.write_budget, s.write_refill = UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED
    from datetime import datetime, timedelta

    def at(c: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(c["time"].replace("Z", "+00:00"))

    span = 0.0
    if puts:
        first = at(puts[0]) - timedelta(milliseconds=puts[0]["latencyMs"])
        span = (at(puts[-1]) - first).total_seconds()
    floor = max(0.0, (len(puts) - default.write_budget) / default.write_refill)
    throttled = len([c for c in calls if c["status"] == 429])
    return {"wall": wall, "writes": len(puts), "span": span, "floor": floor, "throttled": throttled, "fixed": fixed}


def compare(python: Path, size: int, runs: int, throttled: bool = False) -> dict[str, Any]:
    running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-c7n-")), scenario="empty")
    try:
        info, sb = running.info(), running.sandbox
        sub, bot = info["subscriptionId"], info["principals"]["bot"]
        steps, _ = estate_steps(sub, info["tenantId"], size)
        play(sb, steps)
        grant_bot(running, sub)
        s = sb.state.settings
        s.throttle = False
        s.read_budget, s.read_refill, s.write_budget, s.write_refill = UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED
        env = {**os.environ, **running.client_env(), "AZURE_CLIENT_ID": bot["client_id"]}
        c7n_env = {**env, "AZURE_USE_MSI": "1"}
        keep = set(sb.state._by_type.get(LOCKS, {}))
        work = Path(tempfile.mkdtemp(prefix="cryptward-c7n-work-"))
        times: dict[str, list[float]] = {"cw": [], "c7n": [], "cw_fix": [], "c7n_fix": []}
        calls: dict[str, int] = {}
        for _ in range(runs):
            since = len(sb.state.calls)
            times["cw"].append(cli_scan(env, sub, SHARED)[0])
            calls["cw"] = len(bot_gets(running, since, bot["object_id"]))
            since = len(sb.state.calls)
            times["c7n"].append(c7n_run(python, c7n_env, running.base_url, CHECKS, work))
            calls["c7n"] = len(bot_gets(running, since, bot["object_id"]))
            found = (c7n_found(work, "kv-purge-protection"), c7n_found(work, "kv-delete-lock"))
            since = len(sb.state.calls)
            times["cw_fix"].append(cli_scan(env, sub, ("kv-delete-lock",), apply=True)[0])
            calls["cw_fix"] = len([c for c in sb.state.calls[since:] if c.get("principal") == bot["object_id"]])
            fixed_cw = unlock(running, keep)
            since = len(sb.state.calls)
            times["c7n_fix"].append(c7n_run(python, c7n_env, running.base_url, FIX, work))
            calls["c7n_fix"] = len([c for c in sb.state.calls[since:] if c.get("principal") == bot["object_id"]])
            fixed_c7n = unlock(running, keep)
        slow = throttled_fix(running, env, sub, bot["object_id"], keep) if throttled else None
        return {
            "size": size,
            "times": times,
            "calls": calls,
            "found": found,
            "fixed": (fixed_cw, fixed_c7n),
            "throttled": slow,
        }
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--throttled", action="store_true", help="also fix with ARM's buckets on (Cryptward only)")
    args = parser.parse_args()
    try:
        python = install()
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"c7n-azure could not be installed here: {e.stderr[-2000:]}") from None
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    for size in args.sizes:
        r = compare(python, size, args.runs, args.throttled)
        t, c = {k: median(v) for k, v in r["times"].items()}, r["calls"]
        print(
            f"{size:>6} vaults, median of {args.runs}: c7n found {r['found'][0]} without purge protection and "
            f"{r['found'][1]} without a lock; locks added: Cryptward {r['fixed'][0]}, c7n {r['fixed'][1]}\n"
            f"  the two checks: Cryptward {t['cw']:.1f} s, {c['cw']} calls; c7n {t['c7n']:.1f} s, {c['c7n']} calls: "
            f"{t['cw'] / t['c7n']:.2f}x time, {c['cw'] / max(1, c['c7n']):.2f}x calls\n"
            f"  fix missing locks: Cryptward {t['cw_fix']:.1f} s, {c['cw_fix']} calls; c7n {t['c7n_fix']:.1f} s, "
            f"{c['c7n_fix']} calls: {t['cw_fix'] / t['c7n_fix']:.2f}x time, "
            f"{c['cw_fix'] / max(1, c['c7n_fix']):.2f}x calls",
            flush=True,
        )
        if r["throttled"]:
            w = r["throttled"]
            ratio = w["span"] / max(w["floor"], 1e-9)
            print(
                f"  fix with ARM's buckets on: {w['wall']:.1f} s, {w['writes']} writes in {w['span']:.1f} s "
                f"against the floor of ({w['writes']} - 200) / 10 = {w['floor']:.1f} s ({ratio:.2f}x), "
                f"{w['throttled']} answered 429, {w['fixed']} locks added",
                flush=True,
            )


if __name__ == "__main__":
    main()
