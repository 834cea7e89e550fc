"""Switch a key vault to the Azure RBAC permission model (opt-in: its access policies stop granting anything).

"Setting Azure RBAC permission model invalidates all access policies permissions" (Microsoft Learn, "Migrate to
Azure role-based access control", https://learn.microsoft.com/azure/key-vault/general/rbac-migration), and the disks
of a disk encryption set that cannot reach its key become unusable. So before the switch every disk encryption set
whose key is in the vault (`cryptward.encryptionSets`, filled by the reader from the sets it read) must hold an Azure
role on that key (remediations/keyaccess.py), assigned at least `PlanSettings.role_propagation` ago. While one does
not, the switch is declined with the reason naming the set, and the grants it waits for are planned in its place
(des-key-access's grant, with the same approval rule); the next run, once they have propagated, plans the switch.
Sets in subscriptions Cryptward does not read are not seen: the policy is opt-in for that reason too."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from remediations import keyaccess
from remediations.changes import Change, Operation, PlanContext, SkipReason
from remediations.errors import FixDeclined
from remediations.fixes import register
from remediations.fixes.des_key_access import role_grant
from remediations.resources import VAULT_API, cryptward, get, name_of

PROPERTY = "properties.enableRbacAuthorization"


def _created(assignment: Mapping[str, Any]) -> datetime | None:
    value = get(assignment, "properties.createdOn")
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def _settled(assignment: Mapping[str, Any], ctx: PlanContext) -> bool:
    """Assigned at least the propagation window ago (an assignment without a creation time is not known to be)."""
    created = _created(assignment)
    return created is not None and ctx.now - created >= ctx.settings.role_propagation


def _in_effect(roles: list[Mapping[str, Any]], ctx: PlanContext) -> bool:
    """The key roles a principal holds have propagated: one built-in key role (which grants every key action alone),
    or else all of them (other roles may grant the key actions only together, keyaccess.key_roles)."""
    alone = [ra for ra in roles if keyaccess.role_guid(get(ra, "properties.roleDefinitionId")) in keyaccess.KEY_ROLES]
    return any(_settled(ra, ctx) for ra in alone) or all(_settled(ra, ctx) for ra in roles)


@register("kv-rbac-authorization", reads=("cryptward.encryptionSets",))
def plan(resource: Mapping[str, Any], params: Mapping[str, Any], ctx: PlanContext) -> list[Change]:
    vault_id, vault_name = str(resource["id"]), name_of(str(resource["id"]))
    sets = cryptward(resource, "encryptionSets")
    if sets is None:
        why = f"the disk encryption sets using key vault {vault_name} were not read"
        raise FixDeclined(SkipReason.CANNOT_READ, why)
    grants: list[Change] = []
    waiting: list[str] = []
    minutes = int(ctx.settings.role_propagation.total_seconds() // 60)
    for entry in sets:
        des, key = entry["set"], name_of(str(entry["keyScope"]))
        for principal in entry["principals"]:
            roles = [ra for ra in entry["keyRoles"] if str(get(ra, "properties.principalId")).lower() == principal]
            if not roles:
                grants.append(role_grant(des, resource, principal, ctx))
                waiting.append(f"disk encryption set {name_of(str(des['id']))} has no Azure role on key {key} yet")
            elif not _in_effect(roles, ctx):
                waiting.append(
                    f"disk encryption set {name_of(str(des['id']))}'s role on key {key} is less than {minutes} minutes "
                    "old"
                )
    if waiting:
        raise FixDeclined(
            SkipReason.BLOCKED,
            f"Key vault {vault_name} is not switched to the Azure RBAC permission model yet: its access policies would "
            f"stop granting anything at once, and {'; '.join(waiting)}. "
            + ("The role is granted first (see the plan); the switch" if grants else "The switch")
            + f" waits until every such role is at least {minutes} minutes old.",
            grants,
        )
    policies = get(resource, "properties.accessPolicies") or []
    count = f"its {len(policies)} access polic{'y' if len(policies) == 1 else 'ies'}" if policies else "access policies"
    users = f" The disk encryption sets using it ({len(sets)}) hold Azure roles on their keys." if sets else ""
    return [
        Change(
            resource_id=vault_id,
            summary=(
                f"Switch key vault {vault_name} to the Azure RBAC permission model; {count} stop granting access at "
                f"once, so every identity that uses the vault needs an Azure role on it first.{users}"
            ),
            operation=Operation("PATCH", vault_id, VAULT_API, {"properties": {"enableRbacAuthorization": True}}),
            before={PROPERTY: get(resource, PROPERTY)},
            after={PROPERTY: True},
            disruptive=True,
        )
    ]
