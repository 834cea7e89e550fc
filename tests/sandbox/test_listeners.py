"""Vault ports past the sandbox's share of its descriptors are held by a helper process (sandbox/portrelay.py) that
hands each connection back: the vault's data plane answers on its own port all the same."""

import os
from pathlib import Path

from tests.sandbox.test_keyvault_data import grant, key_client, kv, make_vault  # noqa: F401  (kv: a fixture)


def listening_inode(port: int) -> str:
    """The inode of the socket listening on 127.0.0.1:`port` (/proc/net/tcp: state 0A is LISTEN)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            return fields[9]
    raise AssertionError(f"nothing listens on {port}")


def sockets_of(pid: int | str) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def test_a_vault_whose_port_a_helper_holds_serves_its_data_plane(sandbox, kv):  # noqa: F811
    listeners = sandbox.running.sandbox.listeners
    share, listeners.per_process = listeners.per_process, 0  # every port bound from now on: a helper's
    try:
        vault = make_vault(sandbox, kv, "kvd-relayed")
    finally:
        listeners.per_process = share
    port = listeners.port_for("kvd-relayed")
    assert vault.properties.vault_uri == f"https://127.0.0.1:{port}/"
    grant(sandbox, "admin", "Key Vault Crypto Officer", vault.id)
    client = key_client(sandbox, vault)
    key = client.create_rsa_key("k1", size=2048)
    assert key.id.startswith(f"{vault.properties.vault_uri}keys/k1/")
    assert client.get_key("k1").id == key.id
    inode, helper = listening_inode(port), listeners._relays[-1][1]  # the helper has it once it has accepted
    assert inode in sockets_of(helper.pid) and inode not in sockets_of("self")
