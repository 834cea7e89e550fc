"""Microsoft.KeyVault vaults: create/update (PUT, PATCH), read, list, soft-delete, recover, access policies; and the
helpers other providers use to reach keys (`vault_by_name`, `find_key`, `latest_version`, `can_use_key`,
`on_new_version`).

Deleted vaults and purge live in keyvault_deleted.py, management-plane keys in keyvault_keys.py, the key store in
keyvault_store.py, the data plane in keyvault_data.py. Error codes and messages are Azure's where they could be
checked against real responses (see the comments); the others say so.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from sandbox import rbac
from sandbox.arm import Answer, ArmError, Call, ResourceType, copy_body, register
from sandbox.providers import keyvault_deleted, keyvault_keys  # noqa: F401  (registers their types)
from sandbox.providers.keyvault_store import (
    find_version,
    get_key,
    keys,
    latest_version,
    on_new_version,
)
from sandbox.state import State

if TYPE_CHECKING:
    from sandbox.server import Sandbox

__all__ = [
    "API_VERSIONS",
    "can_use_key",
    "data_allowed",
    "find_key",
    "latest_version",
    "on_new_version",
    "vault_by_name",
]

API_VERSIONS = keyvault_deleted.API_VERSIONS
VAULT_TYPE = "Microsoft.KeyVault/vaults"
# "When you create a new vault with API version 2026-02-01 or later, the default access control model is Azure RBAC
# (enableRbacAuthorization = true). This default applies only to create operations. [...] Vaults where
# enableRbacAuthorization is null (from older API versions) continue using access policies." (Microsoft Learn, "Prepare
# for Key Vault API version 2026-02-01 and later: Azure RBAC as default access control",
# https://learn.microsoft.com/azure/key-vault/general/access-control-default). A vault created before then without
# the property keeps it absent in every GET (recordings keyvault/c7n-vault-get-2019-09-01*.json,
# cli-vault-get-2023-02-01.json; all four 2026-05-15 vault examples in azure-specs omit it), although the 2026-05-15
# spec's VaultProperties still says "If null or not specified, the vault is created with the default value of false".
RBAC_DEFAULT_SINCE = "2026-02-01"
# What was never set stays absent: enabledFor* (recording cli-vault-get-2023-02-01-purge-protection.json), and
# enableSoftDelete/softDeleteRetentionInDays on vaults created before soft delete was written by default (recordings
# c7n-vault-get-2019-09-01*.json; azure-specs examples/keyvault/getVault.json at 2026-05-15 omits them too). Newer
# creations store the spec's defaults (2026-05-15 VaultProperties: enableSoftDelete "set to true by default",
# softDeleteRetentionInDays default 90); the first api-version that does is unverified. Readers of a vault take
# Azure's defaults when the properties are absent (soft delete on, 90 days).
SOFT_DELETE_STORED_SINCE = "2021-04-01-preview"  # unverified (after 2019-09-01)
# publicNetworkAccess ("Enabled" unless set) and systemData are answered only from the api-versions that have them:
# absent at 2019-09-01 (c7n recordings), present at 2023-02-01 (az CLI recordings); the exact first api-version of
# each is unverified (the spec versions in between were not read).
PUBLIC_ACCESS_SINCE = "2021-06-01-preview"  # unverified (between 2019-09-01 and 2023-02-01)
SYSTEM_DATA_SINCE = "2021-04-01-preview"  # unverified (between 2019-09-01 and 2023-02-01)
_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PUBLIC = {"enabled": "Enabled", "disabled": "Disabled", "securedbyperimeter": "SecuredByPerimeter"}


def _bad(message: str, code: str = "BadRequest") -> ArmError:
    return ArmError(400, code, message)


# -- validation ---------------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        # Verified: VaultNameNotValid, message as Azure words it (public deployment logs).
        raise _bad(
            f"The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The "
            "name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens. Follow "
            "this link for more information: https://go.microsoft.com/fwlink/?linkid=2147742",
            "VaultNameNotValid",
        )


def _check_properties(call: Call, props: dict[str, Any], existing: dict[str, Any] | None, patch: bool) -> None:
    """Azure's refusals of vault properties. `existing` is the stored vault's properties on an update."""
    tenant = props.get("tenantId")
    if tenant is None and not patch:
        raise _bad("The parameter tenantId is not specified.")  # wording modelled on the accessPolicies one
    if tenant is not None:
        if not isinstance(tenant, str) or not _GUID.match(tenant):
            raise _bad("Bad JSON content found in the request.")  # what Key Vault answers a non-GUID tenantId
        if tenant.lower() != call.state.tenant_id.lower():
            raise _bad(f"The tenant '{tenant}' of the vault is not the tenant of the subscription.")  # unverified text
    sku = props.get("sku")
    if sku is None and not patch:
        raise _bad("The parameter sku is not specified.")  # wording modelled on the accessPolicies one
    if sku is not None:
        if not isinstance(sku, dict) or str(sku.get("family", "")).upper() != "A":
            raise _bad("The parameter sku.family is not valid. Valid values: 'A'.")  # unverified text
        if str(sku.get("name", "")).lower() not in ("standard", "premium"):
            raise _bad(f"The sku name '{sku.get('name')}' is not valid. Valid values: 'standard', 'premium'.")
    if props.get("enableSoftDelete") is False and not (existing and existing.get("enableSoftDelete") is False):
        # Since February 2025 soft delete cannot be turned off; same wording as the purge-protection refusal.
        raise _bad(
            'The property "enableSoftDelete" cannot be set to false. Enabling the soft delete for a vault is an '
            "irreversible action."
        )
    if props.get("enablePurgeProtection") is False:
        # Verified (az CLI and REST reports): any explicit false is refused, on create and on update.
        raise _bad(
            'The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection for a vault '
            "is an irreversible action."
        )
    days = props.get("softDeleteRetentionInDays")
    if days is not None:
        if existing is not None and days != existing.get("softDeleteRetentionInDays"):
            # Verified: Code="BadRequest", this message (quoted in terraform-provider-azurerm and Bicep templates).
            raise _bad('The property "softDeleteRetentionInDays" has been set already and it can\'t be modified.')
        if not isinstance(days, int) or not 7 <= days <= 90:
            raise _bad(f"The softDeleteRetentionInDays value '{days}' is not valid. It accepts >=7 and <=90.")
    public = props.get("publicNetworkAccess")
    if public is not None and str(public).lower() not in _PUBLIC:
        raise _bad(f"The publicNetworkAccess value '{public}' is not valid. Valid values: 'Enabled', 'Disabled'.")
    policies = props.get("accessPolicies")
    if policies is not None:
        if not isinstance(policies, list) or len(policies) > 1024:
            raise _bad("The parameter accessPolicies is not valid.")
        for entry in policies:
            if not isinstance(entry, dict) or not entry.get("objectId") or not entry.get("tenantId"):
                raise _bad("The access policy entry must have tenantId, objectId and permissions.")


def _normalise(props: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(props)
    if "sku" in out:
        out["sku"] = {"family": "A", "name": str(out["sku"]["name"]).lower()}
    if "publicNetworkAccess" in out:
        out["publicNetworkAccess"] = _PUBLIC[str(out["publicNetworkAccess"]).lower()]
    out.pop("createMode", None)
    out.pop("vaultUri", None)
    out.pop("provisioningState", None)
    out.pop("privateEndpointConnections", None)
    out.pop("hsmPoolResourceId", None)
    if out.get("enablePurgeProtection") is None:
        out.pop("enablePurgeProtection", None)
    acls = out.get("networkAcls")
    if isinstance(acls, dict):  # Key Vault stores a bare address as a /32 range and virtual network ids lower-cased
        for rule in acls.get("ipRules") or []:
            value = str(rule.get("value", ""))
            if value and "/" not in value and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", value):
                rule["value"] = f"{value}/32"
        for rule in acls.get("virtualNetworkRules") or []:
            if isinstance(rule.get("id"), str):
                rule["id"] = rule["id"].lower()
    return out


def _rbac_default(api_version: str) -> bool:
    return api_version[:10] >= RBAC_DEFAULT_SINCE


def vault_uri(sb: Sandbox, name: str) -> str:
    """The data-plane origin of a vault in this sandbox: its own port (in Azure: https://{name}.vault.azure.net/).
    Key ids are {origin}/keys/{key}/{version}, the only form the Key Vault SDK accepts (see sandbox/listeners.py)."""
    return f"https://127.0.0.1:{sb.listeners.port_for(name)}/"


# -- the vaults type ----------------------------------------------------------------------------------------------


@register
class Vaults(ResourceType):
    type = VAULT_TYPE
    api_versions = API_VERSIONS

    def view(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        out = copy_body(body)
        stored = str(out["properties"].get("vaultUri") or "")
        if call.sandbox is not None and (not stored or stored.startswith("https://127.0.0.1:")):
            # a vault of a bulk estate (sandbox/bulk.py) keeps its own name and has no data plane (no port)
            out["properties"]["vaultUri"] = vault_uri(call.sandbox, body["name"])
        api = call.api_version[:10]
        if api < PUBLIC_ACCESS_SINCE[:10]:
            out["properties"].pop("publicNetworkAccess", None)
        else:
            out["properties"].setdefault("publicNetworkAccess", "Enabled")
        if api < SYSTEM_DATA_SINCE[:10]:
            out.pop("systemData", None)
        return out

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        body = call.body if isinstance(call.body, dict) else {}
        name = call.path.name or ""
        location = body.get("location")
        if not location:
            raise _bad("The location property is required for this definition.", "LocationRequired")
        props = body.get("properties")
        if not isinstance(props, dict):
            raise _bad("The parameter properties is not specified.")
        if existing is None and str(props.get("createMode", "default")).lower() == "recover":
            return self._recover(call, body, name)
        if existing is None:
            _check_name(name)
            self._check_name_free(call, name)
        _check_properties(call, props, existing["properties"] if existing else None, patch=False)
        if existing is None:
            stored = self._create(call, body, name)
            answer = self.view(call, stored)
            answer["properties"]["provisioningState"] = "RegisteringDns"  # the next GET shows Succeeded
            return Answer(200, answer, {"retry-after-ms": str(call.state.settings.lro_delay_ms)})
        merged = copy.deepcopy(existing)
        merged["properties"].update(_normalise(props))
        merged["location"] = existing["location"]
        if "tags" in body:
            merged["tags"] = body["tags"] or {}
        self._check_policies_needed(merged["properties"])
        call.state.put(merged)
        return Answer(200, self.view(call, merged))

    def patch(self, call: Call, existing: dict[str, Any]) -> Answer:
        body = call.body if isinstance(call.body, dict) else {}
        props = body.get("properties") or {}
        _check_properties(call, props, existing["properties"], patch=True)
        merged = copy.deepcopy(existing)
        merged["properties"].update(_normalise(props))
        if "tags" in body:
            merged["tags"] = body["tags"] or {}
        call.state.put(merged)
        return Answer(200, self.view(call, merged))

    def delete(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        if existing is None:
            return Answer(204)
        call.state.remove(existing["id"])
        keyvault_deleted.soft_delete(call.state, existing)
        return Answer(200)

    # -- helpers --
    def _check_name_free(self, call: Call, name: str) -> None:
        other = vault_by_name(call.state, name)
        if other is not None and other["id"].lower() != call.path.id.lower():
            # Verified: VaultAlreadyExists and its message (public deployment logs, 2025).
            raise ArmError(
                409,
                "VaultAlreadyExists",
                f"The vault name '{name}' is already in use. Vault names are globally unique so it is possible that "
                "the name is already taken. If you are sure that the vault name was not taken then it is possible "
                "that a vault with the same name was recently deleted but not purged after being placed in a "
                "recoverable state. If the vault is in a recoverable state then the vault will need to be purged "
                "before reusing the name. For more information about VaultAlreadyExists, soft delete and purging a "
                "vault follow this link https://go.microsoft.com/fwlink/?linkid=2147740.",
            )
        if keyvault_deleted.deleted_by_name(call.state, name) is not None:
            # Verified: 409 ConflictError and this message (az CLI output, 2024).
            raise ArmError(
                409,
                "ConflictError",
                "A vault with the same name already exists in deleted state. You need to either recover or purge "
                "existing key vault. Follow this link https://go.microsoft.com/fwlink/?linkid=2149745 for more "
                "information on soft delete.",
            )

    def _check_policies_needed(self, props: dict[str, Any]) -> None:
        if not props.get("enableRbacAuthorization") and props.get("accessPolicies") is None:
            # Verified wording (Azure.ResourceManager.KeyVault report); the spec requires accessPolicies unless
            # createMode is recover. A vault using RBAC is accepted without them, as Azure does.
            raise _bad("The parameter accessPolicies is not specified.")

    def _create(self, call: Call, body: dict[str, Any], name: str) -> dict[str, Any]:
        props = _normalise(body["properties"])
        if props.get("enableRbacAuthorization") is None:  # null is "not specified" (access-control-default above)
            props.pop("enableRbacAuthorization", None)
            if _rbac_default(call.api_version):
                props["enableRbacAuthorization"] = True
        self._check_policies_needed(props)
        props.setdefault("accessPolicies", [])
        if call.api_version[:10] >= SOFT_DELETE_STORED_SINCE[:10]:
            props.setdefault("enableSoftDelete", True)
            props.setdefault("softDeleteRetentionInDays", 90)
        props["provisioningState"] = "Succeeded"
        props["vaultUri"] = vault_uri(call.sandbox, name)
        now = call.state.clock.iso()
        who = call.principal.upn or call.principal.object_id
        kind = "User" if call.principal.is_user else "Application"
        stored = {
            "id": call.path.id,
            "name": name,
            "type": VAULT_TYPE,
            "location": str(body["location"]).replace(" ", "").lower(),
            "tags": body.get("tags") or {},
            "systemData": {
                "createdBy": who,
                "createdByType": kind,
                "createdAt": now,
                "lastModifiedBy": who,
                "lastModifiedByType": kind,
                "lastModifiedAt": now,
            },
            "properties": props,
        }
        return call.state.put(stored)

    def _recover(self, call: Call, body: dict[str, Any], name: str) -> Answer:
        deleted = keyvault_deleted.deleted_by_name(call.state, name)
        if deleted is None:
            # Unverified wording: recovering a name with no soft-deleted vault behind it.
            raise ArmError(404, "NotFound", f"A deleted vault with the name '{name}' was not found.")
        original = keyvault_deleted.restore(call.state, deleted)
        old_id = original["id"]
        original["id"] = call.path.id
        original["location"] = str(body["location"]).replace(" ", "").lower()
        if "tags" in body:
            original["tags"] = body["tags"] or {}
        if old_id.lower() != call.path.id.lower():  # recovered into another group: the keys follow
            table = keys(call.state)
            for ref in [r for r in table if r.startswith(old_id.lower() + "/")]:
                entry = table.pop(ref)
                entry["vaultId"] = call.path.id
                table[f"{call.path.id.lower()}/{entry['name'].lower()}"] = entry
        call.state.put(original)
        return Answer(200, self.view(call, original))


@register
class AccessPolicies(ResourceType):
    """PUT .../vaults/{name}/accessPolicies/{add|replace|remove} (az keyvault set-policy / delete-policy)."""

    type = "Microsoft.KeyVault/vaults/accessPolicies"
    api_versions = API_VERSIONS

    def read(self, call: Call) -> dict[str, Any]:
        raise ArmError(405, "MethodNotAllowed", "The GET method is not allowed for access policies.")

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        kind = (call.path.name or "").lower()
        if kind not in ("add", "replace", "remove"):
            raise _bad(f"The operation kind '{call.path.name}' is not valid. Valid values: add, replace, remove.")
        body = call.body if isinstance(call.body, dict) else {}
        given = (body.get("properties") or {}).get("accessPolicies")
        if not isinstance(given, list):
            raise _bad("The parameter accessPolicies is not specified.")
        vault = copy.deepcopy(call.state.get(call.path.parent) or {})
        policies: list[dict[str, Any]] = vault["properties"].setdefault("accessPolicies", [])
        for entry in given:
            oid = str(entry.get("objectId", "")).lower()
            current = next((p for p in policies if str(p.get("objectId", "")).lower() == oid), None)
            wanted = entry.get("permissions") or {}
            if current is None:
                if kind != "remove":
                    policies.append(copy.deepcopy(entry))
                continue
            perms = current.setdefault("permissions", {})
            for category, values in wanted.items():
                have = list(perms.get(category) or [])
                if kind == "replace":
                    perms[category] = list(values)
                elif kind == "add":
                    perms[category] = have + [v for v in values if v.lower() not in {h.lower() for h in have}]
                else:
                    perms[category] = [h for h in have if h.lower() not in {v.lower() for v in values}]
            if kind == "remove" and not any(perms.values()):
                policies.remove(current)
        call.state.put(vault)
        out = {
            "id": call.path.id,
            "name": call.path.name,
            "type": self.type,
            "location": vault.get("location"),
            "properties": {"accessPolicies": copy.deepcopy(policies)},
        }
        return Answer(200, out)


# -- helpers for other providers ----------------------------------------------------------------------------------


def vault_by_name(state: State, name: str) -> dict[str, Any] | None:
    """The (active) vault with this globally unique name, any subscription."""
    return next(iter(state.named(VAULT_TYPE, name)), None)


_KEY_PATH = re.compile(r"^/keys/(?P<key>[^/]+)(?:/(?P<version>[^/]*))?/?$", re.IGNORECASE)


def find_key(sb: Sandbox, key_url: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None] | None:
    """(vault, key entry, version entry or None for a versionless URL) for a key URL of this sandbox's data plane,
    or None when the vault, key or version does not exist."""
    parsed = urlparse(key_url)
    match = _KEY_PATH.match(parsed.path or "")
    if match is None:
        return None
    name = sb.listeners.name_for(parsed.port) if parsed.hostname == "127.0.0.1" else None
    vault = vault_by_name(sb.state, name) if name else None
    if vault is None:
        return None
    entry = get_key(sb.state, vault["id"], match["key"])
    if entry is None:
        return None
    if not match["version"]:
        return vault, entry, None
    version = find_version(entry, match["version"])
    return (vault, entry, version) if version is not None else None


def data_allowed(sb: Sandbox, object_id: str, vault: dict[str, Any], key_name: str | None, operation: str) -> bool:
    """Whether a principal may perform a keys data-plane operation (an `rbac.DATA_ACTIONS` key) on a vault: by
    Azure RBAC data actions on an RBAC vault, by the vault's access policies otherwise."""
    props = vault.get("properties", {})
    if props.get("enableRbacAuthorization"):
        scope = f"{vault['id']}/keys/{key_name}" if key_name else vault["id"]
        return sb.allowed(object_id, rbac.DATA_ACTIONS[operation], scope, data_action=True)
    return rbac.access_policy_allows(
        props.get("accessPolicies") or [], object_id, rbac.KEY_PERMISSIONS[operation], str(props.get("tenantId") or "")
    )


_PERMISSION_OPS = {"get": "get", "list": "list", "wrapkey": "wrap", "unwrapkey": "unwrap", "encrypt": "encrypt",
                   "decrypt": "decrypt", "sign": "sign", "verify": "verify", "create": "create", "update": "update",
                   "rotate": "rotate", "delete": "delete"}  # fmt: skip


def can_use_key(
    sb: Sandbox,
    principal_object_id: str,
    vault_body: dict[str, Any],
    key_name: str,
    permissions: tuple[str, ...] = ("get", "wrapKey", "unwrapKey"),
) -> bool:
    """Whether the principal holds every one of these key permissions (access-policy names) on the key: RBAC
    vaults check keys/read, keys/wrap/action, keys/unwrap/action...; access-policy vaults check the policies."""
    return all(
        data_allowed(sb, principal_object_id, vault_body, key_name, _PERMISSION_OPS[p.lower()]) for p in permissions
    )


def install(sb: Sandbox) -> None:
    keyvault_deleted.install(sb)
