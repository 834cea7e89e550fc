"""`cryptward demo`: a local Azure with a non-compliant estate in two regions, fixed live by the bot through events.

Three programs run as child processes in a temporary directory, each in its own process group and stopped by its
PID at the end (also on Ctrl-C, SIGTERM or an error): the sandbox (`python -m sandbox serve`), Azurite (the function
app's storage) and `cryptward serve` (function_app.py's own functions, acting as the sandbox's `bot` managed
identity with exactly infra/cryptward-role.json). The sandbox's Event Grid is subscribed to serve's webhook; the
`estate` scenario is then seeded through ARM as the admin, so every resource arrives at the bot as an event.

The demo itself talks to the sandbox as its admin (the admin API, and the SDK to deallocate a VM), follows a Teams
card's Approve link like a person (GET, then the confirmation page's POST), reads the ledger (Azurite) to show what
the bot did, and fires the rotation timer's work itself (`intake.rotation_sweep`, what the timer calls: serve fires
timers on their schedule or at start only). Without approve links in the cards (no CRYPTWARD_PUBLIC_URL), it
decides the approval as the bot through remediations.notices.approvals and says so.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import ssl
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from remediations.cli.demo_world import ROLE_FILE, TEAMS, WEBHOOK, Children, DemoError, World, wait_for, watch
from remediations.errors import CryptwardError


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt (also when the shell started us with SIGINT ignored), so
    that the `finally` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --- the story ----------------------------------------------------------------------------------------------------


def _bot_azure() -> Any:
    from remediations.azure import Azure

    return Azure.from_env()


def _admin_azure(world: World) -> Any:
    from remediations.azure import Azure, CloudProfile, managed_identity

    admin = world.principal("admin")["client_id"]
    return Azure(CloudProfile.from_env(), credential_factory=lambda: managed_identity(admin))


def grant_bot_role(world: World, admin: Any) -> str:
    """infra/cryptward-role.json as a custom role at the subscription, assigned to the bot (as the admin) with the
    role document's ABAC condition, as infra/ deploys it."""
    doc = json.loads(ROLE_FILE.read_text())
    sub = f"/subscriptions/{world.sub}"
    client = admin.authorization(world.sub)
    guid = str(uuid.uuid4())
    props = _custom_role(doc, sub)
    definition = client.role_definitions.create_or_update(sub, guid, {"properties": props})
    bot = world.principal("bot")["object_id"]
    body = {"roleDefinitionId": definition.id, "principalId": bot, "principalType": "ServicePrincipal"}
    if doc.get("assignmentCondition"):
        body |= {"condition": doc["assignmentCondition"], "conditionVersion": "2.0"}
    client.role_assignments.create(sub, str(uuid.uuid4()), {"properties": body})
    return str(doc["roleName"])


def _custom_role(doc: Mapping[str, Any], scope: str) -> dict[str, Any]:
    """A custom role's properties from a role document of infra/, assignable at `scope`."""
    permissions = {k: doc[k] for k in ("actions", "notActions", "dataActions", "notDataActions")}
    return {
        "roleName": doc["roleName"],
        "description": doc["description"],
        "type": "CustomRole",
        "permissions": [permissions],
        "assignableScopes": [scope],
    }


def grant_bot_workspace(world: World, admin: Any) -> str:
    """The deployment's Log Analytics workspace (the estate's law-cryptward, made first, as infra/ makes it before
    the bot runs) and infra/cryptward-workspace-role.json assigned to the bot on it alone, as
    infra/app/workspace-access.bicep does: a diagnostic setting naming a workspace needs its sharedKeys action."""
    doc = json.loads(ROLE_FILE.with_name("cryptward-workspace-role.json").read_text())
    sub = f"/subscriptions/{world.sub}"
    admin.resources(world.sub).resource_groups.create_or_update("rg-ops", {"location": "westeurope"})
    workspace = f"{sub}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
    law = {"location": "westeurope", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}
    admin.write("PUT", workspace, "2023-09-01", law)
    client = admin.authorization(world.sub)
    props = _custom_role(doc, sub)
    definition = client.role_definitions.create_or_update(sub, str(uuid.uuid4()), {"properties": props})
    bot = world.principal("bot")["object_id"]
    body = {"roleDefinitionId": definition.id, "principalId": bot, "principalType": "ServicePrincipal"}
    client.role_assignments.create(workspace, str(uuid.uuid4()), {"properties": body})
    return str(doc["roleName"])


