"""What a Key Vault data-plane request costs against the vault's throttling budget (sandbox/throttling.py's
`Throttler.vault` keeps the buckets: per vault, and a subscription's vaults together).

Key Vault (learn.microsoft.com, "Azure Key Vault service limits" and "throttling guidance"): per vault and region,
transactions per 10 seconds weighted by key type and summed: software RSA-2048 and EC keys 4000 "all other
transactions", RSA-3072 1000, RSA-4096 500, HSM keys half of that; CREATE 20 (HSM 10); vault transactions 4000.
Here each request costs `4000 / its limit` units of a bucket of `kv_budget` (4000) units.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sandbox.providers.keyvault import vault_by_name
from sandbox.providers.keyvault_store import get_key, latest_version

if TYPE_CHECKING:
    from starlette.requests import Request

    from sandbox.server import Sandbox

KV_UNITS = 4000.0  # one software RSA-2048 GET costs one unit of a vault's 4000 per 10 s
_KV_OTHER = {("RSA", 2048): 4000, ("RSA", 3072): 1000, ("RSA", 4096): 500}  # software keys; EC: 4000; HSM: half
_KV_CREATE = 20  # HSM: 10


async def vault_cost(sb: Sandbox, request: Request) -> tuple[dict[str, Any], float] | None:
    """The vault a data-plane request addresses and its weight in RSA-2048 software GETs, or None (no such vault,
    or a request without a token: the challenge round trip is not counted)."""
    if not request.headers.get("authorization"):
        return None
    name = sb.listeners.name_for(request.url.port)
    vault = vault_by_name(sb.state, name) if name else None
    if vault is None:
        return None
    segs = [s.lower() for s in request.url.path.split("/") if s]
    method = request.method
    if len(segs) < 2 or segs[0] != "keys" or (len(segs) == 3 and segs[2] in ("versions", "rotationpolicy")):
        return vault, 1.0  # list keys / versions, rotation policies: vault transactions
    if len(segs) == 3 and segs[2] == "create" and method == "POST":
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = {}
        kty = str(body.get("kty", "")) if isinstance(body, dict) else ""
        return vault, KV_UNITS / (_KV_CREATE / 2 if kty.endswith("-HSM") else _KV_CREATE)
    entry = get_key(sb.state, vault["id"], segs[1])
    if entry is None:
        return vault, 1.0
    version = latest_version(entry)
    kty, size = str(version.get("kty", "RSA")), version.get("keySize")
    hsm = kty.endswith("-HSM")
    if len(segs) == 3 and segs[2] == "rotate":  # a new version: a CREATE
        return vault, KV_UNITS / (_KV_CREATE / 2 if hsm else _KV_CREATE)
    limit = _KV_OTHER.get((kty.removesuffix("-HSM"), size), 4000) / (2 if hsm else 1)
    return vault, KV_UNITS / limit
