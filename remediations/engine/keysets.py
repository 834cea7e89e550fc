"""Disk encryption sets and their vaults: which vault serves a set's key (its host, `sourceVault`, or the other
subscriptions' vaults), the role assignments over the key, the keys the sets use, and each vault's sets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from remediations import keyaccess
from remediations.azure import Azure
from remediations.engine.found import (
    ASSIGNMENT_BLOCKS,
    KEY,
    RELATED,
    Found,
    Needs,
    Progress,
    Reading,
    bodies_of,
    cw,
    list_json,
)
from remediations.engine.listing import list_assignments
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import (
    KEYVAULT_DATA_API,
    ROLE_ASSIGNMENTS_API,
    SUBSCRIPTIONS_API,
    VAULT_API,
    get,
    key_origin,
    name_of,
    parent_of,
    versionless,
)


def fill_sets(
    azure: Azure,
    found: Found,
    needs: Needs,
    reading: Reading,
    step: Progress,
    in_scope: Callable[[str], bool] = lambda _: True,
) -> list[dict[str, Any]]:
    """Fill each disk encryption set's vault and role assignments; read the keys they use (one GET per key)."""
    keys: dict[str, dict[str, Any]] = {}
    users: dict[str, list[str]] = {}
    fetch: dict[str, str] = {}  # keys to read, by lower-cased id: one GET each, `azure.workers` at once
    granting: dict[str, list[dict[str, Any]]] = {}  # keys a grant would be planned on, by lower-cased id: their sets
    for des in found.sets.values():
        des_id = str(des["id"])
        vault = key_vault(azure, des, found, reading, step)
        if vault is not None:
            cw(des)["keyVault"] = {k: v for k, v in vault.items() if k != aliases.CRYPTWARD}
            if ASSIGNMENT_BLOCKS & needs.blocks:
                key_access(azure, found, des, vault, reading, step, "encryptionsets" in needs.blocks)
        key_url = str(get(des, "properties.activeKey.keyUrl") or "")
        if vault is None or "/keys/" not in key_url:
            continue
        key_id = f"{vault['id']}/keys/{name_of(versionless(key_url))}"
        if (cw(des).get("keyAccess") or {}).get("missing") and keyaccess.uses_rbac(vault):
            # a role would be granted at the key: only on a key that exists (ARM refuses a scope that does not), so
            # read it first. An access policy is granted on the vault, which exists.
            granting.setdefault(key_id.lower(), []).append(des)
        elif not needs.wants(KEY):
            continue
        if needs.wants(KEY):
            users.setdefault(key_id.lower(), []).append(des_id)
        if key_id.lower() in found.keys:
            keys[key_id.lower()] = found.keys[key_id.lower()]
        else:
            fetch.setdefault(key_id.lower(), key_id)

    def read_key(key_id: str) -> dict[str, Any]:
        step(f"key {name_of(key_id)} of {name_of(parent_of(key_id))}")
        return get_key(azure, key_id)

    for key_id, result in zip(fetch.values(), azure.each(read_key, fetch.values()), strict=True):
        if isinstance(result, AzureAccessError):
            if key_id.lower() in users:
                reading.missing(key_id, RELATED, result)
            for des in granting.get(key_id.lower(), ()):
                if result.absent:  # deleted, or never made: des-key-access declines (nothing granted on it)
                    cw(des)["keyExists"] = False
                else:
                    reading.missing(str(des["id"]), "keyAccess", result)
        else:
            keys[key_id.lower()] = result
    keys = {k: keys[k] for k in users if k in keys}  # in the order the sets name them
    for key_id, key in keys.items():
        cw(key)["diskEncryptionSets"] = users[key_id]
        reading.related[key_id] = key
        if needs.rotation_policy and in_scope(key_id):  # only what is evaluated (a key outside: read, not judged)
            try:
                policy = rotation_policy_of(azure, key)
            except AzureAccessError as e:  # (a Reader, an access-policy vault): the fix must not replace it blind
                cw(key)["rotationPolicyUnread"] = f"{e.code}: {e.message}".split("\n")[0].rstrip(": ")
            else:
                if policy is not None and (policy["lifetimeActions"] or policy["attributes"].get("expiryTime")):
                    key.setdefault("properties", {})["rotationPolicy"] = policy
    return list(keys.values())


