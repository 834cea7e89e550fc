"""Extra HTTPS ports served by the same app: one per key vault.

Azure gives each vault its own origin (https://{name}.vault.azure.net/) and the Key Vault SDK only accepts key ids
of the form {origin}/keys/{name}/{version}. On loopback, without DNS, the sandbox gives each vault its own port
instead: https://127.0.0.1:{port}/. The port is bound when the vault is first addressed; requests on it are the
vault's data plane. A path cannot name the vault instead (https://127.0.0.1:{port}/kv/{name}/): the SDK takes a key
id's vault URL as its scheme, host and port alone, and refuses an id of more than collection/name/version
(azure-keyvault-keys, `_shared.parse_key_vault_id`), as DiskRP wants key URLs of that form.

Each port costs a descriptor, and a process has a limited number (`ulimit -n`): past half of the sandbox's own,
listening sockets are held by helper processes (sandbox/portrelay.py, each with its own limit) that hand the
connections back, so 20,000 vaults fit where the limit is 20,000.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

RELAY = Path(__file__).with_name("portrelay.py")


class Listeners:
    def __init__(self, per_process: int | None = None) -> None:
        self._by_name: dict[str, int] = {}
        self._by_port: dict[int, str] = {}
        self._pending: list[socket.socket] = []
        self._server: Any = None  # the running uvicorn.Server, once started
        self._loop: asyncio.AbstractEventLoop | None = None
        # Listening sockets held here, and by each helper: half of this process's descriptor limit.
        self.per_process = per_process if per_process is not None else _descriptors() // 2
        self._relays: list[tuple[socket.socket, subprocess.Popen[bytes]]] = []
        self._relayed = 0  # listening sockets handed to the newest helper
        self._served = 0  # listening sockets held here

    def port_for(self, name: str) -> int:
        """The vault's port, bound (and served once the server runs) on first use; stable for the process."""
        key = name.lower()
        port = self._by_name.get(key)
        if port is None:
            # proto IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets of a TCP-proto listener,
            # and without it Nagle and delayed ACKs add ~40 ms to every Key Vault call.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)  # connections queue in the backlog until the server accepts them
            sock.setblocking(False)
            port = int(sock.getsockname()[1])
            self._by_name[key], self._by_port[port] = port, key
            self._serve(sock)
        return port

    def name_for(self, port: int | None) -> str | None:
        return self._by_port.get(port) if port is not None else None

    async def attach(self, server: Any) -> None:
        """Called on the server's loop once uvicorn has started: serve every port bound so far, and later ones."""
        self._server, self._loop = server, asyncio.get_running_loop()
        server.servers.append(self)  # uvicorn's shutdown calls close() and wait_closed(): the helpers stop with it
        for control, _ in self._relays:
            self._watch(control)
        pending, self._pending = self._pending, []
        for sock in pending:
            await self._start(sock)

    def _serve(self, sock: socket.socket) -> None:
        if self._served >= self.per_process:
            self._relay(sock)
        elif self._loop is None:
            self._served += 1
            self._pending.append(sock)
        else:
            self._served += 1
            self._loop.create_task(self._start(sock))

    def _protocol(self) -> asyncio.Protocol:
        server = self._server
        config = server.config
        return config.http_protocol_class(  # type: ignore[no-any-return]
            config=config, server_state=server.server_state, app_state=server.lifespan.state
        )

    async def _start(self, sock: socket.socket) -> None:
        server = self._server
        config = server.config
        assert self._loop is not None
        listener = await self._loop.create_server(self._protocol, sock=sock, ssl=config.ssl, backlog=config.backlog)
        server.servers.append(listener)  # uvicorn closes it at shutdown with its own

    # -- listening sockets held by helper processes ------------------------------------------------------------------

    def _relay(self, sock: socket.socket) -> None:
        """Hand `sock` (bound and listening: connections queue in its backlog meanwhile) to a helper, and close it
        here; a new helper when the newest holds its share."""
        if not self._relays or self._relayed >= max(self.per_process, 1):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            proc = subprocess.Popen([sys.executable, str(RELAY), str(theirs.fileno())], pass_fds=(theirs.fileno(),))
            theirs.close()
            self._relays.append((ours, proc))
            self._relayed = 0
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._watch, ours)
        with sock:
            socket.send_fds(self._relays[-1][0], [b"l"], [sock.fileno()])
        self._relayed += 1

    def _watch(self, control: socket.socket) -> None:
        """On the server's loop: serve each connection a helper hands back."""
        assert self._loop is not None
        control.setblocking(False)
        self._loop.add_reader(control.fileno(), self._accepted, control)

    def _accepted(self, control: socket.socket) -> None:
        assert self._loop is not None
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(control, 1, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                fds = []
            if not fds:  # the helper is gone
                self._loop.remove_reader(control.fileno())
                return
            conn = socket.socket(fileno=fds[0])
            conn.setblocking(False)
            self._loop.create_task(self._connected(conn))

    async def _connected(self, conn: socket.socket) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(self._protocol, sock=conn, ssl=self._server.config.ssl)
        except OSError:  # a failed handshake (ssl.SSLError is one), as a listener of its own drops it
            conn.close()

    def close(self) -> None:
        """Stop the helpers (each exits when its end of the socket pair closes). uvicorn calls it at shutdown."""
        for control, proc in self._relays:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(control.fileno())
            control.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._relays.clear()

    async def wait_closed(self) -> None:
        return None


def _descriptors() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20
