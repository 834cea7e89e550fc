"""Rotating 1,000 keys across 100 vaults: wall time and the ARM + Key Vault calls per rotation against the minimum.

An in-process sandbox (a thread) gets N vaults of K keys each, every vault tagged `cryptward-max-key-age=P90D` (which
takes its keys into rotation) and every key version backdated 120 days; the bot gets the custom role of
infra/cryptward-role.json and runs `remediations.rotation.run.rotate` over the subscription, twice:

1. with the sandbox's throttling off: the raw cost (time and calls);
2. with realistic Key Vault throttling on (per vault 4000 units / 10 s, a subscription's vaults together 5 times that;
   a rotate is a CREATE, 200 units, so 20 per vault and 100 per subscription per 10 s): the wall time it implies,
   measured (the SDK retries the 429s) and as the throttling model's lower bound.

Minimum per rotation: one rotate and one read of the key's state. Rotation also reads the key once more on the data
plane right before rotating (the idempotence check), and discovers keys with one list of vaults per subscription and
one list of keys per tagged vault.

    .venv/bin/python bench/rotation.py [--vaults 100] [--keys 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.azure import Azure, CloudProfile  # noqa: E402
from remediations.engine.reader import Scope  # noqa: E402
from remediations.rotation.run import rotate  # noqa: E402
from remediations.settings import Settings  # noqa: E402
from sandbox import scenarios  # noqa: E402
from sandbox.runner import start_in_thread  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from engine import grant_role  # noqa: E402

KV_API, RES_API = "2026-05-15", "2025-04-01"
AGE = 120 * 86400


def seed(sb, sub: str, vaults: int, keys: int) -> None:
    group = f"/subscriptions/{sub}/resourceGroups/rg-rotation-bench"
    scenarios.arm(sb, "PUT", group, {"location": "westeurope"}, api_version=RES_API)
    for v in range(vaults):
        vault = f"{group}/providers/Microsoft.KeyVault/vaults/kv-rot-{v:03}"
        body = {
            "location": "westeurope",
            "tags": {"cryptward-max-key-age": "P90D"},
            "properties": {"tenantId": sb.state.tenant_id, "sku": {"family": "A", "name": "standard"}},
        }
        scenarios.arm(sb, "PUT", vault, body, api_version=KV_API)
        for k in range(keys):
            scenarios.arm(sb, "PUT", f"{vault}/keys/key-{k:02}", {"properties": {"kty": "RSA"}}, api_version=KV_API)


def backdate(sb) -> None:
    """Make every key's current version 120 days old (the sandbox clock cannot run backwards)."""
    for entry in sb.state.table("keyvault.keys").values():
        attrs = entry["versions"][-1]["attributes"]
        attrs["created"] -= AGE
        attrs["updated"] -= AGE


def measure(running, azure: Azure, sub: str, bot_oid: str, label: str) -> tuple[float, int]:
    sb = running.sandbox
    calls = sb.state.calls
    since = len(calls)
    now = datetime.fromisoformat(sb.state.clock.iso().replace("Z", "+00:00"))
    t0 = time.perf_counter()
    report = rotate(Scope((sub,)), azure=azure, settings=Settings(), now=now, policies=[])
    elapsed = time.perf_counter() - t0
    mine = [c for c in calls[since:] if c["principal"] == bot_oid and c["plane"] != "token"]
    n = len(report.rotated)
    kinds: Counter[str] = Counter()
    for c in mine:
        if c["status"] == 401:
            kinds["kv challenge (401)"] += 1
        elif c["status"] == 429:
            kinds[f"{c['plane']} throttled (429)"] += 1
        elif c["plane"] == "keys":
            kinds["kv rotate" if c["method"] == "POST" else "kv read"] += 1
        else:
            kinds["arm read" if c["method"] == "GET" else "arm write"] += 1
    total = sum(kinds.values())
    served = [c["latencyMs"] for c in mine if c["plane"] == "keys" and c.get("latencyMs") is not None]
    print(f"\n{label}: {n} keys rotated of {len(report.checked)} checked in {elapsed:.1f} s ({n / elapsed:,.1f}/s)")
    print(f"  calls: {total} ({total / max(n, 1):.2f} per rotation; minimum 2: one rotate + one read)")
    for kind, count in sorted(kinds.items()):
        print(f"    {kind:<24} {count:>6} ({count / max(n, 1):.3f} per rotation)")
    if served:
        print(
            f"  {elapsed / max(total, 1) * 1000:.0f} ms per call as the bot sees it; the sandbox logs "
            f"{sum(served) / len(served):.1f} ms of handling per Key Vault call (the rest is the HTTPS round trip)"
        )
    if report.failures:
        print(f"  failures: {len(report.failures)}, e.g. {report.failures[0].reason}")
    return elapsed, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vaults", type=int, default=100)
    parser.add_argument("--keys", type=int, default=10, help="keys per vault")
    args = parser.parse_args()

    running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-bench-")))
    sb, info = running.sandbox, running.info()
    os.environ.update(running.client_env())
    sub, principals = info["subscriptionId"], info["principals"]
    from azure.identity import ManagedIdentityCredential

    sb.state.settings.throttle = False
    t0 = time.perf_counter()
    seed(sb, sub, args.vaults, args.keys)
    admin_id = principals["admin"]["client_id"]
    admin = Azure(CloudProfile.from_env(), credential_factory=lambda: ManagedIdentityCredential(client_id=admin_id))
    grant_role(admin, running, sub)
    os.environ["AZURE_CLIENT_ID"] = principals["bot"]["client_id"]
    bot_oid = principals["bot"]["object_id"]
    print(
        f"estate: {args.vaults} vaults x {args.keys} keys, versions 120 days old "
        f"(seeded in {time.perf_counter() - t0:.1f} s)"
    )

    backdate(sb)
    bot = Azure.from_env()
    raw, n = measure(running, bot, sub, bot_oid, "throttling off (raw cost)")
    bot.close()

    backdate(sb)
    sb.throttler.clear()
    sb.state.settings.throttle = True
    bot = Azure.from_env()
    throttled, _ = measure(
        running, bot, sub, bot_oid, "throttling on (Key Vault: 4000 units/10 s per vault, x5 per subscription)"
    )
    bot.close()

    s = sb.state.settings
    unit, per_sub = 4000 / 20, s.kv_budget * s.kv_subscription_factor
    refill = per_sub / s.kv_window_seconds
    bound = max(0.0, n * unit - per_sub) / refill
    print(
        f"\nthrottling model: a rotate costs {unit:.0f} units; the subscription's {per_sub:,.0f}-unit bucket refills "
        f"{refill:,.0f}/s = {refill / unit:.0f} rotations/s, so {n} rotations need at least {bound:.0f} s however "
        f"parallel the client; one worker rotating serially at {n / raw:.1f}/s takes {raw:.0f} s raw and "
        f"{throttled:.0f} s throttled"
    )
    admin.close()
    running.stop()


if __name__ == "__main__":
    main()
