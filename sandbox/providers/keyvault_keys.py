"""Management-plane keys: Microsoft.KeyVault/vaults/keys (PUT create-if-not-exist, GET, list) and
Microsoft.KeyVault/vaults/keys/versions (GET, list). Views over the same key store as the data plane."""

from __future__ import annotations

from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, not_found, register
from sandbox.providers.keyvault_deleted import API_VERSIONS
from sandbox.providers.keyvault_store import (
    KeyStoreError,
    add_version,
    find_version,
    get_key,
    keys_of,
    latest_version,
    recovery_level,
    validate_spec,
)
from sandbox.state import State

KEY_TYPE = "Microsoft.KeyVault/vaults/keys"
VERSION_TYPE = "Microsoft.KeyVault/vaults/keys/versions"


def _vault_uri(call: Call, vault: dict[str, Any]) -> str:
    from sandbox.providers.keyvault import vault_uri

    return vault_uri(call.sandbox, vault["name"]) if call.sandbox is not None else vault["properties"]["vaultUri"]


def key_properties(call: Call, vault: dict[str, Any], entry: dict[str, Any], version: dict[str, Any]) -> dict:
    attrs = version["attributes"]
    out_attrs = {k: attrs[k] for k in ("enabled", "nbf", "exp", "created", "updated") if attrs.get(k) is not None}
    out_attrs["recoveryLevel"] = recovery_level(vault)
    uri = f"{_vault_uri(call, vault)}keys/{entry['name']}"
    props: dict[str, Any] = {
        "attributes": out_attrs,
        "kty": version["kty"],
        "keyOps": list(version["keyOps"]),
        "keyUri": uri,
        "keyUriWithVersion": f"{uri}/{version['version']}",
    }
    if version.get("keySize"):
        props["keySize"] = version["keySize"]
    if version.get("crv"):
        props["curveName"] = version["crv"]
    policy = entry.get("rotationPolicy")
    if policy:  # the management plane shows the data plane's policy, action types lower-case ("omitted if empty")
        attrs = policy.get("attributes") or {}
        props["rotationPolicy"] = {
            "attributes": {k: attrs[k] for k in ("created", "updated", "expiryTime") if attrs.get(k) is not None},
            "lifetimeActions": [
                {
                    "trigger": {k: v for k, v in (a.get("trigger") or {}).items() if v is not None},
                    "action": {"type": str((a.get("action") or {}).get("type", "")).lower()},
                }
                for a in policy.get("lifetimeActions") or []
            ],
        }
    return props


def key_view(call: Call, vault: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    latest = latest_version(entry)
    return {
        "id": f"{vault['id']}/keys/{entry['name']}",
        "name": entry["name"],
        "type": KEY_TYPE,
        "location": vault["location"],
        "tags": dict(latest.get("tags") or {}),
        "properties": key_properties(call, vault, entry, latest),
    }


def _vault_of(call: Call, vault_id: str) -> dict[str, Any]:
    vault = call.state.get(vault_id)
    if vault is None:
        raise not_found(call.path)
    return vault


@register
class VaultKeys(ResourceType):
    type = KEY_TYPE
    api_versions = API_VERSIONS

    def read(self, call: Call) -> dict[str, Any]:
        vault = _vault_of(call, call.path.parent)
        entry = get_key(call.state, vault["id"], call.path.name or "")
        if entry is None:
            raise not_found(call.path)
        return key_view(call, vault, entry)

    def exists(self, state: State, resource_id: str) -> bool:  # a view over the key store
        vault_id, _, name = resource_id.rpartition("/keys/")
        return state.get(vault_id) is not None and get_key(state, vault_id, name) is not None

    def list(self, call: Call) -> list[dict[str, Any]]:
        vault = _vault_of(call, call.path.parent)
        return [key_view(call, vault, e) for e in sorted(keys_of(call.state, vault["id"]), key=lambda e: e["name"])]

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        vault = _vault_of(call, call.path.parent)
        entry = get_key(call.state, vault["id"], call.path.name or "")
        if entry is not None:  # create-if-not-exist: an existing key comes back unchanged
            return Answer(200, key_view(call, vault, entry))
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties")
        if not isinstance(props, dict) or not props.get("kty"):
            raise ArmError(400, "BadRequest", "The parameter properties.kty is not specified.")  # unverified text
        attrs = props.get("attributes") or {}
        try:
            kty, size, crv = validate_spec(props.get("kty"), props.get("keySize"), props.get("curveName"))
        except KeyStoreError as exc:
            raise ArmError(400, "BadRequest", exc.message) from None
        entry, _ = add_version(
            call.state,
            vault,
            call.path.name or "",
            kty=kty,
            key_size=size,
            crv=crv,
            key_ops=props.get("keyOps"),
            enabled=attrs.get("enabled", True),
            exp=attrs.get("exp"),
            nbf=attrs.get("nbf"),
            tags=body.get("tags"),
        )
        return Answer(200, key_view(call, vault, entry))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        raise ArmError(405, "MethodNotAllowed", "The DELETE method is not allowed for resource type 'vaults/keys'.")


@register
class VaultKeyVersions(ResourceType):
    type = VERSION_TYPE
    api_versions = API_VERSIONS

    def parent_exists(self, call: Call) -> bool:  # the parent is a key, a view over the key store
        return self._entry(call) is not None

    def _entry(self, call: Call) -> tuple[dict[str, Any], dict[str, Any]] | None:
        vault_id, _, key_name = call.path.parent.rpartition("/keys/")
        vault = call.state.get(vault_id)
        entry = get_key(call.state, vault_id, key_name) if vault else None
        return (vault, entry) if vault and entry else None

    def _view(self, call: Call, vault: dict[str, Any], entry: dict[str, Any], version: dict[str, Any]) -> dict:
        return {
            "id": f"{vault['id']}/keys/{entry['name']}/versions/{version['version']}",
            "name": version["version"],
            "type": VERSION_TYPE,
            "location": vault["location"],
            "tags": dict(version.get("tags") or {}),
            "properties": key_properties(call, vault, entry, version),
        }

    def read(self, call: Call) -> dict[str, Any]:
        found = self._entry(call)
        version = find_version(found[1], call.path.name or "") if found else None
        if found is None or version is None:
            raise not_found(call.path)
        return self._view(call, found[0], found[1], version)

    def list(self, call: Call) -> list[dict[str, Any]]:
        found = self._entry(call)
        if found is None:
            raise not_found(call.path)
        vault, entry = found
        return [self._view(call, vault, entry, v) for v in entry["versions"]]
