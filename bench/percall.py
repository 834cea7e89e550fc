"""The CPU an ARM call costs, on the bot's side and on the sandbox's, and where it goes.

    .venv/bin/python bench/percall.py                      # microbench: 2,000 GETs and 2,000 small lists, CPU a call
    .venv/bin/python bench/percall.py --profile            # one full scan of 5,000 vaults under cProfile, both sides
    .venv/bin/python bench/percall.py --profile --vaults 1000 --top 25

The sandbox runs in this process on its own thread (sandbox.runner.start_in_thread), so its CPU is that thread's
clock (`pthread_getcpuclockid`), apart from the bot's: in the microbench the bot's requests go from the main thread
(`time.thread_time`), in the profile the bot is a `cryptward scan` subprocess (its rusage). Each profile is timed by
each thread's own CPU clock (not the wall: waits for answers cost nothing) and covers every thread of its side: the
bot's read workers (`Azure.each`) get a profiler each, merged at exit. The profilers themselves inflate the CPU.
The estate is bench/scale.py's (vaults, locks on half, disks, VMs, disk encryption sets), seeded in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale import KV_API, bot_gets, estate_steps, grant_bot  # noqa: E402

from remediations.azure import Azure  # noqa: E402
from sandbox.runner import Running, start_in_thread  # noqa: E402
from sandbox.scenarios import play  # noqa: E402

# Runs `cryptward ARGS...` with a cProfile on every thread, and dumps their merged stats to the file named first.
PROFILED = """
import atexit, cProfile, pstats, sys, threading, time
out, profiles = sys.argv[1], []
run = threading.Thread.run
def profiled(self):
    p = cProfile.Profile(time.thread_time)
    profiles.append(p)
    p.enable()
    try:
        run(self)
    finally:
        p.disable()
threading.Thread.run = profiled
main_profile = cProfile.Profile(time.thread_time)
def dump():
    main_profile.disable()
    stats = pstats.Stats(main_profile)
    for p in profiles:
        p.disable()  # a worker still parked in its pool: what it finished counts
        try:
            stats.add(p)
        except TypeError:  # a profile that never recorded anything
            pass
    stats.dump_stats(out)
atexit.register(dump)
sys.argv = ["cryptward", *sys.argv[2:]]
from remediations.cli.main import main
main_profile.enable()
main()
"""


def sandbox_cpu(running: Running) -> float:
    """CPU seconds the sandbox's server thread has used."""
    assert running.thread is not None and running.thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(running.thread.ident))


def seeded(vaults: int) -> tuple[Running, dict[str, str], str]:
    running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-percall-")), scenario="empty")
    info, sb = running.info(), running.sandbox
    sub = info["subscriptionId"]
    steps, _ = estate_steps(sub, info["tenantId"], vaults)
    play(sb, steps)
    grant_bot(running, sub)
    sb.state.settings.throttle = False
    sb.state.settings.read_budget, sb.state.settings.read_refill = 10**9, float(10**9)
    env = {**os.environ, **running.client_env(), "AZURE_CLIENT_ID": info["principals"]["bot"]["client_id"]}
    return running, env, sub


def micro(running: Running, env: dict[str, str], sub: str, calls: int) -> None:
    os.environ.update(env)
    azure = Azure.from_env(env)
    vaults = [rid for rid in running.sandbox.state.resources if "/vaults/" in rid.lower() and rid.count("/") == 8]
    vaults = vaults[: max(1, min(len(vaults), calls))]
    for vault in vaults[:20]:  # a token, a connection, the clients: made before the clock starts
        azure.get(vault, KV_API)
    for label, call in (
        ("GET a vault", lambda v: azure.get(v, KV_API)),
        ("list a vault's keys", lambda v: list(azure.list(f"{v}/keys", KV_API))),
    ):
        before = len(running.sandbox.state.calls)
        bot0, sb0, wall0 = time.thread_time(), sandbox_cpu(running), time.perf_counter()
        for i in range(calls):
            call(vaults[i % len(vaults)])
        bot, sb = time.thread_time() - bot0, sandbox_cpu(running) - sb0
        wall = time.perf_counter() - wall0
        n = len(running.sandbox.state.calls) - before
        print(
            f"{label}: {n} calls in {wall:.2f} s; CPU a call: bot {bot / n * 1000:.3f} ms, "
            f"sandbox {sb / n * 1000:.3f} ms",
            flush=True,
        )
    azure.close()


def profile(running: Running, env: dict[str, str], sub: str, top: int, save: Path | None = None) -> None:
    loop = running.server.servers[0].get_loop()
    server_profile = cProfile.Profile(time.thread_time)  # CPU, not waits: the thread's own clock
    with tempfile.NamedTemporaryFile(suffix=".prof") as out:
        before, sb0 = len(running.sandbox.state.calls), sandbox_cpu(running)
        asyncio.run_coroutine_threadsafe(_call(server_profile.enable), loop).result()
        args = [sys.executable, "-c", PROFILED, out.name, "scan", "-s", sub, "--format", "json"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        asyncio.run_coroutine_threadsafe(_call(server_profile.disable), loop).result()
        sb = sandbox_cpu(running) - sb0
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"scan failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        bot = usage.ru_utime + usage.ru_stime
        n = len(bot_gets(running, before, running.info()["principals"]["bot"]["object_id"]))
        print(
            f"one full scan under the profilers: {wall:.1f} s, {n} ARM GETs; CPU: bot {bot:.1f} s "
            f"({bot / n * 1000:.2f} ms a call), sandbox {sb:.1f} s ({sb / n * 1000:.2f} ms a call)\n"
        )
        print(_top(pstats.Stats(out.name), "the bot (cryptward scan)", top))
        if save:
            save.mkdir(parents=True, exist_ok=True)
            pstats.Stats(out.name).dump_stats(save / "bot.prof")
            server_profile.dump_stats(save / "sandbox.prof")
    print(_top(pstats.Stats(server_profile), "the sandbox (its server thread)", top))


async def _call(f: Any) -> None:
    f()  # on the server's loop: a cProfile profiles the thread that enables it


def _top(stats: pstats.Stats, title: str, top: int) -> str:
    out = []
    for order in ("cumulative", "tottime"):
        buf = io.StringIO()
        stats.stream = buf  # type: ignore[attr-defined]
        stats.strip_dirs().sort_stats(order).print_stats(top)
        lines = buf.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        out.append(f"{title}, top {top} by {order} CPU:\n" + "\n".join(lines[start:]).rstrip() + "\n")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vaults", type=int, default=None, help="vaults to seed (5,000 with --profile, else 200)")
    parser.add_argument("--calls", type=int, default=2000, help="calls of each kind in the microbench")
    parser.add_argument("--profile", action="store_true", help="profile one full scan instead")
    parser.add_argument("--top", type=int, default=15, help="profile entries printed per side")
    parser.add_argument("--save", type=Path, default=None, help="also write the profiles here (bot.prof, sandbox.prof)")
    args = parser.parse_args()
    vaults = args.vaults or (5000 if args.profile else 200)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}, {vaults} vaults")
    running, env, sub = seeded(vaults)
    try:
        if args.profile:
            profile(running, env, sub, args.top, args.save)
        else:
            micro(running, env, sub, args.calls)
    finally:
        running.stop()


if __name__ == "__main__":
    main()
