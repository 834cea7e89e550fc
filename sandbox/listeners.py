"""Extra HTTPS ports served by the same app: one per key vault.

Azure gives each vault its own origin (https://{name}.vault.azure.net/) and the Key Vault SDK only accepts key ids
of the form {origin}/keys/{name}/{version}. On loopback, without DNS, the sandbox gives each vault its own port
instead: https://127.0.0.1:{port}/. The port is bound when the vault is first addressed; requests on it are the
vault's data plane.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any


class Listeners:
    def __init__(self) -> None:
        self._by_name: dict[str, int] = {}
        self._by_port: dict[int, str] = {}
        self._pending: list[socket.socket] = []
        self._server: Any = None  # the running uvicorn.Server, once started
        self._loop: asyncio.AbstractEventLoop | None = None

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
        pending, self._pending = self._pending, []
        for sock in pending:
            await self._start(sock)

    def _serve(self, sock: socket.socket) -> None:
        if self._loop is None:
            self._pending.append(sock)
        else:
            self._loop.create_task(self._start(sock))

    async def _start(self, sock: socket.socket) -> None:
        server = self._server
        config = server.config
        assert self._loop is not None

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[no-any-return]
                config=config, server_state=server.server_state, app_state=server.lifespan.state
            )

        listener = await self._loop.create_server(protocol, sock=sock, ssl=config.ssl, backlog=config.backlog)
        server.servers.append(listener)  # uvicorn closes it at shutdown with its own
