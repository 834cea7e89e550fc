"""The sandbox tenant's token-signing key: RSA 2048 with a self-signed certificate, made once per state dir (next to
the TLS certificates, like them kept across restarts) and published as a JWKS entry shaped like the Microsoft
identity platform's `discovery/v2.0/keys` (`kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c`, `issuer`).

As in Entra ID, `kid` and `x5t` are the base64url SHA-1 thumbprint of the certificate.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

KEY_FILE, CERT_FILE = "oidc-signing.key", "oidc-signing.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass
class SigningKey:
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def kid(self) -> str:
        return _b64url(hashlib.sha1(self.certificate.public_bytes(serialization.Encoding.DER)).digest())

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def jwk(self, issuer: str) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
            "x5c": [base64.b64encode(der).decode()],
            "issuer": issuer,
        }


def _new() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cryptward sandbox token signing")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return SigningKey(key, cert)


def ensure_signing_key(state_dir: Path | None) -> SigningKey:
    """The key kept in `state_dir` (made the first time), or a fresh in-memory one without a state dir."""
    if state_dir is None:
        return _new()
    key_path, cert_path = state_dir / KEY_FILE, state_dir / CERT_FILE
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return SigningKey(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
    made = _new()
    state_dir.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(made.private_pem)
    key_path.chmod(0o600)
    cert_path.write_bytes(made.certificate.public_bytes(serialization.Encoding.PEM))
    return made
