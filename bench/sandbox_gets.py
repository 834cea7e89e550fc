"""Sandbox throughput: authenticated ARM GETs per second on this machine (target: 500/s or more on 2 cores).

The sandbox runs in its own process (`python -m sandbox serve`), as in the bot's benchmarks; clients use keep-alive
HTTPS connections from a few threads. The baseline is the sandbox's cheapest route (admin health) measured the same
way, so the ratio shows what ARM's work (token check, RBAC, lookup, JSON) costs per request.

    .venv/bin/python bench/sandbox_gets.py [--seconds 3] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def start_sandbox(state: Path) -> tuple[subprocess.Popen[bytes], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--state", str(state)], stdout=subprocess.DEVNULL
    )
    info_path = state / "server.json"
    deadline = time.monotonic() + 20
    while not info_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the sandbox did not start")
        time.sleep(0.05)
    return proc, json.loads(info_path.read_text())


def load(
    url: str, headers: dict[str, str], tls: ssl.SSLContext, seconds: float, threads: int
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        mine = []
        with httpx.Client(verify=tls, headers=headers) as client:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = client.get(url)
                mine.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    return
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise SystemExit(f"requests failed: {errors[0]}")
    return len(latencies), latencies


def report(name: str, count: int, latencies: list[float], seconds: float) -> float:
    rate = count / seconds
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:34} {rate:8.0f} req/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms   ({count} requests)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, info = start_sandbox(Path(tmp))
        try:
            tls = ssl.create_default_context(cafile=info["ca"])
            admin = info["principals"]["admin"]["client_id"]
            token = httpx.get(
                info["identityEndpoint"],
                params={"api-version": "2019-08-01", "resource": "https://management.azure.com", "client_id": admin},
                headers={"X-IDENTITY-HEADER": info["identityHeader"]},
                verify=tls,
            ).json()["access_token"]
            base, sub = info["baseUrl"], info["subscriptionId"]
            auth = {"Authorization": f"Bearer {token}"}
            rg = f"{base}/subscriptions/{sub}/resourcegroups/rg-bench?api-version=2025-04-01"
            httpx.put(rg, json={"location": "westeurope"}, headers=auth, verify=tls).raise_for_status()
            # This measures the sandbox, not ARM's budget (250 reads + 25/s per principal would refuse most of the
            # load): buckets still count and send their headers, they just never answer 429.
            key = {"x-sandbox-key": info["adminKey"]}
            off = httpx.patch(f"{base}/_sandbox/settings", json={"throttle": False}, headers=key, verify=tls)
            off.raise_for_status()
            print(f"sandbox GET throughput, {args.threads} client threads, {args.seconds:.0f} s each, 2-core budget")
            n, lat = load(
                f"{base}/_sandbox/health", {"x-sandbox-key": info["adminKey"]}, tls, args.seconds, args.threads
            )
            baseline = report("baseline: admin health route", n, lat, args.seconds)
            n, lat = load(rg, auth, tls, args.seconds, args.threads)
            arm = report("ARM GET resource group (authz)", n, lat, args.seconds)
            verdict = "met" if arm >= 500 else "MISSED"
            print(f"ARM GET / baseline ratio: {arm / baseline:.2f}   target 500 req/s: {verdict} ({arm / 500:.1f}x)")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
