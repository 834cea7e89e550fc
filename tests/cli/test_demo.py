"""`cryptward demo` end to end, as `make demo` runs it (the README's first command): the sandbox, Azurite and serve
as child processes, the estate fixed through events, an approval, a deallocation, a rotation run, the report; then
nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from remediations.cli.main import app
from tests.waits import limit

ROOT = Path(__file__).resolve().parents[2]


def _number(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    assert m, f"no line matching {pattern!r} in:\n{text}"
    return int(m.group(1))


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _commands_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_demo_fixes_the_estate_live_and_leaves_nothing_running(tmp_path):
    report = tmp_path / "report.html"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "CRYPTWARD_"))}
    done = subprocess.run(
        [sys.executable, "-m", "remediations.cli.main", "demo", "--report", str(report)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=limit(240),  # about 20 s alone on 2 cores; within pytest's per-test timeout, for the output
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]

    assert _number(r"events received: (\d+)", out) > 0
    assert _number(r"changes applied: (\d+)", out) > 0
    assert "approval: approved" in out
    released = re.search(r"deallocation: (\S+) released (\d+) of (\d+) pending change", out)
    assert released and int(released.group(2)) > 0, out[-4000:]
    assert _number(r"keys rotated: (\d+)", out) > 0
    assert "follow-through verified" in out
    assert re.search(r"notices: teams:secops [1-9]\d* card", out)
    assert f"report: {report}" in out
    html = report.read_text()
    assert len(html) > 10_000 and "<table" in html and "kv-purge-protection" in html
    # the estate's platform-key snapshot of a CMK disk: its fix is planned, waiting for a person
    assert "Encrypt snapshot snap-weu-golden with the customer-managed key of disk encryption set des-weu-golden" in (
        html
    )
    assert re.search(r"elapsed: ([\d.]+) s", out)  # how long it took is bench/demo.py's business

    pids = dict(re.findall(r"(\w+)=(\d+)", re.search(r"demo-pids: (.*)", out).group(1)))
    workdir = pids.pop("dir", None) or re.search(r"dir=(\S+)", out).group(1)
    assert set(pids) == {"sandbox", "azurite", "serve"}
    assert not [name for name, pid in pids.items() if _alive(int(pid))]
    assert not _commands_mentioning(workdir)
    assert not Path(workdir).exists()
    ports = [int(p) for p in re.findall(r"(?:sandbox|serve) https?://127\.0\.0\.1:(\d+)", out)]
    # Its processes are gone (above); a port still answering belongs to another process of a shared machine, which
    # may take a freed port at once: the demo's own listeners are checked through its processes, not its ports.
    assert len(ports) == 2


def test_demo_help_says_what_it_does():
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    for words in ("sandbox", "Azurite", "--keep-running", "--report", "rotation", "approv", "deallocat"):
        assert words in result.output
