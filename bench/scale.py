"""Scan cost against the size of the estate: 1k, 5k and 20k vaults (plus disks, VMs and disk encryption sets in
proportion), throttling off and on. Prints, per size: wall and CPU time of a cold `cryptward scan` (all policies, dry
run, a subprocess), its ARM calls and calls per resource against the minimum, its peak RSS; in-process, the time to
read, and the CPU time to evaluate (resources/s) and to plan (CPU time: on a shared machine, others' load does not
count); then the growth exponents (a least-squares fit of log time over log size).
With throttling on (ARM's buckets, 250 reads refilled 25/s), the scan against the floor
max(N / concurrency x latency, (N - 250) / 25 s) for its N reads. Throttling off is ARM without limits: no 429, and
the remaining-reads headers show a bucket of 10^9.

The estate is seeded in-process through the sandbox's own ARM handler (sandbox.scenarios.play: validation, RBAC and
the operations log as for an HTTP request), not by N HTTPS PUTs. The bot scans as itself, with the custom role of
infra/cryptward-role.json.

    .venv/bin/python bench/scale.py                       # 1000 and 5000 vaults, throttling off; 1000 with it on
    .venv/bin/python bench/scale.py --sizes 1000 5000 20000 --throttled 1000
    .venv/bin/python bench/scale.py --sizes 200 --throttled --runs 1   # a quick look

The sandbox serves each vault's data plane on its own listening port (its own origin, as `{vault}.vault.azure.net`
is), a file descriptor each: past half of its descriptor limit, helper processes hold them (sandbox/portrelay.py), so
20k vaults fit under a limit of 20,000.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.azure import Azure, CloudProfile  # noqa: E402
from remediations.changes import PlanContext  # noqa: E402
from remediations.engine import azexemptions, planner  # noqa: E402
from remediations.engine.found import ASSIGNMENT_BLOCKS, DES, DISK, KEY, VM  # noqa: E402
from remediations.engine.listing import wanted_lists  # noqa: E402
from remediations.engine.reader import Needs, Scope, read_scope  # noqa: E402
from remediations.engine.run import callers, configure, evaluate  # noqa: E402
from remediations.engine.scalesets import IMAGE, VMSS  # noqa: E402
from remediations.engine.subscription import READS as SUBSCRIPTION_READS  # noqa: E402
from remediations.engine.vaultextras import ACCESS_REVIEW, ITEMS  # noqa: E402
from remediations.pacing import DEFAULT_WORKERS  # noqa: E402
from remediations.policy.loader import Policy, load_policies  # noqa: E402
from remediations.settings import Settings  # noqa: E402
from sandbox.rbac import ROLES  # noqa: E402
from sandbox.runner import Running, start_in_thread  # noqa: E402
from sandbox.scenarios import Step, assign, custom_role, play  # noqa: E402

KV_API, COMPUTE_API, VM_API, RES_API, LOCK_API, ROLE_API = (
    "2026-05-15",
    "2026-03-02",
    "2026-04-01",
    "2025-04-01",
    "2020-05-01",
    "2022-04-01",
)
GROUPS = 4
UNLIMITED = 10**9
SHARED = ("kv-purge-protection", "kv-delete-lock")  # the checks Cloud Custodian has too (bench/c7n.py)


def estate_steps(sub: str, tenant: str, vaults: int) -> tuple[list[Step], dict[str, int]]:
    """`vaults` vaults (a quarter with purge protection, half with a delete lock), half as many disks, a tenth as
    many VMs (each on one of the disks), a hundredth as many disk encryption sets (each on its own key)."""
    groups = [f"/subscriptions/{sub}/resourceGroups/rg-scale-{g}" for g in range(GROUPS)]
    steps = [Step("PUT", g, RES_API, {"location": "westeurope"}) for g in groups]
    sku = {"family": "A", "name": "standard"}
    sets = max(1, vaults // 100)
    for i in range(vaults):
        vault = f"{groups[i % GROUPS]}/providers/Microsoft.KeyVault/vaults/kv-s-{i:05}"
        props: dict[str, Any] = {"tenantId": tenant, "sku": sku, "accessPolicies": []}
        if i % 4 == 0:
            props["enablePurgeProtection"] = True
        steps.append(Step("PUT", vault, KV_API, {"location": "westeurope", "properties": props}))
        if i % 2 == 0:
            lock = f"{vault}/providers/Microsoft.Authorization/locks/keep"
            steps.append(Step("PUT", lock, LOCK_API, {"properties": {"level": "CanNotDelete"}}))
        if i < sets:
            key = f"{vault}/keys/des-key"
            steps.append(Step("PUT", key, KV_API, {"properties": {"kty": "RSA", "keySize": 2048}}))
            des = f"{groups[i % GROUPS]}/providers/Microsoft.Compute/diskEncryptionSets/des-s-{i:04}"
            steps.append(Step("PUT", des, COMPUTE_API, _des_body(vault, key)))
    disks = vaults // 2
    for i in range(disks):
        disk = f"{groups[i % GROUPS]}/providers/Microsoft.Compute/disks/disk-s-{i:05}"
        props = {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32, "osType": "Linux"}
        steps.append(
            Step(
                "PUT",
                disk,
                COMPUTE_API,
                {"location": "westeurope", "sku": {"name": "Premium_LRS"}, "properties": props},
            )
        )
    vms = vaults // 10
    for i in range(vms):
        group = groups[i % GROUPS]
        disk = f"{group}/providers/Microsoft.Compute/disks/disk-s-{i:05}"
        storage = {
            "osDisk": {"osType": "Linux", "createOption": "Attach", "managedDisk": {"id": disk}},
            "dataDisks": [],
        }
        body = {
            "location": "westeurope",
            "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}, "storageProfile": storage},
        }
        steps.append(Step("PUT", f"{group}/providers/Microsoft.Compute/virtualMachines/vm-s-{i:05}", VM_API, body))
    return steps, {"vaults": vaults, "keys": sets, "sets": sets, "disks": disks, "vms": vms}


def _des_body(vault: str, key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def body(answers: dict[str, Any]) -> dict[str, Any]:
        return {
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "encryptionType": "EncryptionAtRestWithCustomerKey",
                "activeKey": {"sourceVault": {"id": vault}, "keyUrl": answers[key]["properties"]["keyUriWithVersion"]},
            },
        }

    return body


def grant_bot(running: Running, sub: str) -> None:
    """The custom role of infra/cryptward-role.json, assigned to the bot at the subscription."""
    from sandbox.scenarios import arm

    doc = json.loads((ROOT / "infra" / "cryptward-role.json").read_text())
    guid = str(uuid.uuid4())
    body = custom_role(doc, sub)
    sb = running.sandbox
    arm(
        sb,
        "PUT",
        f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
        body,
        api_version=ROLE_API,
    )
    assign(sb, f"/subscriptions/{sub}", sb.directory.named("bot"), guid)
    assign(sb, f"/subscriptions/{sub}", sb.directory.named("bot"), ROLES["Reader"])


def cli_scan(
    env: dict[str, str], sub: str, policies: tuple[str, ...] = (), apply: bool = False
) -> tuple[float, float, float]:
    """A cold `cryptward scan` in a subprocess: (wall seconds, peak RSS in MB, CPU seconds it used).

    The peak is the scan's own `VmHWM` (the high-water mark of its memory, written as it exits), not `ru_maxrss`
    from wait4: Linux keeps in ru_maxrss the largest RSS of the memory the process had before execve, which for a
    child spawned by this process (vfork) is this process's own, the sandbox with the whole estate (fs/exec.c,
    exec_mmap: setmax_mm_hiwater_rss(&tsk->signal->maxrss, old_mm)). Measured: 112 MB ru_maxrss for 63 MB VmHWM."""
    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as hwm:
        args = [sys.executable, "-c", HWM_WRAPPER, hwm.name, "scan", "-s", sub, "--format", "json"]
        args += [a for p in policies for a in ("-p", p)] + (["--apply"] if apply else [])
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode not in (0, 1):
                err.seek(0)
                raise SystemExit(f"scan failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        peak_kb = int(hwm.read().strip() or 0)
    return wall, peak_kb / 1024, usage.ru_utime + usage.ru_stime


# Runs `cryptward ARGS...` and writes its VmHWM (kB) to the file named first, as it exits (even by SystemExit).
HWM_WRAPPER = """
import atexit, sys
def hwm(path=sys.argv[1]):
    with open("/proc/self/status") as f, open(path, "w") as out:
        out.write(next((l.split()[1] for l in f if l.startswith("VmHWM")), "0"))
