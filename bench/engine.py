"""The engine's Azure calls per remediated resource against the minimum, and evaluations per second of read -> plan.

An in-process sandbox (a thread) is seeded with the `estate` scenario plus N more non-compliant vaults and disks,
the bot gets the custom role of infra/cryptward-role.json, and the engine sweeps the subscription as the bot:

1. a dry run (read -> evaluate -> plan), repeated: ARM reads per resource read, evaluations per second;
2. a sweep with --apply: for each remediated resource, the calls its changes made (writes, LRO polls, verification
   reads, the Key Vault challenge) against the minimum: one read of what must be known (its share of the sweep's
   reads) plus one write per change. Target: at most one call above the minimum per remediated resource;
3. a second sweep: writes (target: 0).

    .venv/bin/python bench/engine.py [--vaults 40] [--disks 40] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.azure import Azure, CloudProfile  # noqa: E402
from remediations.changes import PlanSettings  # noqa: E402
from remediations.engine.reader import Scope, type_of  # noqa: E402
from remediations.engine.run import scan  # noqa: E402
from remediations.policy.loader import load_policies  # noqa: E402
from remediations.settings import Settings  # noqa: E402
from sandbox.runner import start_in_thread  # noqa: E402
from sandbox.scenarios import assign, custom_role  # noqa: E402

KV_API, DISK_API, ROLE_API = "2026-05-15", "2026-03-02", "2022-04-01"


def seed(admin: Azure, sub: str, tenant: str, vaults: int, disks: int) -> None:
    group = f"/subscriptions/{sub}/resourceGroups/rg-bench"
    admin.write("PUT", group, "2025-04-01", {"location": "westeurope"})
    for i in range(vaults):
        body = {
            "location": "westeurope",
            "properties": {"tenantId": tenant, "sku": {"family": "A", "name": "standard"}, "accessPolicies": []},
        }
        admin.write("PUT", f"{group}/providers/Microsoft.KeyVault/vaults/kv-bench-{i:03}", KV_API, body)
    for i in range(disks):
        body = {
            "location": "westeurope",
            "sku": {"name": "Premium_LRS"},
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32},
        }
        admin.write("PUT", f"{group}/providers/Microsoft.Compute/disks/disk-bench-{i:03}", DISK_API, body)


def grant_role(admin: Azure, running, sub: str) -> None:
    doc = json.loads((ROOT / "infra" / "cryptward-role.json").read_text())
    guid = str(uuid.uuid4())
    body = custom_role(doc, sub)
    admin.write("PUT", f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}", ROLE_API, body)
    sb = running.sandbox
    assign(sb, f"/subscriptions/{sub}", sb.directory.named("bot"), guid)
    # and, as infra/app/workspace-access.bicep, its workspace role on the workspace alone
    ws_doc = json.loads((ROOT / "infra" / "cryptward-workspace-role.json").read_text())
    ws_guid = str(uuid.uuid4())
    body["properties"] |= {
        "roleName": ws_doc["roleName"],
        "description": ws_doc["description"],
        "permissions": [{k: ws_doc[k] for k in ("actions", "notActions", "dataActions", "notDataActions")}],
    }
    admin.write(
        "PUT", f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ws_guid}", ROLE_API, body
    )
    workspace = (
        f"/subscriptions/{sub}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
    )
    assign(sb, workspace, sb.directory.named("bot"), ws_guid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vaults", type=int, default=40)
    parser.add_argument("--disks", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-bench-")), scenario="estate")
    info = running.info()
    os.environ.update(running.client_env())
    sub, principals = info["subscriptionId"], info["principals"]
    from azure.identity import ManagedIdentityCredential

    admin = Azure(
        CloudProfile.from_env(),
        credential_factory=lambda: ManagedIdentityCredential(client_id=principals["admin"]["client_id"]),
    )
    seed(admin, sub, info["tenantId"], args.vaults, args.disks)
    grant_role(admin, running, sub)
    os.environ["AZURE_CLIENT_ID"] = principals["bot"]["client_id"]
    bot_oid = principals["bot"]["object_id"]

    known = f"/subscriptions/{sub}"
    settings = Settings(
        plan=PlanSettings(
            workspace_id=f"{known}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-cryptward",
            disk_encryption_sets={
                "westeurope": {
                    "EncryptionAtRestWithCustomerKey": f"{known}/resourceGroups/rg-keys-weu/providers/"
                    "Microsoft.Compute/diskEncryptionSets/des-weu"
                }
            },
        ),
        modes={"kv-purge-protection": "remediate"},
    )
    policies = load_policies(ROOT / "policies")
    scope = Scope((sub,))
    calls = running.sandbox.state.calls

    def bot_calls(since: int) -> list[dict]:
        return [c for c in calls[since:] if c["path"] != "/msi/token" and c["principal"] in (bot_oid, None)]

    # 1. read -> evaluate -> plan, repeated.
    azure = Azure.from_env()
    scan(scope, policies, settings=settings, azure=azure)  # warm: token, connections, imports
    rates, reads = [], 0
    for _ in range(args.runs):
        since = len(calls)
        t0 = time.perf_counter()
        report = scan(scope, policies, settings=settings, azure=azure)
        elapsed = time.perf_counter() - t0
        rates.append(report.evaluations / elapsed)
        reads = len(bot_calls(since))
    print(f"estate: {report.resources} resources, {len(policies)} policies, {len(report.findings)} findings")
    per = reads / report.resources
    print(f"read -> plan: {reads} ARM reads for {report.resources} resources ({per:.2f} per resource)")
    print(f"evaluations per second (full read -> plan pipeline): median {sorted(rates)[len(rates) // 2]:,.0f}")

    # 2. apply, one change after another: the calls are attributed to the write they follow in the call log, which
    # concurrent writes (CRYPTWARD_WRITE_CONCURRENCY) would interleave. The calls are the same either way.
    azure.write_workers = 1
    since = len(calls)
    report = scan(scope, policies, apply=True, settings=settings, azure=azure)
    applied = [r for r in report.results if r.status == "applied"]
    log = bot_calls(since)
    # A write is a PUT/PATCH/POST that got through (Key Vault's first request of a connection is answered by a 401
    # challenge, then sent again: that round trip counts as one of the write's calls). The GETs after a write are
    # its LRO polls, final GET and verification, except a GET of the next write's own target (its re-read).
    starts = [i for i, c in enumerate(log) if c["method"] != "GET" and c["status"] != 401]
    sweep_reads = len([c for c in log[: starts[0] if starts else len(log)] if c["method"] == "GET"])
    groups: list[list[dict]] = []
    carry: list[dict] = []
    for n, i in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(log)
        group = [*carry, log[i]]
        body = log[i + 1 : end]
        nxt = log[end]["path"] if end < len(log) else None
        carry = []
        while body and nxt and (body[-1]["path"] == nxt or body[-1]["status"] == 401):
            carry.insert(0, body.pop())
        groups.append(group + body)
    by_resource: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # [writes, calls]
    for result, group in zip(applied, groups, strict=False):
        entry = by_resource[result.change.resource_id]
        entry[0] += 1
        entry[1] += len(group)
    remediated = len(by_resource)
    share = sweep_reads / max(1, report.resources)
    print(f"\napply: {len(applied)} changes on {remediated} resources; sweep reads {sweep_reads} ({share:.2f} each)")
    print(f"{'resource type':<40} {'n':>4} {'writes':>7} {'calls':>7} {'minimum':>8} {'above':>6}")
    kinds: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for rid, (writes, total) in by_resource.items():
        kinds[type_of(rid) or "other"].append((writes, total))
    worst = 0.0
    for kind, rows in sorted(kinds.items()):
        n = len(rows)
        writes = sum(w for w, _ in rows) / n
        total = sum(t for _, t in rows) / n + share
        minimum = writes + 1
        worst = max(worst, total - minimum)
        print(f"{kind:<40} {n:>4} {writes:>7.2f} {total:>7.2f} {minimum:>8.2f} {total - minimum:>+6.2f}")
    print(f"target: at most +1 call per remediated resource; worst {worst:+.2f}")

    # 3. again: nothing to write.
    since = len(calls)
    scan(scope, policies, apply=True, settings=settings, azure=azure)
    writes = [c for c in bot_calls(since) if c["method"] != "GET"]
    print(f"\nsecond sweep: {len(writes)} writes (target 0)")
    azure.close()
    admin.close()
    running.stop()


if __name__ == "__main__":
    main()
