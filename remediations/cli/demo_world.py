"""The demo's world: the sandbox, Azurite and `cryptward serve` as child processes of `cryptward demo`, each in its
own process group and stopped by its PID; the bot's settings for the estate."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediations.errors import CryptwardError

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
ROLE_FILE = ROOT / "infra" / "cryptward-role.json"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")
RETRY_SECONDS = 2  # host.json's visibilityTimeout is 10 s: in the demo a failed item is retried sooner
NEVER = "0 0 0 1 1 *"  # timers fire when the demo says so, not on a schedule
START_TIMEOUT = 60.0  # a program starting to listen: seconds on a laptop, more on a busy machine
STALL_SECONDS = 60.0  # a step of the demo fails when the bot has made no progress for this long
# Azure's "up to 10 minutes" before a new role applies, compressed as the demo compresses Azure's other waits: the
# sandbox's propagation delay and the bot's window (CRYPTWARD_ROLE_PROPAGATION_SECONDS) alike.
ROLE_PROPAGATION_SECONDS = 8.0
VM_API = "2026-04-01"
TEAMS, WEBHOOK = "teams/secops", "webhook/audit"


class DemoError(CryptwardError):
    """A step of the demo could not run (a program did not start, the bot did not settle)."""


# --- child processes -------------------------------------------------------------------------------------------------


@dataclass
class Children:
    """The demo's child processes, each the leader of its own process group (so its own children stop with it)."""

    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
        with log.open("wb") as out:
            self.procs[name] = subprocess.Popen(
                args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    def check(self, name: str, log: Path) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise DemoError(f"{name} exited with code {proc.returncode}; its log ({log}):\n{tail}")

    def stop(self) -> list[str]:
        """SIGTERM each group (newest first), SIGKILL what is still there after 10 s. Returns the names stopped."""
        stopped = []
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything the program left behind in its group
            stopped.append(name)
        return stopped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


# --- the estate's world: sandbox, Azurite, serve ---------------------------------------------------------------------


@dataclass
class World:
    workdir: Path
    children: Children
    info: dict[str, Any] = field(default_factory=dict)  # the sandbox's server.json
    storage: str = ""
    serve_url: str = ""
    key: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    system_key: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)  # the Event Grid webhook
    env: dict[str, str] = field(default_factory=dict)
    _http: Any = None

    @property
    def sub(self) -> str:
        return str(self.info["subscriptionId"])

    def principal(self, name: str) -> dict[str, str]:
        return dict(self.info["principals"][name])

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        r = self._http.request(
            method, self.info["baseUrl"] + path, json=body, headers={"x-sandbox-key": self.info["adminKey"]}
        )
        if r.status_code >= 400:
            raise DemoError(f"the sandbox refused {method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def start_azurite(self) -> None:
        if not AZURITE.exists():
            raise DemoError(
                f"Azurite is not installed ({AZURITE} is missing): run `make demo` or `bash scripts/setup.sh`"
            )
        where = self.workdir / "azurite"
        where.mkdir()
        log = self.workdir / "azurite.log"
        args = [str(AZURITE), "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck"]
        args += ["--blobPort", "0", "--queuePort", "0", "--tablePort", "0"]
        self.children.start("azurite", args, cwd=where, log=log)

        def ports() -> dict[str, int] | None:
            self.children.check("azurite", log)
            found = {s: int(p) for s, p in _LISTENING.findall(log.read_text(errors="replace"))}
            return found if len(found) == 3 else None

        p = wait_for(ports, START_TIMEOUT, "Azurite listening", 0.05)
        base, acct = "http://127.0.0.1", "devstoreaccount1"
        self.storage = (
            f"DefaultEndpointsProtocol=http;AccountName={acct};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{p['Blob']}/{acct};QueueEndpoint={base}:{p['Queue']}/{acct};"
            f"TableEndpoint={base}:{p['Table']}/{acct};"
        )

    def start_sandbox(self) -> None:
        import httpx

        state = self.workdir / "sandbox"
        log = self.workdir / "sandbox.log"
        args = [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--state", str(state)]
        self.children.start("sandbox", args, cwd=ROOT, log=log, env=_clean_env())

        def ready() -> bool:
            self.children.check("sandbox", log)
            return (state / "server.json").exists()

        wait_for(ready, START_TIMEOUT, "the sandbox listening", 0.05)
        self.info = json.loads((state / "server.json").read_text())
        self._http = httpx.Client(verify=self.info["ca"], timeout=30)
        self.admin("PATCH", "/_sandbox/settings", {"role_propagation_seconds": ROLE_PROPAGATION_SECONDS})

    def bot_env(self) -> dict[str, str]:
        self.serve_url = self.serve_url or f"http://127.0.0.1:{_free_port()}"  # approval links point at it
        ca = str(Path(self.info["ca"]).resolve())
        sub = f"/subscriptions/{self.sub}"
        des = f"{sub}/resourceGroups/rg-keys-weu/providers/Microsoft.Compute/diskEncryptionSets/des-weu"
        workspace = f"{sub}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/workspaces/law-cryptward"
        receivers = self.info["baseUrl"] + "/_receivers/"
        # the approval page's app registration in the sandbox's Entra ID; the sandbox's `approver` user may decide
        signin = self.admin(
            "POST",
            "/_sandbox/apps",
            {"redirectUris": [f"{self.serve_url}/api/approvals"], "secret": True, "displayName": "cryptward-approvals"},
        )
        return {
            "AZURE_RESOURCE_MANAGER_ENDPOINT": self.info["baseUrl"] + "/",
            "AZURE_TENANT_ID": self.info["tenantId"],
            "AZURE_SUBSCRIPTION_ID": self.sub,
            "AZURE_CLIENT_ID": self.principal("bot")["client_id"],
            "IDENTITY_ENDPOINT": self.info["identityEndpoint"],
            "IDENTITY_HEADER": self.info["identityHeader"],
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "AzureWebJobsStorage": self.storage,
            "CRYPTWARD_SCOPES": self.sub,
            "CRYPTWARD_WORK_QUEUE": "cryptward-work",
            "CRYPTWARD_TABLE_PREFIX": "cw",
            "CRYPTWARD_DEBOUNCE_SECONDS": "1",
            "CRYPTWARD_POLLING_INTERVAL": "0",
            "CRYPTWARD_WORKSPACE_ID": workspace,
            "CRYPTWARD_DES_MAP": json.dumps({"westeurope": {"EncryptionAtRestWithCustomerKey": des}}),
            # disks move to the DES once their VM is deallocated; purge protection and encryption at host wait for
            # a person, as by default
            "CRYPTWARD_POLICY_MODES": json.dumps({"disk-cmk": "remediate"}),
            "CRYPTWARD_ROLE_PROPAGATION_SECONDS": f"{ROLE_PROPAGATION_SECONDS:g}",
            "CRYPTWARD_ROUTES": json.dumps({"*": ["teams:secops", "webhook:audit"]}),
            "CRYPTWARD_DEST_SECOPS_URL": receivers + TEAMS,
            "CRYPTWARD_DEST_AUDIT_URL": receivers + WEBHOOK,
            "CRYPTWARD_DEST_AUDIT_SECRET": secrets.token_urlsafe(24),
            "CRYPTWARD_APPROVAL_KEY": secrets.token_urlsafe(32),
            "CRYPTWARD_PUBLIC_URL": self.serve_url,
            "CRYPTWARD_APPROVERS": self.principal("approver")["object_id"],
            "CRYPTWARD_SIGNIN_AUTHORITY": signin["authority"],
            "CRYPTWARD_SIGNIN_CLIENT_ID": signin["clientId"],
            "CRYPTWARD_SIGNIN_CLIENT_SECRET": signin["clientSecret"],
            "CRYPTWARD_ALERT_KEY": self.key,
            "CRYPTWARD_EVENTGRID_KEY": self.system_key,
            "SWEEP_SCHEDULE": NEVER,
            "ROTATION_SCHEDULE": NEVER,
            "NOTICES_SCHEDULE": NEVER,
        }

    def start_serve(self) -> None:
        import httpx

        port = int(self.serve_url.rsplit(":", 1)[1])
        log = self.workdir / "serve.log"
        # `cryptward serve` itself fails at start in this build (serve.run reads `.route` of every trigger while
        # listing them); serve_child hosts the same Host the same way.
        # The function key reaches the child in its environment (CRYPTWARD_ALERT_KEY), never its command line: `ps`
        # shows every user the arguments of every process.
        args = [sys.executable, "-c", "import remediations.cli.demo_world as w; w.serve_child()", str(port)]
        self.children.start("serve", args, cwd=ROOT, log=log, env={**_clean_env(), **self.env})

        def healthy() -> bool:
            self.children.check("serve", log)
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.serve_url}/api/health", timeout=2).status_code == 200
            return False

        wait_for(healthy, START_TIMEOUT, "cryptward serve answering /api/health", 0.1)

    def eventgrid_url(self) -> str:
        return f"{self.serve_url}/runtime/webhooks/EventGrid?functionName=eventgrid&code={self.system_key}"

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def serve_child() -> None:
    """`cryptward serve --port PORT` as remediations.cli.serve.run does it, settings (the function key in
    CRYPTWARD_ALERT_KEY too) from the environment only (argv: PORT). Runs in the demo's serve child process; uvicorn
    stops it on SIGTERM."""
    import uvicorn

    from remediations.cli.functions import functions
    from remediations.cli.serve import make_host

    port, key = int(sys.argv[1]), os.environ["CRYPTWARD_ALERT_KEY"]
    for fn in functions():  # a timer added later to function_app.py fires when the demo says so, too
        for name in re.findall(r"%(\w+)%", str(getattr(fn.get_trigger(), "schedule", "") or "")):
            os.environ.setdefault(name, NEVER)
    host = make_host(
        key=key, retry_delay=RETRY_SECONDS
    )  # host.json's visibilityTimeout is 10 s: a failed item retries sooner
    host.start()
    config = uvicorn.Config(
        host.app(), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    try:
        uvicorn.Server(config).run()
    finally:
        host.stop()


def _clean_env() -> dict[str, str]:
    """This process's environment without Azure and Cryptward settings a user may have exported."""
    drop = ("AZURE_", "IDENTITY_", "CRYPTWARD_", "AzureWebJobs", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


# --- what the bot did: the sandbox's delivery log and the ledger -----------------------------------------------------


@dataclass
class Tally:
    events: int = 0
    results: Counter[str] = field(default_factory=Counter)
    rotation: Counter[str] = field(default_factory=Counter)
    work: Counter[str] = field(default_factory=Counter)  # the worker's own records: retrying, poisoned, escalated
    queued: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


def tally(world: World) -> Tally:
    from remediations.store.storage import as_target

    storage = as_target(world.storage)
    out = Tally()
    for d in world.admin("GET", "/_sandbox/deliveries")["value"]:
        if d["kind"] == "Notification" and d["status"] and 200 <= d["status"] < 300:
            out.events += len(d["eventIds"])
    with storage.table_client("cwaudit") as table:
        out.records = [dict(r) for r in table.list_entities()]
    for r in out.records:
        policy = str(r.get("Policy", ""))
        if policy.startswith("rotation:"):
            out.rotation[f"{policy.split(':', 1)[1]} {r.get('Result')}"] += 1
        elif policy == "cryptward-worker":
            out.work[str(r.get("Result"))] += 1
        else:
            out.results[str(r.get("Result"))] += 1
    with storage.queue_client(world.env["CRYPTWARD_WORK_QUEUE"]) as q:
        out.queued = int(q.get_queue_properties().approximate_message_count or 0)
    return out


def _progress_table(t: Tally, title: str, elapsed: float) -> Any:
    from rich.table import Table

    from remediations.engine.applier import Status

    table = Table(title=f"{title}  ({elapsed:.0f} s)", title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    r = t.results
    rows = [
        ("events received (Event Grid deliveries)", t.events),
        ("work items queued", t.queued),
        ("changes applied", r[Status.APPLIED]),
        ("waiting for approval", r[Status.PENDING_APPROVAL]),
        ("waiting for a deallocated VM", r[Status.PENDING_DEALLOCATION]),
        ("waiting for a new role to take effect", r[Status.WAITING]),
        ("blocked / refused / failed", r[Status.BLOCKED] + r[Status.REFUSED] + r[Status.FAILED]),
        ("rotation results", sum(t.rotation.values())),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def watch(
    world: World, console: Any, title: str, *, until: Callable[[Tally], bool] | None = None, quiet: float = 1.5
) -> Tally:
    """Show the bot's work live until it settles: `until` holds (when given), nothing queued, and no new event
    or ledger record for `quiet` seconds (longer than serve's retry delay of a failed item). It takes as long as the
    bot works; it fails when nothing has moved (events, records, what is queued) for STALL_SECONDS."""
    from rich.live import Live

    started = time.monotonic()
    last: tuple[int, int, int] = (-1, -1, -1)
    still = time.monotonic()
    t = tally(world)
    with Live(_progress_table(t, title, 0), console=console, refresh_per_second=4, transient=False) as live:
        while True:
            time.sleep(0.3)
            t = tally(world)
            live.update(_progress_table(t, title, time.monotonic() - started))
            now = (t.events, len(t.records), t.queued)
            if now != last:
                last, still = now, time.monotonic()
            elif not t.queued and time.monotonic() - still >= quiet and (until is None or until(t)):
                break
            elif time.monotonic() - still > STALL_SECONDS:
                raise DemoError(
                    f"the bot made no progress for {STALL_SECONDS:g} s ({title}, {t.queued} queued); "
                    f"serve's log: {world.workdir}/serve.log"
                )
    console.print()
    return t
