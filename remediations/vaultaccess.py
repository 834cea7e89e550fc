"""Who may do what on a key vault, against the seed's "Define permissions" (shared/seed: administrators manage a vault
through a group holding Key Vault Contributor, with no data access; Key Vault Crypto Officer for those who create
keys; Key Vault Reader at the vault plus Key Vault Crypto User at the key to use keys; RBAC rather than access
policies; PIM so administrators hold privileges only while they use them). Pure: no I/O.

    review(vault, assignments, eligible, active)   # the vault's `cryptward.accessReview` block (a list of entries)

Each entry names one assignment (or access policy), the problem, and the seed's recommended role, in `say`:

- `user-data-role-above-vault`: a Key Vault data-plane role held by a user at a scope above the vault (its resource
  group, subscription, a management group or the root), where it reaches every vault there.
- `user-administrator`: Owner or Key Vault Administrator held by a user rather than a group, at the vault or above.
- `standing-privileged`: where PIM is in use over the vault (an eligibility schedule instance at or above it), a
  privileged role held by a user or group outside PIM or assigned permanently, i.e. not an `Activated` assignment
  schedule instance (azure-rest-api-specs authorization stable/2020-10-01 RoleAssignmentScheduleInstance.json:
  `assignmentType` Activated | Assigned, `originRoleAssignmentId` the role assignment it is).
- `access-policy-all-or-purge`: an access-policy vault (only `enableRbacAuthorization: true` is RBAC,
  keyaccess.uses_rbac) with an entry granting `all` or `purge` on keys, secrets or certificates.

`principalType` is the role assignment's own (User, Group, ServicePrincipal; RoleAssignmentProperties 2022-04-01);
role definition ids are compared by GUID (keyaccess.role_guid).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remediations.keyaccess import role_guid, uses_rbac
from remediations.resources import get

# Built-in role GUIDs (Microsoft Learn, "Azure built-in roles"; as in sandbox/data/builtin_roles.json).
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
KV_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KV_CONTRIBUTOR = "f25e0fa2-a7c8-4377-a976-54943a77a395"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
DATA_ROLES: dict[str, str] = {
    KV_ADMINISTRATOR: "Key Vault Administrator",
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603": "Key Vault Crypto Officer",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "e147488a-f6f5-4113-8e2d-b22465e65bf6": "Key Vault Crypto Service Encryption User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "a4417e6f-fecd-4de8-b567-7b0420556985": "Key Vault Certificates Officer",
    "21090545-7ca7-4776-b22c-e363652d74d2": "Key Vault Reader",
}
PRIVILEGED: dict[str, str] = {
    OWNER: "Owner",
    KV_ADMINISTRATOR: "Key Vault Administrator",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
    KV_CONTRIBUTOR: "Key Vault Contributor",
}
ADMIN_ROLES = frozenset({OWNER, KV_ADMINISTRATOR})
SEED_ADMINS = "Key Vault Contributor held by a group of the vault's administrators (seed, Define permissions)"
SEED_DATA = (
    "Key Vault Reader at the vault and Key Vault Crypto User at the key to use keys, Key Vault Crypto Officer at the "
    "vault to create them (seed, Define permissions)"
)
SEED_PIM = "an eligible assignment in Privileged Identity Management, activated when needed (seed, Access Control)"
SEED_POLICIES = "Azure RBAC (seed, Define permissions), or an access policy with only the operations used; no purge"
_ASSIGNMENTS = "/providers/microsoft.authorization/roleassignments/"


def _scope_of(assignment: Mapping[str, Any]) -> str:
    scope = get(assignment, "properties.scope")
    if scope:
        return str(scope).rstrip("/")
    return str(assignment.get("id", "")).lower().rsplit(_ASSIGNMENTS, 1)[0]


def _covers(scope: str, target: str) -> bool:
    s, t = scope.lower().rstrip("/"), target.lower().rstrip("/")
    return s in ("", "/") or t == s or t.startswith(s + "/")


def _role_name(guid: str) -> str:
    return DATA_ROLES.get(guid) or PRIVILEGED.get(guid) or guid


def review(
    vault: Mapping[str, Any],
    assignments: Iterable[Mapping[str, Any]],
    eligible: Iterable[Mapping[str, Any]] = (),
    active: Iterable[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The vault's access review entries (empty: nothing to report). `assignments`: role assignments at the vault
    and above (others are ignored); `eligible` / `active`: PIM schedule instances at the vault and above."""
    vault_id = str(vault.get("id", "")).rstrip("/")
    vault_name = str(vault.get("name") or vault_id.rsplit("/", 1)[-1])
    pim = any(_covers(_scope_of(e), vault_id) for e in eligible)
    activated = {
        str(get(a, "properties.originRoleAssignmentId") or "").lower()
        for a in active
        if str(get(a, "properties.assignmentType") or "").lower() == "activated"
    }
    out: list[dict[str, Any]] = []
    for ra in assignments:
        scope = _scope_of(ra)
        if not _covers(scope, vault_id):
            continue
        guid = role_guid(get(ra, "properties.roleDefinitionId"))
        kind = str(get(ra, "properties.principalType") or "")
        principal = str(get(ra, "properties.principalId") or "")
        base = {
            "assignment": str(ra.get("id", "")),
            "principalId": principal,
            "principalType": kind,
            "role": _role_name(guid),
            "scope": scope,
        }
        who = f"{kind or 'principal'} {principal} holds {_role_name(guid)} at {scope}"
        if kind == "User" and guid in DATA_ROLES and scope.lower() != vault_id.lower():
            out.append(
                {
                    **base,
                    "problem": "user-data-role-above-vault",
                    "recommended": SEED_DATA,
                    "say": f"{who}, which reaches every vault under it, not only {vault_name}: "
                    f"recommended {SEED_DATA}.",
                }
            )
        if kind == "User" and guid in ADMIN_ROLES:
            out.append(
                {
                    **base,
                    "problem": "user-administrator",
                    "recommended": SEED_ADMINS,
                    "say": f"{who}, as a user rather than through a group: recommended {SEED_ADMINS}.",
                }
            )
        standing = str(ra.get("id", "")).lower() not in activated
        if pim and standing and guid in PRIVILEGED and kind in ("User", "Group"):
            out.append(
                {
                    **base,
                    "problem": "standing-privileged",
                    "recommended": SEED_PIM,
                    "say": f"{who} permanently, although PIM is in use here: recommended {SEED_PIM}.",
                }
            )
    if not uses_rbac(vault):
        for entry in get(vault, "properties.accessPolicies") or []:
            wide = _wide_permissions(entry)
            if wide:
                principal = str(entry.get("objectId") or "")
                out.append(
                    {
                        "accessPolicy": principal,
                        "principalId": principal,
                        "permissions": wide,
                        "problem": "access-policy-all-or-purge",
                        "recommended": SEED_POLICIES,
                        "say": f"the access policy of {principal} grants {', '.join(wide)}: recommended "
                        f"{SEED_POLICIES}.",
                    }
                )
    return out


def _wide_permissions(entry: Mapping[str, Any]) -> list[str]:
    """`keys: all`, `secrets: purge` ... of one access policy entry, compared without case."""
    found = []
    for kind in ("keys", "secrets", "certificates", "storage"):
        granted = {str(p).lower() for p in (get(entry, f"permissions.{kind}") or [])}
        found += [f"{kind}: {p}" for p in ("all", "purge") if p in granted]
    return found


__all__ = ["review"]
