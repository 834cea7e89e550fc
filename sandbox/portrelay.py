"""A helper process that holds vault listeners beyond what the sandbox's own descriptor limit leaves room for.

Each vault's data plane has its own port (sandbox/listeners.py), so each vault costs the sandbox one listening socket
and one file descriptor. A process's descriptors are limited (`ulimit -n`; 20,000 on the bench machine, and only root
raises the hard limit), so past a share of that limit the sandbox hands each new listening socket to this process over
a Unix socket (SCM_RIGHTS) and closes its own copy; this process accepts the connections and hands each accepted
socket back, where the sandbox serves it like any other. Every helper has its own limit: 20k vaults need two.

    python -m sandbox.portrelay FD      # FD: its end of a SOCK_SEQPACKET socketpair, inherited
"""

from __future__ import annotations

import selectors
import socket
import sys


def relay(control: socket.socket) -> None:
    """Until the sandbox closes `control`: take listening sockets from it, and give it back each connection."""
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is control:
                try:
                    _, fds, _, _ = socket.recv_fds(control, 1, 1)
                except OSError:
                    return
                if not fds:
                    return  # the sandbox closed its end: it has stopped
                listener = socket.socket(fileno=fds[0])
                listener.setblocking(False)
                sel.register(listener, selectors.EVENT_READ)
                continue
            assert isinstance(sock, socket.socket)
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                continue
            with conn:
                try:
                    socket.send_fds(control, [b"c"], [conn.fileno()])
                except OSError:
                    return


if __name__ == "__main__":
    relay(socket.socket(fileno=int(sys.argv[1])))
