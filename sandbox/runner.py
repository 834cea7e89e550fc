"""Start and stop a sandbox: in this process on a thread (tests, benchmarks) or in the foreground (`serve`)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from sandbox import scenarios
from sandbox.certs import ensure_certs
from sandbox.server import Sandbox


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    sandbox: Sandbox
    server: uvicorn.Server
    thread: threading.Thread | None
    port: int
    ca: Path
    state_dir: Path

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def info(self) -> dict[str, Any]:
        """What a client needs; written to state_dir/server.json for `python -m sandbox env`."""
        sb = self.sandbox
        return {
            "baseUrl": self.base_url,
            "port": self.port,
            "ca": str(self.ca),
            "identityEndpoint": f"{self.base_url}/msi/token",
            "identityHeader": sb.identity_header,
            "adminKey": sb.admin_key,
            "tenantId": sb.state.tenant_id,
            "authority": f"{self.base_url}/{sb.state.tenant_id}",  # OpenID Connect sign-in (sandbox/oidc.py)
            "subscriptionId": next(iter(sb.state.subscriptions), ""),
            "retailPrices": getattr(getattr(sb, "retail_prices", None), "url", None),  # providers/retailprices.py
            "principals": {p.name: p.to_dict() for p in sb.directory.all() if p.name},
        }

    def client_env(self) -> dict[str, str]:
        """The environment a client of this sandbox needs (what `python -m sandbox env` prints, minus the principal)."""
        prices = getattr(self.sandbox, "retail_prices", None)  # its provider's (sandbox/providers/retailprices.py)
        return {
            "AZURE_RESOURCE_MANAGER_ENDPOINT": self.base_url + "/",
            "IDENTITY_ENDPOINT": f"{self.base_url}/msi/token",
            "IDENTITY_HEADER": self.sandbox.identity_header,
            "REQUESTS_CA_BUNDLE": str(self.ca),
            "SSL_CERT_FILE": str(self.ca),
            "AZURE_SUBSCRIPTION_ID": next(iter(self.sandbox.state.subscriptions), ""),
            "AZURE_TENANT_ID": self.sandbox.state.tenant_id,
            **({"CRYPTWARD_RETAIL_PRICES_URL": prices.url} if prices is not None else {}),  # its own origin
        }

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # do not wait for clients' idle keep-alive connections
        if self.thread is not None:
            self.thread.join(timeout=10)


def prepare(state_dir: Path, port: int, scenario: str = "empty", persist: bool = False) -> Running:
    ca, cert, key = ensure_certs(state_dir)
    sb = Sandbox(state_dir=state_dir if persist else None)
    saved = state_dir / "state.json"
    if persist and saved.exists():
        sb.load()
    else:
        scenarios.seed(sb, scenario)
    port = port or free_port()
    sb.base_url = f"https://127.0.0.1:{port}"
    sb.ca_path = ca
    config = uvicorn.Config(
        sb.app(),
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        # httptools' parser (C, llhttp) rather than h11's (Python): the same bytes on the wire (status line, header
        # names and order, bodies), at about four fifths of the sandbox's CPU a call (bench/percall.py)
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets)
        await sb.listeners.attach(server)
        for hook in sb.startup_hooks:
            await hook()

    server.startup = startup  # type: ignore[method-assign]
    return Running(sb, server, None, port, ca, state_dir)


def start_in_thread(state_dir: Path, port: int = 0, scenario: str = "empty") -> Running:
    running = prepare(state_dir, port, scenario)
    running.thread = threading.Thread(target=running.server.run, name="sandbox", daemon=True)
    running.thread.start()
    deadline = time.monotonic() + 10
    while not running.server.started:
        if not running.thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox did not start on port {running.port}")
        time.sleep(0.005)
    write_info(state_dir, running.info())
    return running


def write_info(state_dir: Path, info: dict[str, Any]) -> None:
    """server.json, whole or not at all: written beside and renamed, so a reader that sees the file can parse it."""
    part = state_dir / "server.json.part"
    part.write_text(json.dumps(info, indent=2))
    os.replace(part, state_dir / "server.json")
