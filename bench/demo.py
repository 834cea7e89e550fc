"""How long `cryptward demo` takes, as `make demo` runs it: the README promises about 30 seconds, and under two
minutes on a 2-core machine. tests/cli/test_demo.py checks what the demo does, not how fast (a test must hold on a
busy machine); this measures it, on a quiet one.

    .venv/bin/python bench/demo.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 120.0  # seconds, on 2 cores


def once() -> float:
    """One demo in a temporary folder; its own `elapsed:` line (the demo's work, not the interpreter's start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "CRYPTWARD_"))}
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "remediations.cli.main", "demo", "--report", str(Path(tmp) / "report.html")],
            cwd=tmp,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
        )
    out = done.stdout + done.stderr
    found = re.search(r"elapsed: ([\d.]+) s", out)
    if done.returncode != 0 or not found:
        raise SystemExit(f"the demo failed (exit {done.returncode}):\n{out[-3000:]}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    times = [once() for _ in range(args.runs)]
    median = statistics.median(times)
    print(f"cryptward demo, {args.runs} run(s) on {os.cpu_count()} cores: {', '.join(f'{t:.1f} s' for t in times)}")
    verdict = "ok" if median < TARGET else "MISSED"
    print(f"  {'demo, elapsed (median)':<44} {median:>20.1f} s   target < {TARGET:.0f} s{'':<10} {verdict}")


if __name__ == "__main__":
    main()
