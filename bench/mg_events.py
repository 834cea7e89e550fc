"""Event-to-fix latency with the bot scoped to a management group of many subscriptions, against one subscription.

The rig of bench/function_app.py (an in-process sandbox, Azurite, `cryptward serve` hosting function_app.py's own
functions, the bot as its managed identity with infra/cryptward-role.json), twice:

- one subscription: `CRYPTWARD_SCOPES` unset (the subscription of the deployment), its system topic subscribed;
- a management group: `CRYPTWARD_SCOPES=/providers/Microsoft.Management/managementGroups/bench` over 100
  subscriptions (the bot's role at each, Reader at the group to expand it, as infra/mg assigns it once there), each
  subscription's system topic subscribed to the same endpoint, as infra/mg/enrol-events.json enrols them.

In each, the administrator writes one new key vault at a time (in a subscription picked at random, seeded, for the
group) and the bot fixes it (lock, owner tag, diagnostic setting: the same three writes either way); the latency is
from the administrator's write to the bot's last write, both in the sandbox's call log (debounce 0). Prints both
p50s, their ratio (the issue's target: within 20 %), the ARM calls per fix and the sandbox's management-group calls
(the expansion: once, not per event).

    .venv/bin/python bench/mg_events.py [--samples 60] [--subs 100]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("bench_function_app", ROOT / "bench" / "function_app.py")
assert _spec is not None and _spec.loader is not None
rigs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rigs)

GROUP = "bench"
RES_API = "2025-04-01"


def _group_rig(rig: Any, count: int) -> list[str]:
    """`count` subscriptions (the rig's first) under management group `bench`, the bot's role at each and Reader at
    the group, a resource group `rg-bench` in each and each subscription's events to the bot."""
    import httpx

    from sandbox import scenarios
    from sandbox.providers import management_groups as mg
    from sandbox.rbac import ROLES

    sb = rig.sandbox.sandbox
    bot, admin = sb.directory.named("bot"), sb.directory.named("admin")
    role = next(
        a["properties"]["roleDefinitionId"].rsplit("/", 1)[1]
        for a in sb.state.of_type("Microsoft.Authorization/roleAssignments")
        if a["properties"]["principalId"] == bot.object_id and a["properties"]["scope"] == f"/subscriptions/{rig.sub}"
    )
    mg.add_group(sb.state, GROUP, "Bench")
    subs = [rig.sub] + [str(uuid.UUID(int=0xBE7C4 << 96 | n)) for n in range(1, count)]
    for n, sub in enumerate(subs):
        if sub != rig.sub:
            scenarios.add_subscription(sb, sub, f"Bench {n:03}")
            scenarios.assign(sb, f"/subscriptions/{sub}", admin, ROLES["Owner"])
            scenarios.assign(sb, f"/subscriptions/{sub}", bot, role)
            group = f"/subscriptions/{sub}/resourceGroups/rg-bench"
            scenarios.arm(sb, "PUT", group, {"location": "westeurope"}, api_version=RES_API)
        mg.place(sb.state, sub, GROUP)
    scenarios.assign(sb, mg.group_id(GROUP), bot, ROLES["Reader"])  # expands the group (descendants/read)
    url = f"{rig.serve.base_url}/runtime/webhooks/EventGrid?functionName=eventgrid&code=bench"
    with httpx.Client(verify=str(rig.sandbox.ca), headers={"x-sandbox-key": sb.admin_key}, timeout=60) as c:
        for sub in subs:
            body = {"name": "cryptward", "endpointUrl": url, "scope": f"/subscriptions/{sub}"}
            c.post(f"{rig.sandbox.base_url}/_sandbox/eventSubscriptions", json=body).raise_for_status()
    time.sleep(0.5)  # the validation handshakes
    return subs


def _vault(rig: Any, sub: str, name: str) -> str:
    """A vault made by the administrator over HTTPS in `sub` (so its write is in the call log, timed)."""
    from azure.identity import ManagedIdentityCredential

    from remediations.azure import Azure, CloudProfile

    if not hasattr(rig, "_admin"):
        cid = rig.principals["admin"]["client_id"]
        rig._admin = Azure(CloudProfile.from_env(), credential_factory=lambda: ManagedIdentityCredential(client_id=cid))
    rid = f"/subscriptions/{sub}/resourceGroups/rg-bench/providers/Microsoft.KeyVault/vaults/{name}"
    props = {"tenantId": rig.sandbox.sandbox.state.tenant_id, "sku": {"family": "A", "name": "standard"}}
    rig._admin.write("PUT", rid, rigs.KV_API, {"location": "westeurope", "properties": props})
    return rid


def measure(label: str, count: int, samples: int, seed: int) -> dict[str, Any]:
    """Latencies of `samples` vault fixes, with the bot scoped to one subscription (count 1) or a group of `count`."""
    if count > 1:
        os.environ["CRYPTWARD_SCOPES"] = f"/providers/Microsoft.Management/managementGroups/{GROUP}"
    else:
        os.environ.pop("CRYPTWARD_SCOPES", None)
    rig = rigs.Rig(debounce=0)
    try:
        if count > 1:
            subs = _group_rig(rig, count)
        else:
            subs = [rig.sub]
            rig.subscribe()
        bot = rig.principals["bot"]["object_id"]
        pick = random.Random(seed)
        lat, per_fix, writes_per_fix, served = [], [], [], []
        mark0 = len(rig.calls())
        for i in range(samples):
            mark = len(rig.calls())
            rid = _vault(rig, pick.choice(subs), f"kv-mg-{i:03d}").lower()
            admin_write, bot_calls, writes = rigs.fix_of(rig, bot, mark, rid)
            if not writes:
                raise SystemExit(f"{label}: no fix of {rid} within 10 s")
            lat.append(rigs._t(writes[-1]["time"]) - rigs._t(admin_write["time"]))
            per_fix.append(len(bot_calls))
            served.append(sum(float(c.get("latencyMs") or 0) for c in bot_calls) / 1000)
            writes_per_fix.append(len(writes))
        groups = [c for c in rig.calls(mark0) if c["principal"] == bot and "managementgroups" in c["path"].lower()]
        lat.sort()
        return {
            "label": label,
            "p50": lat[len(lat) // 2],
            "p90": lat[min(len(lat) - 1, int(len(lat) * 0.9))],
            "calls": statistics.median(per_fix),
            "writes": statistics.median(writes_per_fix),
            "served": statistics.median(served),
            "group_calls": len(groups),
        }
    finally:
        rig.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--subs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"event-to-fix latency, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load {load:.1f}, {args.samples} vaults one at a time, debounce 0")  # fmt: skip
    one = measure("one subscription", 1, args.samples, args.seed)
    group = measure(f"management group of {args.subs}", args.subs, args.samples, args.seed)
    for r in (one, group):
        print(
            f"  {r['label']:<32} p50 {r['p50'] * 1000:5.0f} ms   p90 {r['p90'] * 1000:5.0f} ms   "
            f"sandbox time of its calls {r['served'] * 1000:4.0f} ms   ARM calls per fix {r['calls']:.0f} "
            f"({r['writes']:.0f} writes)   management-group calls {r['group_calls']}"
        )
    ratio = group["p50"] / one["p50"]
    rigs.line("p50 ratio group / one subscription", f"{ratio:.2f}", "<= 1.20", ratio <= 1.2)


if __name__ == "__main__":
    main()