atexit.register(hwm)
sys.argv = ["cryptward", *sys.argv[2:]]
from remediations.cli.main import main
main()
"""


def sandbox_cpu(running: Running) -> float:
    """CPU seconds the sandbox's server thread (this process's, beside the bot's subprocess) has used."""
    assert running.thread is not None and running.thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(running.thread.ident))


def bot_gets(running: Running, since: int, bot: str) -> list[dict[str, Any]]:
    calls = running.sandbox.state.calls[since:]
    return [c for c in calls if c.get("plane") == "arm" and c.get("principal") == bot and c["method"] == "GET"]


def minimum_calls(counts: dict[str, int], page: int, policies: Sequence[Policy]) -> int:
    """The ARM reads no reader can do without for the policies that apply (what each policy reads: `Needs.of`), on
    this estate: one page per `page` items of each list the policies need (vaults, sets, disks, VMs and their power
    states, locks on half the vaults, snapshots: at least one page each); one role-assignment list when any block
    reads assignments (the access review's and the key access's can be one list); the two PIM schedule-instance
    lists of the access review; per vault, one diagnostic-settings GET and one list each of its keys and secrets
    (`items`, for expiry); one GET per key a set uses; once per subscription, each subscription block (Defender plan,
    activity-log alerts), the VM sizes of its region and its EncryptionAtHost feature, the scale-set and image lists,
    and the Azure Policy exemptions when a policy has an Azure Policy twin."""
    needs = Needs.of(policies)
    blocks = needs.blocks

    def pages(n: int) -> int:
        return max(1, math.ceil(n / page))

    sizes = {"vaults": counts["vaults"], "sets": counts["sets"], "disks": counts["disks"], "vms": counts["vms"]}
    sizes.update(locks=counts["vaults"] // 2, snapshots=0)
    calls = sum(pages(sizes[what]) for what, *_ in wanted_lists(needs))
    if needs.wants(DISK, VM):
        calls += pages(counts["vms"])  # power states (statusOnly=true): a VM list may not expand instanceView
    if ASSIGNMENT_BLOCKS & blocks or ACCESS_REVIEW.lower() in blocks:
        calls += 1
    if ACCESS_REVIEW.lower() in blocks:
        calls += 2  # roleEligibilityScheduleInstances, roleAssignmentScheduleInstances at the subscription
    if "diagnosticsettings" in blocks:
        calls += counts["vaults"]
    if ITEMS.lower() in blocks:
        calls += 2 * counts["vaults"]  # each vault's keys and secrets (the bench's vaults hold at most one key)
    if needs.wants(DES, KEY):
        calls += counts["keys"]
    calls += sum(1 for block in SUBSCRIPTION_READS if block.lower() in blocks)
    if needs.wants(VM) and counts["vms"]:
        calls += 2  # resource SKUs of the region, the EncryptionAtHost feature
    calls += sum(1 for kind in (VMSS, IMAGE) if kind in needs.types)  # snapshots: listed with the disks
    return calls + (1 if azexemptions.wanted(policies) else 0)


def fit(xs: list[float], ys: list[float]) -> float:
    """The exponent b of y = a x^b, least squares over log-log."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / den if den else float("nan")


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def measure(size: int, runs: int, throttled: bool) -> dict[str, Any]:
    running = start_in_thread(Path(tempfile.mkdtemp(prefix="cryptward-scale-")), scenario="empty")
    try:
        return _measure(running, size, runs, throttled)
    finally:
        running.stop()


def _measure(running: Running, size: int, runs: int, throttled: bool) -> dict[str, Any]:
    info, sb = running.info(), running.sandbox
    sub, bot = info["subscriptionId"], info["principals"]["bot"]["object_id"]
    t0 = time.perf_counter()
    steps, counts = estate_steps(sub, info["tenantId"], size)
    play(sb, steps)
    grant_bot(running, sub)
    seeded = time.perf_counter() - t0
    resources = counts["vaults"] + counts["keys"] + counts["sets"] + counts["disks"] + counts["vms"]
    env = {**os.environ, **running.client_env(), "AZURE_CLIENT_ID": info["principals"]["bot"]["client_id"]}
    sb.state.settings.throttle = throttled
    if not throttled:  # ARM without limits: the headers say so (a copy of ARM's bucket would otherwise pace reads)
        sb.state.settings.read_budget, sb.state.settings.read_refill = UNLIMITED, float(UNLIMITED)
    out: dict[str, Any] = {"size": size, "resources": resources, "seed_s": seeded, "throttled": throttled}

    walls, rss, cpus, served = [], [], [], []
    for _ in range(runs):
        sb.throttler.clear()
        since = len(sb.state.calls)
        before = sandbox_cpu(running)
        wall, peak, cpu = cli_scan(env, sub)
        served.append(sandbox_cpu(running) - before)
        walls.append(wall)
        rss.append(peak)
        cpus.append(cpu)
        gets = bot_gets(running, since, bot)
    out.update(
        scan_s=median(walls),
        scan_cpu=median(cpus),
        sandbox_cpu=median(served),
        rss_mb=max(rss),
        calls=len(gets),
        throttled_429=sum(c["status"] == 429 for c in gets),
    )
    policies = configure(load_policies(ROOT / "policies"), Settings.from_env(env))
    out["minimum"] = minimum_calls(counts, sb.state.settings.page_size, policies)
    out["per_resource"] = out["calls"] / resources
    lat = [c["latencyMs"] for c in gets if c.get("latencyMs") is not None]
    out["latency_ms"] = sum(lat) / len(lat) if lat else None
    if throttled:
        n = out["calls"]
        per_call = (out["latency_ms"] or 13.0) / 1000
        out["floor_s"] = max(n / DEFAULT_WORKERS * per_call, (n - 250) / 25)
        return out

    shared = []
    for _ in range(runs):
        since = len(sb.state.calls)
        wall, _, _ = cli_scan(env, sub, SHARED)
        shared.append(wall)
    out.update(shared_s=median(shared), shared_calls=len(bot_gets(running, since, bot)))

    # In-process: read once, then evaluate and plan (the CPU-bound steps), repeated.
    os.environ.update(env)
    azure = Azure(CloudProfile.from_env(env), credential_factory=Azure.from_env(env).credential_factory)
    t0 = time.perf_counter()
    reading = read_scope(azure, Scope((sub,)), Needs.of(policies))
    out["read_s"] = time.perf_counter() - t0
    evals, plans = [], []
    settings = Settings.from_env(env)
    for _ in range(max(runs, 3)):
        t0 = time.process_time()  # CPU time: the machine may be shared, and these steps use one core
        found, _ = evaluate(reading, policies, modes=dict(settings.modes))
        evals.append(time.process_time() - t0)
        from datetime import UTC, datetime

        ctx = PlanContext(
            now=datetime.now(UTC),
            resources=reading.related,
            settings=settings.plan,
            policy_ids=tuple(p.id for p in policies),
            callers=callers(reading),
        )
        t0 = time.process_time()
        plan = planner.plan(found, ctx)
        plans.append(time.process_time() - t0)
    out.update(
        eval_rate=len(reading.resources) / median(evals),
        plan_s=median(plans),
        findings=len(found),
        changes=len(plan.changes),
    )
    azure.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="vault counts, throttling off")
    parser.add_argument("--throttled", type=int, nargs="*", default=[1000], help="vault counts, throttling on")
    parser.add_argument("--runs", type=int, default=3, help="scans per size (the median is printed)")
    args = parser.parse_args()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    rows = []
    for size in args.sizes:
        r = measure(size, args.runs, throttled=False)
        rows.append(r)
        print(
            f"{size:>6} vaults ({r['resources']} resources, seeded in {r['seed_s']:.0f} s): scan {r['scan_s']:.1f} s "
            f"({r['scan_cpu']:.1f} s CPU; the sandbox {r['sandbox_cpu']:.1f} s CPU), "
            f"{r['calls']} ARM calls ({r['per_resource']:.2f}/resource; minimum {r['minimum']}, "
            f"{r['calls'] / r['minimum']:.2f}x), peak RSS {r['rss_mb']:.0f} MB; "
            f"the two shared checks {r['shared_s']:.1f} s "
            f"({r['shared_calls']} calls); read {r['read_s']:.1f} s, evaluate {r['eval_rate']:,.0f} resources/s (CPU), "
            f"plan {r['plan_s']:.3f} s CPU ({r['findings']} findings, {r['changes']} changes)",
            flush=True,
        )
    if len(rows) > 1:
        sizes = [float(r["size"]) for r in rows]
        print(
            f"growth exponents over {', '.join(str(r['size']) for r in rows)}: scan "
            f"{fit(sizes, [r['scan_s'] for r in rows]):.2f} (CPU {fit(sizes, [r['scan_cpu'] for r in rows]):.2f}), "
            f"planning {fit(sizes, [r['plan_s'] for r in rows]):.2f}, "
            f"calls {fit(sizes, [float(r['calls']) for r in rows]):.2f}, "
            f"peak RSS {fit(sizes, [r['rss_mb'] for r in rows]):.2f}"
        )
        first, last = rows[0], rows[-1]
        grown = (last["rss_mb"] - first["rss_mb"]) * 2**20 / max(last["resources"] - first["resources"], 1)
        print(
            "peak RSS " + ", ".join(f"{r['rss_mb']:.0f} MB at {r['size']:,}" for r in rows) + " vaults: "
            f"{grown / 1024:.1f} KB a resource more from {first['resources']:,} to {last['resources']:,} resources"
        )
    for size in args.throttled or []:
        r = measure(size, 1, throttled=True)
        print(
            f"{size:>6} vaults, throttling on: scan {r['scan_s']:.1f} s, {r['calls']} reads ({r['throttled_429']} "
            f"answered 429), floor {r['floor_s']:.1f} s: {r['scan_s'] / r['floor_s']:.2f}x the floor",
            flush=True,
        )


if __name__ == "__main__":
    main()