def subscribe(world: World) -> None:
    """The subscription's system topic -> serve's Event Grid webhook; done once the handshake succeeded."""
    made = world.admin(
        "POST", "/_sandbox/eventSubscriptions", {"name": "cryptward", "endpointUrl": world.eventgrid_url()}
    )

    def ready() -> bool:
        subs = world.admin("GET", "/_sandbox/eventSubscriptions")["value"]
        state = next((s["properties"]["provisioningState"] for s in subs if s["id"] == made["id"]), "")
        if state == "Failed":
            raise DemoError("the Event Grid subscription's validation handshake failed")
        return state == "Succeeded"

    wait_for(ready, 10, "the Event Grid subscription handshake")


def _cards(world: World) -> list[dict[str, Any]]:
    out = []
    for item in world.admin("GET", f"/_sandbox/received?receiver={TEAMS}")["value"]:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            for a in json.loads(item["body"])["attachments"]:
                out.append(a["content"])
    return out


def _actions(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "Action.OpenUrl":
            yield node
        for v in node.values():
            yield from _actions(v)
    elif isinstance(node, list):
        for v in node:
            yield from _actions(v)


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in ("TextBlock", "TextRun") and node.get("text"):
            yield str(node["text"])
        for k, v in node.items():
            if k != "actions":
                yield from _texts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _texts(v)


def _title(page: str) -> str:
    m = re.search(r"<h1>(.*?)</h1>", page, re.S)
    return html.unescape(m.group(1)).lower() if m else "no page"


def approve_one(world: World, console: Any) -> str:
    """Approve one change waiting for a person: through the card's link when the function app serves the
    approval endpoint, else as the bot through remediations.notices.approvals (verify, decide) and the engine."""
    import httpx

    from remediations.engine.applier import FAILED
    from remediations.engine.reader import Scope
    from remediations.engine.run import scan
    from remediations.notices import approvals
    from remediations.policy.loader import load_policies
    from remediations.settings import Settings
    from remediations.store.ledger import Ledger
    from remediations.triggers.decisions import LedgerPending

    links = [
        (any("kv-weu-disks" in t for t in _texts(c)), next(_texts(c), "a card"), a["url"])
        for c in _cards(world)
        for a in _actions(c)
        if a.get("title") == "Approve"
    ]
    if links:
        _, card, link = max(links, key=lambda x: x[0])  # the disk-encryption vault's card first
        console.print(f"  {len(links)} Approve button(s) in the Teams cards; following the one in {card!r}")
        with httpx.Client(timeout=60, verify=ssl.create_default_context(cafile=world.info["ca"])) as http:
            started = http.get(link)
            sign_in = started.headers.get("location", "")
            console.print(f"  GET the card's Approve link: {started.status_code}, {_title(started.text)}")
            if started.status_code != 303 or not sign_in:
                return f"refused: {_title(started.text)}"
            # the sandbox's Entra ID: the login hint picks the account (a browser shows the account picker)
            back = http.get(f"{sign_in}&login_hint=approver")
            posted = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', back.text))
            page = http.post(link.split("?")[0], data={k: html.unescape(v) for k, v in posted.items()})
            console.print(f"  signed in as the sandbox's approver: {page.status_code}, {_title(page.text)}")
            fields = dict(re.findall(r'name="(token|assertion)" value="([^"]+)"', page.text))
            if page.status_code != 200 or set(fields) != {"token", "assertion"}:
                return f"refused: {_title(page.text)}"
            decided = http.post(link.split("?")[0], data={k: html.unescape(v) for k, v in fields.items()})
        console.print(f"  POST its form: {decided.status_code}, {_title(decided.text)}")
        return "approved" if decided.status_code == 200 and "approved" in _title(decided.text) else "not approved"
    ledger = Ledger.from_env(os.environ)
    waiting = ledger.list_pending("approval")
    if not waiting:
        return "skipped: no change waits for approval"
    # Purge protection on the disk-encryption vault: the change the DES's auto-rotation waits for.
    pick = next(
        (p for p in waiting if "kv-weu-disks" in p.resource_id and p.policy == "kv-purge-protection"), waiting[0]
    )
    console.print(
        "  [yellow]no Approve link in the Teams cards[/] (the function app makes them when CRYPTWARD_PUBLIC_URL and "
        "CRYPTWARD_APPROVAL_KEY are set and serves them at /api/approvals): deciding as the bot through "
        "remediations.notices.approvals"
    )
    key = world.env["CRYPTWARD_APPROVAL_KEY"]
    now = datetime.now(UTC)
    change_id = str(pick.detail["changeId"])
    link = approvals.make_link(
        f"{world.serve_url}/api/approvals", change_id, pick.resource_id, approvals.APPROVE, now + timedelta(days=7), key
    )
    token = link.split("token=", 1)[1]
    from urllib.parse import unquote

    decision = approvals.verify(unquote(token), key, now, lambda n: not ledger.claim(f"nonce:{n}", 8 * 86400))
    if isinstance(decision, approvals.Refusal):
        return f"refused: {decision.reason}"
    settings = Settings.from_env()
    policies = load_policies(settings.policies)
    azure = _bot_azure()

    def apply_change(pending: approvals.PendingChange) -> tuple[str, str]:
        report = scan(
            Scope((world.sub,)), policies, apply=True, settings=settings, azure=azure,
            resource_id=pending.resource_id, approved=[pending.change_id],
        )  # fmt: skip
        result = next((r for r in report.results if r.change.id == pending.change_id), None)
        if result is None:
            return FAILED, "the change is no longer planned"
        return result.status, str(getattr(result, "detail", "") or "")

    outcome = approvals.decide(decision, LedgerPending(ledger), apply_change, now)
    console.print(f"  {pick.policy} on {pick.resource_id.rsplit('/', 1)[-1]}: {outcome.result} ({outcome.detail})")
    return outcome.result


def deallocate_one(world: World, admin: Any, console: Any) -> tuple[str, int, int]:
    """Deallocate (as the admin, through the SDK) the VM the most pending changes wait for; the bot's deallocation
    event releases them. Returns (vm name, waiting before, waiting after)."""
    from remediations.store.ledger import Ledger

    ledger = Ledger.from_env(os.environ)
    waiting = Counter(
        str(p.detail.get("vm") or "") for p in ledger.list_pending("deallocated") if isinstance(p.detail, dict)
    )
    waiting.pop("", None)
    if not waiting:
        return "", 0, 0
    vm, count = waiting.most_common(1)[0]
    parts = vm.split("/")
    console.print(f"  the admin deallocates {parts[-1]} ({count} change(s) wait for it)")
    admin.compute(world.sub).virtual_machines.begin_deallocate(parts[4], parts[-1]).result()

    def left() -> int:
        return sum(1 for p in ledger.list_pending("deallocated") if str(p.detail.get("vm") or "").lower() == vm.lower())

    with contextlib.suppress(DemoError):
        wait_for(lambda: left() == 0, 30, "the pending changes released", 0.3)
    return parts[-1], count, left()


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())) or "nothing"


