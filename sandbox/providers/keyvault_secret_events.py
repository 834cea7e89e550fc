"""Each vault's Event Grid topic, for secrets and certificates: SecretNearExpiry / CertificateNearExpiry 30 days
before a secret's `exp` and SecretExpired / CertificateExpired at it, by the sandbox clock, once per expiry.

Microsoft Learn, "Azure Key Vault as Event Grid source": "SecretNearExpiry: Triggered when the current version of a
secret is about to expire. (The event is triggered 30 days before the expiration date.)", likewise for certificates;
the data schema is the key events' (azure-rest-api-specs eventgrid Microsoft.KeyVault: id, vaultName, objectType,
objectName, version, nbf, exp), built by `events.key_event` with the object type changed. A certificate is its
backing secret here (sandbox/providers/keyvault_secrets.py), known by its content type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox import delivery, events
from sandbox.providers import eventgrid
from sandbox.providers.keyvault import vault_uri
from sandbox.providers.keyvault_secrets import SECRET_TYPE
from sandbox.state import new_id

if TYPE_CHECKING:
    from sandbox.server import Sandbox

NOTIFIED = "eventgrid.secretevents"  # secret id | exp -> the expiry events already published for it
CERTIFICATE_TYPES = frozenset({"application/x-pkcs12", "application/x-pem-file"})


def publish_expiry(sb: Sandbox) -> None:
    topics = eventgrid._TOPICS.get(sb)
    if topics is None:
        return
    now = sb.state.clock.timestamp()
    notified = sb.state.table(NOTIFIED)
    for secret in list(sb.state.of_type(SECRET_TYPE)):
        attrs = secret["properties"].get("attributes") or {}
        exp = attrs.get("exp")
        if exp is None or now < exp - eventgrid.NEAR_EXPIRY:
            continue
        kind = (
            "Certificate" if str(secret["properties"].get("contentType", "")).lower() in CERTIFICATE_TYPES else "Secret"
        )
        done = notified.setdefault(f"{secret['id'].lower()}|{exp}", [])
        vault_id = secret["id"].rsplit("/secrets/", 1)[0]
        vault = sb.state.get(vault_id)
        for name, due in ((f"{kind}NearExpiry", exp - eventgrid.NEAR_EXPIRY), (f"{kind}Expired", exp)):
            if now >= due and name not in done:
                done.append(name)
                if vault is not None:
                    _publish(sb, topics, name, kind, vault, secret, attrs)


def _publish(sb: Sandbox, topics: Any, name: str, kind: str, vault: dict, secret: dict, attrs: dict) -> None:
    targets = [es for es in topics.engine.active() if delivery.scope_of(es["id"]).lower() == vault["id"].lower()]
    if not targets:
        return
    version = str(attrs.get("updated", ""))
    event = events.key_event(
        name,
        vault_id=vault["id"],
        vault_name=vault["name"],
        key_id=f"{vault_uri(sb, vault['name'])}{kind.lower()}s/{secret['name']}/{version}",
        key_name=secret["name"],
        version=version,
        nbf=attrs.get("nbf"),
        exp=attrs.get("exp"),
        time=sb.state.clock.iso(),
        event_id=new_id(),
    )
    event["data"]["ObjectType"] = kind
    for es in targets:
        topics.engine.publish(es, event)


def install(sb: Sandbox) -> None:
    sb.state.clock.on_tick(lambda: publish_expiry(sb))
