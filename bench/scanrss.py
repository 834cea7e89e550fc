"""Where a cold `cryptward scan`'s memory goes, step by step: the bot process's RSS and high-water mark (`VmRSS`,
`VmHWM` of /proc/self/status) after each step of the engine (the scope's lists, the vaults' extras, key roles,
existence checks, data-plane keys, evaluate and plan, the output), on the estate of bench/scale.py.

    .venv/bin/python bench/scanrss.py --vaults 5000
    .venv/bin/python bench/scanrss.py --vaults 1000 5000 20000
    .venv/bin/python bench/scanrss.py --vaults 5000 --python-heap    # also the Python heap (tracemalloc: slower)

The scan runs as `cryptward scan --format json` in a subprocess, as a user runs it (output to /dev/null); each step
is timed by wrapping the engine's functions in that process. Prints, per size, one line per step in MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale import UNLIMITED, estate_steps, grant_bot  # noqa: E402

from sandbox.runner import start_in_thread  # noqa: E402
from sandbox.scenarios import play  # noqa: E402

# Runs `cryptward ARGS...`, writing to the file named first (JSON lines) the memory after each wrapped step.
WRAPPER = """
import json, os, sys, time, tracemalloc
if os.environ.get("SCANRSS_PYTHON_HEAP"):
    tracemalloc.start(1)
out = open(sys.argv[1], "w")
t0 = time.perf_counter()
def mark(step):
    with open("/proc/self/status") as f:
        mem = {l.split(":")[0]: int(l.split()[1]) // 1024 for l in f if l.startswith(("VmRSS", "VmHWM"))}
    if tracemalloc.is_tracing():  # the Python objects alive now and at most so far, in MB
        mem["py"], mem["pypeak"] = (n >> 20 for n in tracemalloc.get_traced_memory())
    out.write(json.dumps({"step": step, "s": round(time.perf_counter() - t0, 1), **mem}) + "\\n"); out.flush()
import remediations.engine.run as run, remediations.engine.planner as planner, remediations.cli.output as output
mark("imports")
def wrap(module, name, label):
    original = getattr(module, name, None)
    if original is None:
        return
    def wrapped(*a, **k):
        result = original(*a, **k)
        mark(label)
        return result
    setattr(module, name, wrapped)
for name, label in [("read_scope", "lists read"), ("read_vault_extras", "vault extras"), ("read_key_roles",
        "key roles"), ("read_related", "existence checks"), ("read_vault_keys", "data-plane keys"),
        ("evaluate", "evaluated"), ("_streamed", "evaluated and planned (streamed)")]:
    wrap(run, name, label)
wrap(planner, "plan", "planned")
wrap(output, "write_json", "written")
import atexit
atexit.register(mark, "exit")
sys.argv = ["cryptward", *sys.argv[2:]]
from remediations.cli.main import main
main()
"""


def steps_of(vaults: int, python_heap: bool = False) -> list[dict[str, object]]:
    running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-scanrss-")), scenario="empty")
    try:
        info, sb = running.info(), running.sandbox
        sub = info["subscriptionId"]
        steps, _ = estate_steps(sub, info["tenantId"], vaults)
        play(sb, steps)
        grant_bot(running, sub)
        sb.state.settings.read_budget, sb.state.settings.read_refill = UNLIMITED, float(UNLIMITED)
        env = {**os.environ, **running.client_env(), "AZURE_CLIENT_ID": info["principals"]["bot"]["client_id"]}
        if python_heap:
            env["SCANRSS_PYTHON_HEAP"] = "1"
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as marks:
            args = [sys.executable, "-c", WRAPPER, marks.name, "scan", "-s", sub, "--format", "json"]
            proc = subprocess.run(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
            return [json.loads(line) for line in marks]
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vaults", type=int, nargs="+", default=[5000])
    parser.add_argument("--python-heap", action="store_true", help="also the Python heap, by tracemalloc (slower)")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}")
    for vaults in args.vaults:
        print(f"{vaults} vaults:")
        for m in steps_of(vaults, args.python_heap):
            heap = f"  Python heap {m['py']:5} MB (peak {m['pypeak']:5})" if "py" in m else ""
            print(f"  {m['s']:7.1f} s  RSS {m['VmRSS']:5} MB  high-water {m['VmHWM']:5} MB{heap}  after {m['step']}")


if __name__ == "__main__":
    main()
