"""The sandbox's TLS: a local CA and a server certificate for 127.0.0.1/localhost, made with trustme."""

from __future__ import annotations

from pathlib import Path

import trustme


def ensure_certs(state_dir: Path) -> tuple[Path, Path, Path]:
    """Return (ca.pem, server.pem, server.key) under state_dir, creating them the first time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = state_dir / "ca.pem", state_dir / "server.pem", state_dir / "server.key"
    if not (ca_path.exists() and cert_path.exists() and key_path.exists()):
        ca = trustme.CA(organization_name="Cryptward sandbox")
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        ca.cert_pem.write_to_path(str(ca_path))
        cert.private_key_pem.write_to_path(str(key_path))
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        for extra in cert.cert_chain_pems[1:]:
            with cert_path.open("ab") as fh:
                fh.write(extra.bytes())
    return ca_path, cert_path, key_path
