"""The definitions of the roles, other than the built-in key roles, that a disk encryption set's principals hold over
its key, read after the reader (one small hook in the run, as vaultextras.py):

    read_key_roles(azure, reading)    # re-decides `cryptward.keyAccess` of the sets and `encryptionSets` of vaults

The reader decides key access by the built-in roles of `keyaccess.KEY_ROLES`. A principal it finds `missing` may
still hold a custom role (or another built-in one) whose dataActions grant the key's data actions: each such role's
definition is read once per run (`GET {roleDefinitionId}`, RoleDefinitions_GetById in azure-rest-api-specs
specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
authorization-RoleDefinitionsCalls.json; `Microsoft.Authorization/roleDefinitions/read`) and decided by
`keyaccess.key_roles`. A definition that cannot be read (403) leaves the set's key access unread (`Reading.missing`):
the finding is `could not read`, and nothing is granted on a guess. One that no longer exists (404) grants nothing.
A vault's `encryptionSets` entries count the roles read the same way (a role not read is not counted there, so a
switch to RBAC is never made on an unread role's word).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from remediations import keyaccess
from remediations.azure import Azure
from remediations.engine.reader import Reading
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import cryptward, get

ROLE_DEFINITIONS_API = "2022-04-01"
Progress = Callable[[str], None]


class _Definitions:
    """Role definitions read once per run, by lower-cased GUID: the body, None when Azure says it does not exist, or
    the error that kept it from being read."""

    def __init__(self, azure: Azure, progress: Progress | None) -> None:
        self.azure, self.progress = azure, progress
        self.read: dict[str, dict[str, Any] | AzureAccessError | None] = {}

    def of(self, role_definition_ids: Iterable[str]) -> dict[str, dict[str, Any] | AzureAccessError | None]:
        for rid in role_definition_ids:
            guid = keyaccess.role_guid(rid)
            if guid in self.read:
                continue
            if self.progress:
                self.progress(f"role definition {guid}")
            try:
                self.read[guid] = dict(self.azure.get(rid, ROLE_DEFINITIONS_API))
            except AzureAccessError as e:
                self.read[guid] = None if e.absent else e
        return {keyaccess.role_guid(r): self.read[keyaccess.role_guid(r)] for r in role_definition_ids}


def _known(found: Mapping[str, dict[str, Any] | AzureAccessError | None]) -> dict[str, dict[str, Any]]:
    return {guid: body for guid, body in found.items() if isinstance(body, dict)}


def _sets(reading: Reading) -> list[dict[str, Any]]:
    bodies = {id(b): b for b in (*reading.resources.values(), *reading.related.values())}
    return [b for b in bodies.values() if str(b.get("type", "")).lower() == aliases.DES.lower()]


def _redecide(des: dict[str, Any], definitions: _Definitions, reading: Reading) -> None:
    block = cryptward(des, "keyAccess")
    if not isinstance(block, dict) or block.get("model") != keyaccess.RBAC or not block.get("missing"):
        return
    assignments = cryptward(des, "keyVaultRoleAssignments") or []
    scope = str(block["keyScope"])
    wanted = {p: keyaccess.unknown_roles(assignments, p, scope) for p in block["missing"]}
    if not any(wanted.values()):
        return
    found = definitions.of(dict.fromkeys(r for roles in wanted.values() for r in roles))
    known = _known(found)
    missing = [p for p in block["missing"] if not keyaccess.key_roles(assignments, p, scope, known)]
    unread = [e for p in missing for r in wanted[p] if isinstance(e := found[keyaccess.role_guid(r)], AzureAccessError)]
    if unread:  # a role it holds might grant the key: never decided (nor granted) without its definition
        del des[aliases.CRYPTWARD]["keyAccess"]
        reading.missing(str(des["id"]), "keyAccess", unread[0])
        return
    block["missing"] = missing


def _recount(vault: dict[str, Any], sets: Mapping[str, dict[str, Any]], definitions: _Definitions) -> None:
    for entry in cryptward(vault, "encryptionSets") or []:
        des = sets.get(str(entry.get("id", "")).lower())
        if des is None:
            continue
        assignments = cryptward(des, "keyVaultRoleAssignments") or []
        scope, who = str(entry["keyScope"]), entry.get("principals") or []
        roles = {r for p in who for r in keyaccess.unknown_roles(assignments, p, scope)}
        if not roles:
            continue
        known = _known(definitions.of(sorted(roles)))
        entry["keyRoles"] = [ra for p in who for ra in keyaccess.key_roles(assignments, p, scope, known)]


def read_key_roles(azure: Azure, reading: Reading, *, progress: Progress | None = None) -> None:
    """Re-decide, by the definitions of the roles they hold, the key access of the sets whose principals the
    reader found missing, and the key roles of the sets listed under their vaults."""
    definitions = _Definitions(azure, progress)
    sets = _sets(reading)
    for des in sets:
        _redecide(des, definitions, reading)
    by_id = {str(d["id"]).lower(): d for d in sets}
    for body in {id(b): b for b in reading.related.values()}.values():
        if str(body.get("type", "")).lower() == aliases.VAULT.lower() and get(body, "cryptward.encryptionSets"):
            _recount(body, by_id, definitions)


__all__ = ["ROLE_DEFINITIONS_API", "read_key_roles"]
