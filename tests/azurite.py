"""Azurite for the tests: one emulator per session on free ports, in memory, stopped by its PID at the end.

    def test_x(azurite):            # the connection string, as AzureWebJobsStorage would hold it
        Ledger(azurite)

Azurite comes from node_modules (package.json pins it; `bash scripts/setup.sh` runs `npm ci`). A missing Azurite
fails the tests that need it, it does not skip them: a skipped ledger test would hide a broken ledger.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waits import START, limit

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")


def connection_string(blob: int, queue: int, table: int) -> str:
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob}/{ACCOUNT};QueueEndpoint={base}:{queue}/{ACCOUNT};"
        f"TableEndpoint={base}:{table}/{ACCOUNT};"
    )


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start Azurite (ports chosen by the OS, read back from its log) and yield its connection string."""
    if not AZURITE.exists():
        pytest.fail(
            f"Azurite is not installed ({AZURITE.relative_to(ROOT)} is missing): run `make test` or "
            "`bash scripts/setup.sh` (it runs `npm ci` from package.json)",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("azurite")
    log_path = workdir / "azurite.log"
    # --inMemoryPersistence cannot be combined with --location; the working directory is the tmp dir instead.
    # Not --silent: the "listening at" lines are how the ports chosen for port 0 are learned (no port race).
    args = [str(AZURITE), "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck"]
    args += ["--blobPort", "0", "--queuePort", "0", "--tablePort", "0"]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(args, cwd=workdir, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        ports = _wait_for_ports(proc, log_path)
        yield connection_string(ports["Blob"], ports["Queue"], ports["Table"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=limit(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=limit(10))


def _wait_for_ports(proc: subprocess.Popen[bytes], log_path: Path) -> dict[str, int]:
    deadline = time.monotonic() + limit(START)
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        ports = {service: int(port) for service, port in _LISTENING.findall(text)}
        if len(ports) == 3:
            return ports
        if proc.poll() is not None:
            pytest.fail(f"Azurite exited with code {proc.returncode} before listening:\n{text[-2000:]}", pytrace=False)
        time.sleep(0.05)
    pytest.fail(f"Azurite did not listen within {limit(START):.0f} s; its log:\n{text[-2000:]}", pytrace=False)
