"""Management-plane secrets: Microsoft.KeyVault/vaults/secrets (PUT, GET, list): their properties, never their value.

Azure/azure-rest-api-specs specification/keyvault/resource-manager/Microsoft.KeyVault (copied in shared
azure-specs/openapi/keyvault/openapi.json): `Secrets_List` / `Secrets_Get` answer `SecretProperties` whose `value`
"will never be returned from the service"; `attributes` are `enabled`, `nbf`, `exp`, `created`, `updated` in
seconds since 1970 (`created`/`updated` read-only). The ARM action is `Microsoft.KeyVault/vaults/secrets/read`,
"View the properties of a secret, but not its value" (Microsoft Learn, "Azure permissions for Security",
Microsoft.KeyVault). A certificate is served here by its backing secret: "When a Key Vault certificate is created,
an addressable key and secret are also created with the same name" (Microsoft Learn, "About Azure Key Vault
certificates"); the backing secret carries the certificate's content type and expiry (# unverified: that the ARM
list includes the certificate-backed secrets, and with `exp` set, is not in a recorded answer).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, not_found, register
from sandbox.providers.keyvault_deleted import API_VERSIONS

SECRET_TYPE = "Microsoft.KeyVault/vaults/secrets"
_ATTRIBUTES = ("enabled", "nbf", "exp")


def _vault_uri(call: Call, vault: dict[str, Any]) -> str:
    from sandbox.providers.keyvault import vault_uri

    return vault_uri(call.sandbox, vault["name"]) if call.sandbox is not None else vault["properties"]["vaultUri"]


def put_secret(state: Any, vault: dict[str, Any], name: str, props: dict[str, Any], tags: Any = None) -> dict:
    """Store a secret (scenarios and PUT): its value is kept apart and never served."""
    now = int(state.clock.timestamp())
    rid = f"{vault['id']}/secrets/{name}"
    old = state.get(rid)
    attrs = {k: v for k, v in (props.get("attributes") or {}).items() if k in _ATTRIBUTES and v is not None}
    attrs.setdefault("enabled", True)
    attrs["created"] = (old or {}).get("properties", {}).get("attributes", {}).get("created", now)
    attrs["updated"] = now
    body = {
        "id": rid,
        "name": name,
        "type": SECRET_TYPE,
        "location": vault["location"],
        "tags": dict(tags or {}),
        "properties": {
            "attributes": attrs,
            **({"contentType": props["contentType"]} if props.get("contentType") else {}),
        },
    }
    state.put(body)
    state.meta_of(rid)["value"] = props.get("value")
    return body


def get_updated(body: dict[str, Any]) -> Any:
    return body["properties"]["attributes"].get("updated")


@register
class VaultSecrets(ResourceType):
    type = SECRET_TYPE
    api_versions = API_VERSIONS

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(body)
        vault = call.state.get(call.path.parent) if call.path.kind == "item" else None
        vault = vault or call.state.get(body["id"].rsplit("/secrets/", 1)[0])
        uri = f"{_vault_uri(call, vault)}secrets/{body['name']}" if vault else None
        if uri:
            out["properties"]["secretUri"] = uri
            version = hashlib.sha256(f"{body['id']}|{get_updated(body)}".encode()).hexdigest()[:32]
            out["properties"]["secretUriWithVersion"] = f"{uri}/{version}"
        out["properties"].pop("value", None)  # never served
        return out

    def list(self, call: Call) -> list[dict[str, Any]]:
        vault = call.state.get(call.path.parent)
        if vault is None:
            raise not_found(call.path)
        found = sorted(call.state.of_type(SECRET_TYPE, under=vault["id"]), key=lambda b: b["name"])
        return [self.view(call, b) for b in found]

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        vault = call.state.get(call.path.parent)
        if vault is None:
            raise not_found(call.path)
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties")
        if not isinstance(props, dict):
            raise ArmError(400, "BadRequest", "The parameter properties is not specified.")  # unverified text
        stored = put_secret(call.state, vault, call.path.name or "", props, body.get("tags"))
        return Answer(201 if existing is None else 200, self.view(call, stored))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        raise ArmError(405, "MethodNotAllowed", "The DELETE method is not allowed for resource type 'vaults/secrets'.")
