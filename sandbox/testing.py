"""A pytest plugin: one sandbox per test session (started in a thread, well under a second), reset before every
test that asks for it once it answers no request an earlier test left running. Enable with
`pytest_plugins = ["sandbox.testing"]` in a conftest."""

from __future__ import annotations

import contextlib
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandbox.runner import Running, start_in_thread


@dataclass
class SandboxHandle:
    """What a test needs: endpoints, the CA, principals, the admin API, and SDK clients acting as a principal."""

    running: Running
    admin_api: httpx.Client

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def ca(self) -> str:
        return str(self.running.ca)

    @property
    def ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    @property
    def subscription_id(self) -> str:
        return next(iter(self.running.sandbox.state.subscriptions))

    @property
    def tenant_id(self) -> str:
        return self.running.sandbox.state.tenant_id

    def principal(self, name: str) -> Any:
        return self.running.sandbox.directory.named(name)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        r = self.admin_api.request(method, path, json=body)
        r.raise_for_status()
        return r.json()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the server answers no request: a client that gave up on a slow answer leaves it running, and
        it logs its call when it ends, which would land in the next test's call log."""
        deadline = time.monotonic() + timeout
        while self.running.server.server_state.tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def reset(self, scenario: str = "empty") -> Any:
        return self.admin("POST", "/_sandbox/reset", {"scenario": scenario})

    def advance(self, seconds: float) -> Any:
        return self.admin("POST", "/_sandbox/clock", {"advanceSeconds": seconds})

    @contextlib.contextmanager
    def roles_at_once(self) -> Iterator[None]:
        """Role assignments made inside take effect at once (set-up made long before the test: a deployment), not
        after the sandbox's role propagation delay."""
        delay = self.admin("GET", "/_sandbox/settings")["role_propagation_seconds"]
        self.admin("PATCH", "/_sandbox/settings", {"role_propagation_seconds": 0})
        try:
            yield
        finally:
            self.admin("PATCH", "/_sandbox/settings", {"role_propagation_seconds": delay})

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"/_sandbox/calls?since={since}")["value"])

    def credential(self, name: str = "admin") -> Any:
        """A ManagedIdentityCredential acting as the named principal, as the bot's own code would build it."""
        from azure.identity import ManagedIdentityCredential

        p = self.principal(name)
        return ManagedIdentityCredential(client_id=p.client_id)

    def client(self, cls: type, name: str = "admin", **kwargs: Any) -> Any:
        """An Azure mgmt SDK client against the sandbox, authenticated as the named principal."""
        kwargs.setdefault("polling_interval", 0)
        return cls(
            self.credential(name), self.subscription_id, base_url=self.base_url, connection_verify=self.ca, **kwargs
        )

    def env(self) -> dict[str, str]:
        return self.running.client_env()


@pytest.fixture(scope="session")
def sandbox_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    running = start_in_thread(tmp_path_factory.mktemp("sandbox"))
    client = httpx.Client(
        base_url=running.base_url,
        verify=ssl.create_default_context(cafile=str(running.ca)),
        headers={"x-sandbox-key": running.sandbox.admin_key},
    )
    handle = SandboxHandle(running, client)
    saved = {k: os.environ.get(k) for k in handle.env()}
    os.environ.update(handle.env())
    try:
        yield handle
    finally:
        client.close()
        running.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def sandbox(sandbox_session: SandboxHandle) -> SandboxHandle:
    sandbox_session.settle()
    sandbox_session.reset()
    return sandbox_session