def serves(vault: Mapping[str, Any], origin: str) -> bool:
    return bool(origin) and key_origin(f"{get(vault, 'properties.vaultUri') or ''}/keys/") == origin


def key_vault(
    azure: Azure, des: dict[str, Any], found: Found, reading: Reading, step: Progress
) -> dict[str, Any] | None:
    """The vault of a set's active key, named by the key URL's host: among the vaults read, else its `sourceVault`
    (one GET), else among the vaults of every other subscription the bot can list; None (recorded) when none."""
    des_id = str(des["id"])
    origin = key_origin(str(get(des, "properties.activeKey.keyUrl") or ""))
    vault = next((v for v in found.vaults.values() if serves(v, origin)), None)
    source = str(get(des, "properties.activeKey.sourceVault.id") or "")
    if vault is None and source:
        try:
            step(f"key vault {name_of(source)}")
            vault = found.vaults.get(source.lower()) or get_vault(azure, source)
            found.vaults[source.lower()] = reading.related[source.lower()] = vault
        except AzureAccessError as e:
            reading.missing(des_id, "keyVault", e)
            reading.missing(des_id, RELATED, e)
            return None
    if vault is None and origin:
        list_other_vaults(azure, found, reading, step)
        vault = next((v for v in found.vaults.values() if serves(v, origin)), None)
    if vault is None:
        why = found.vaults_everywhere if isinstance(found.vaults_everywhere, AzureAccessError) else None
        reason: AzureAccessError | str = why or f"no key vault Cryptward can read serves {origin or 'its key URL'}"
        reading.missing(des_id, "keyVault", reason)
        reading.missing(des_id, RELATED, reason)
    return vault


def list_other_vaults(azure: Azure, found: Found, reading: Reading, step: Progress) -> None:
    """Once: the vaults of every subscription the bot can list and has not listed whole (a set's vault may be in
    another subscription of the same region). A subscription whose vaults cannot be listed is passed over."""
    if found.vaults_everywhere is not None:
        return
    found.vaults_everywhere = "listed"
    try:
        step("subscriptions")
        subs = [str(s["subscriptionId"]) for s in azure.list("/subscriptions", SUBSCRIPTIONS_API)]
    except AzureAccessError as e:
        found.vaults_everywhere = e
        return
    for sub in subs:
        if f"/subscriptions/{sub}".lower() in found.listed:
            continue
        step(f"key vaults in {sub}")
        try:
            vaults = bodies_of(azure.keyvault(sub).vaults.list_by_subscription())
        except AzureAccessError:
            continue
        for vault_id, vault in vaults.items():
            found.vaults.setdefault(vault_id, vault)
            reading.related.setdefault(vault_id, vault)


def key_access(
    azure: Azure,
    found: Found,
    des: dict[str, Any],
    vault: dict[str, Any],
    reading: Reading,
    step: Progress,
    switch: bool = False,
) -> None:
    """Fill a DES's `keyVaultRoleAssignments` (its principals' assignments over its key) and `keyAccess` (see
    remediations/keyaccess.py). An access-policy vault is decided without the assignments. Assignments Resource
    Graph gave are read again through ARM at the key before they can make the bot write: when a principal seems to
    lack its key role (des-key-access would grant it), or, `switch`, when the vault still uses access policies (its
    switch to RBAC rests on the roles)."""
    des_id = str(des["id"])
    key = keyaccess.key_scope(des, vault)
    assignments = assignments_for(azure, found, key, step)
    if (
        found.assignments_from_graph
        and not isinstance(assignments, AzureAccessError)
        and (keyaccess.block(des, vault, assignments)["missing"] or (switch and not keyaccess.uses_rbac(vault)))
    ):
        assignments = exact_assignments(azure, found, key, step)
    if isinstance(assignments, AzureAccessError):
        reading.missing(des_id, "keyVaultRoleAssignments", assignments)
        if keyaccess.uses_rbac(vault):
            reading.missing(des_id, "keyAccess", assignments)
            return
        assignments = []
    else:
        mine = set(keyaccess.principals(des))
        cw(des)["keyVaultRoleAssignments"] = [
            ra for ra in assignments if str(get(ra, "properties.principalId") or "").lower() in mine
        ]
    cw(des)["keyAccess"] = keyaccess.block(des, vault, assignments)