def rotation_run(world: World, advance_seconds: float) -> int:
    """Move the sandbox clock, then fire the rotation timer's work (intake.rotation_sweep: one item per
    vault, worked by serve's queue worker)."""
    from remediations.triggers.intake import rotation_sweep

    world.admin("POST", "/_sandbox/clock", {"advanceSeconds": advance_seconds})
    return rotation_sweep()


def _report(world: World, console: Any, path: Path) -> Any:
    from remediations.engine.reader import Scope
    from remediations.policy.loader import load_policies
    from remediations.report import html as report_html
    from remediations.report import text as report_text
    from remediations.report.compliance import generate
    from remediations.settings import Settings

    settings = Settings.from_env()
    azure = _bot_azure()
    try:
        report = generate(Scope((world.sub,)), load_policies(settings.policies), settings=settings, azure=azure)
    finally:
        azure.close()
    from rich import box
    from rich.table import Table

    table = Table(title="Compliance by policy", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("policy", "mode", "compliant", "fix", "wait", "alone", "fail"):
        table.add_column(
            header, no_wrap=True, min_width=len(header), justify="left" if header in ("policy", "mode") else "right"
        )
    for st in report.policies:
        counts = [str(v) for v in report_text.policy_counts(st).values()]  # to fix, waiting, left alone, failed
        ratio = f"{st.compliant}/{st.checked} {report_text.percent_text(st.percent)}"
        table.add_row(st.policy.id, st.mode, ratio, *counts)
    console.print(table)
    console.print(report_text.headline(report))
    path.write_text(report_html.render(report), encoding="utf-8")
    return report


def _notices(world: World, console: Any) -> None:
    teams = [i for i in world.admin("GET", f"/_sandbox/received?receiver={TEAMS}")["value"]]
    hooks = [
        i for i in world.admin("GET", f"/_sandbox/received?receiver={WEBHOOK}")["value"] if not i.get("validation")
    ]
    console.print(f"notices: teams:secops {len(teams)} card(s), webhook:audit {len(hooks)} signed POST(s)")
    cards = _cards(world)
    if cards:
        texts = list(_texts(cards[0]))
        console.print("  one card: " + " | ".join(t.replace("\n", " ")[:80] for t in texts[:4]))


def run(*, keep_running: bool = False, report_path: Path | None = None) -> int:
    """The whole demo. Returns the exit code (0 when every step ran)."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="cryptward-demo-"))
    report_path = (report_path or Path.cwd() / "cryptward-demo-report.html").resolve()
    children = Children()
    world = World(workdir, children)
    saved_env = dict(os.environ)
    code = 0
    try:
        with _signals_raise():
            code = _story(world, console, started, report_path, keep_running)
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted[/]: stopping everything")
        code = 130
    except (DemoError, CryptwardError) as e:
        console.print(f"[bold red]demo failed:[/] {e}")
        code = 1
    finally:
        world.close()
        # a second Ctrl-C while stopping would leave children behind: ignore it until they are gone
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        stopped = children.stop()
        for sig, handler in held.items():
            signal.signal(sig, handler)
        os.environ.clear()
        os.environ.update(saved_env)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        console.print(f"stopped: {', '.join(stopped) or 'nothing'}; removed {workdir}")
        console.print(f"elapsed: {time.monotonic() - started:.1f} s")
    return code


def _story(world: World, console: Any, started: float, report_path: Path, keep_running: bool) -> int:
    from remediations import runtime
    from remediations.engine.applier import APPLIED

    console.rule("Cryptward demo: a non-compliant estate in two regions, fixed live through events")
    console.print("starting the sandbox (a local Azure), Azurite (storage) and `cryptward serve` (the function app)")
    world.start_sandbox()
    world.start_azurite()
    world.env = world.bot_env()
    os.environ.update(world.env)  # this process acts as the admin (by client id) and, for two steps, as the bot
    rt = runtime.current()
    rt.ledger, rt.queue  # noqa: B018 (the ledger tables and the queue exist before serve polls)
    world.start_serve()
    pids = " ".join(f"{n}={p.pid}" for n, p in world.children.procs.items())
    console.print(f"demo-pids: {pids} dir={world.workdir}")
    console.print(f"  sandbox {world.info['baseUrl']}   serve {world.serve_url}   ({time.monotonic() - started:.1f} s)")

    admin = _admin_azure(world)
    role = grant_bot_role(world, admin)
    sink = grant_bot_workspace(world, admin)
    console.print(
        f"the bot (managed identity `bot`) holds exactly the custom role {role!r} (infra/cryptward-role.json), and "
        f"{sink!r} on the workspace law-cryptward (infra/cryptward-workspace-role.json)"
    )
    subscribe(world)
    console.print("Event Grid: the subscription's system topic -> serve's webhook (validation handshake passed)")

    console.rule("1. The admin builds the estate through ARM; each write is an event the bot reacts to")
    seeded = world.admin("POST", "/_sandbox/seed", {"scenario": "estate"})
    sizes = ", ".join(f"{len(v)} {k}" for k, v in seeded.items() if isinstance(v, list) and k != "subscriptions")
    console.print(f"seeded: {sizes} in westeurope and northeurope")
    t = watch(world, console, "the bot at work", until=lambda t: t.events > 0 and t.results[APPLIED] > 0, quiet=2.5)
    for r in t.records:
        if r.get("Policy") == "cryptward-worker" and r.get("Result") == "poisoned":
            after = json.loads(str(r.get("After") or "{}"))
            name = str(r.get("ResourceId", "")).rsplit("/", 1)[-1]
            error = str(after.get("error", ""))[:200]
            console.print(f"  failed {after.get('attempt')} times, moved to the poison queue: {name}: {error}")
    console.print(f"events received: {t.events}")
    console.print(f"changes applied: {t.results['applied']}")
    console.print(
        f"pending: {t.results['pending-approval']} approval, {t.results['pending-deallocation']} deallocation; "
        f"blocked/refused/failed: {t.results['blocked'] + t.results['refused'] + t.results['failed']}"
    )

    console.rule("2. A person approves one change from the Teams card")
    outcome = approve_one(world, console)
    console.print(f"approval: {outcome}")

    console.rule("3. The admin deallocates a VM; its deallocation event releases the changes waiting for it")
    vm, before, after = deallocate_one(world, admin, console)
    if vm:
        watch(world, console, "after the deallocation")
        console.print(f"deallocation: {vm} released {before - after} of {before} pending change(s)")
    else:
        console.print("deallocation: skipped (no change waits for a deallocated VM)")

    console.rule("4. 100 days later: the rotation timer")
    items = rotation_run(world, 100 * 86400)
    t = watch(world, console, "rotation", until=lambda t: sum(t.rotation.values()) > 0)
    rotated = t.rotation["rotate rotated"]
    console.print(f"rotation: {items} vault(s) queued; " + _counts(t.rotation))
    console.print(f"keys rotated: {rotated}")
    console.print("an hour later (sandbox clock): Azure has moved the auto-rotating sets; the timer runs again")
    first = Counter(t.rotation)
    rotation_run(world, 3700)
    t = watch(world, console, "follow-through", until=lambda t: sum(t.rotation.values()) > sum(first.values()))
    follow = {k: n - first[k] for k, n in t.rotation.items() if n > first[k]}
    console.print(f"DES follow-through: {_counts(follow)}")

    console.rule("5. The compliance report")
    report = _report(world, console, report_path)
    console.print(f"report: {report_path} ({report_path.stat().st_size} bytes; compliance {report.percent or 0:.0f}%)")
    _notices(world, console)
    console.print(f"demo finished in {time.monotonic() - started:.1f} s")
    if keep_running:
        _hold(world, console)
    return 0


def _hold(world: World, console: Any) -> None:
    console.rule("Still running (--keep-running): Ctrl-C stops everything")
    console.print("# the bot's settings; `--as` another principal by changing AZURE_CLIENT_ID:")
    for k in ("AZURE_RESOURCE_MANAGER_ENDPOINT", "AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_ID"):
        console.print(f"export {k}={world.env[k]}")
    for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AzureWebJobsStorage"):
        console.print(f"export {k}='{world.env[k]}'")
    console.print(f"export SANDBOX_ADMIN_KEY={world.info['adminKey']}")
    for name, p in world.info["principals"].items():
        console.print(f"#   {name:9} client id {p['client_id']}")
    console.print(f"# sandbox {world.info['baseUrl']}  (admin API /_sandbox/..., receivers /_sandbox/received)")
    console.print(f"# serve   {world.serve_url}/api/health   Event Grid {world.serve_url}/runtime/webhooks/EventGrid")
    console.print(f"# logs    {world.workdir}/{{sandbox,azurite,serve}}.log")
    while True:
        time.sleep(3600)