def exact_assignments(azure: Azure, found: Found, key: str, step: Progress) -> list[dict[str, Any]] | AzureAccessError:
    """The assignments at `key` and above, through ARM: one `atScope()` list at the key, or, from the second key of
    the same subscription on, ARM's list of the whole subscription (at, above and below it: the key's included)."""
    sub = key.split("/")[2]
    known = found.exact.get(sub.lower())
    if isinstance(known, int):
        listed = list_assignments(azure, sub, None, step)
        listed.listed.append(f"/subscriptions/{sub}".lower())
        found.exact[sub.lower()] = known = listed
    if isinstance(known, Found):
        return known.assignment_error or assignments_for(azure, known, key, step)
    found.exact[sub.lower()] = 1
    return assignments_for(azure, found, key, step, exact=True)


def vault_sets(found: Found, reading: Reading) -> None:
    """Fill each vault's `encryptionSets`: the disk encryption sets read whose key is in it, each with the role
    assignments that let its principals use that key (what switching the vault to RBAC leaves them)."""
    by_vault: dict[str, list[dict[str, Any]]] = {v: [] for v in found.vaults}
    for des in found.sets.values():
        vault_id = str((cw(des).get("keyVault") or {}).get("id") or "").lower()
        if vault_id not in by_vault:
            continue
        vault = found.vaults[vault_id]
        why = reading.reasons(str(des["id"])).get("keyvaultroleassignments")
        if why:
            reading.missing(str(vault["id"]), "encryptionSets", f"{name_of(str(des['id']))}: {why}")
            continue
        by_vault[vault_id].append(keyaccess.vault_entry(des, vault, cw(des).get("keyVaultRoleAssignments") or []))
    for vault_id, sets in by_vault.items():
        cw(found.vaults[vault_id])["encryptionSets"] = sets


def rotation_policy_of(azure: Azure, key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The key's rotation policy from the Key Vault data plane (`GET {keyUri}/rotationpolicy`), in the management
    plane's shape, when its management-plane body has none; None when it has one (or names no key URI)."""
    if get(key, "properties.rotationPolicy"):
        return None
    uri = str(get(key, "properties.keyUri") or "").rstrip("/")
    if "/keys/" not in uri:
        return None
    policy = azure.keyvault_request("GET", f"{uri}/rotationpolicy", KEYVAULT_DATA_API) or {}
    return {"lifetimeActions": policy.get("lifetimeActions") or [], "attributes": policy.get("attributes") or {}}


def assignments_for(
    azure: Azure, found: Found, scope: str, step: Progress, exact: bool = False
) -> list[dict[str, Any]] | AzureAccessError:
    """Role assignments at `scope` (a key, or its vault) and above: from the listed scope's assignments when `scope`
    is inside it (and not `exact`), else one ARM `atScope()` list at `scope`."""
    inside = not exact and any(scope.lower().startswith(s + "/") for s in found.listed)
    extra: set[str] = set()
    for listed, groups in found.inherited.items():  # what the list at the swept scope inherits holds here too
        if scope.lower().startswith(listed + "/"):
            extra |= groups
    if inside and found.assignments is not None:
        return found.over("roleassignments", scope, extra)
    if inside and found.assignment_error is not None:
        return found.assignment_error
    step(f"role assignments at {name_of(scope)}")
    try:
        path = f"{scope}/providers/Microsoft.Authorization/roleAssignments"
        return list(list_json(azure, path, ROLE_ASSIGNMENTS_API, {"$filter": "atScope()"}).values())
    except AzureAccessError as e:
        if e.absent and "/keys/" in scope.lower():  # no such key: only its vault's and those above can hold
            return assignments_for(azure, found, parent_of(scope), step, exact)
        return e


def get_vault(azure: Azure, vault_id: str) -> dict[str, Any]:
    return dict(azure.get(vault_id, VAULT_API))


def get_key(azure: Azure, key_id: str) -> dict[str, Any]:
    """A key's management-plane body (attributes, rotationPolicy): needs only `vaults/keys/read`."""
    return dict(azure.get(key_id, aliases.API_VERSIONS[KEY]))
