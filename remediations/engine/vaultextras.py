"""What a vault's access review and its expiring items need, read after the reader (one small hook in the run):

    read_vault_extras(azure, reading, needs)    # fills `cryptward.accessReview` and `cryptward.items` of the vaults

Only when a policy reads the block (`Needs.blocks`), and only for the vaults the policies evaluate:

- `accessReview` (remediations/vaultaccess.py): one list of the role assignments over the vault (2022-04-01) and
  one list each of PIM's eligibility and assignment schedule instances over it: at the subscription, once, when
  several of its vaults are read (a list there answers what is at, above and below it), else at the vault with
  `$filter=atScope()` (`roleEligibilityScheduleInstances` / `roleAssignmentScheduleInstances`, 2020-10-01,
  azure-rest-api-specs authorization stable/2020-10-01). The role has both types' `/read` ("Gets the role
  eligibility schedule instances at given scope", Microsoft Learn "Azure permissions for Identity");
  Azure/azure-powershell's Get-AzRoleEligibilityScheduleInstance example says `roleAssignments/read` is enough,
  which the role has too.
- `items` (remediations/expiry.py): one management-plane list of the vault's secrets and one of its keys: metadata
  only. The ARM secret list never carries a value (azure-rest-api-specs keyvault SecretProperties) and needs
  `Microsoft.KeyVault/vaults/secrets/read`, "View the properties of a secret, but not its value"; no data-plane
  role, so it reads RBAC and access-policy vaults alike.

A list that fails leaves its block unfilled with the reason (`Reading.missing`): the vault's finding for that policy
is `could not read`, never compliant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from remediations import expiry, vaultaccess
from remediations.azure import Azure
from remediations.engine.reader import Needs, Reading
from remediations.engine.shared import Shared
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.policy.model import Policy
from remediations.resources import ROLE_ASSIGNMENTS_API, VAULT_API

PIM_API = "2020-10-01"
ACCESS_REVIEW, ITEMS = "accessReview", "items"
Progress = Callable[[str], None]


KINDS = ("roleAssignments", "roleEligibilityScheduleInstances", "roleAssignmentScheduleInstances")
APIS = {"roleAssignments": ROLE_ASSIGNMENTS_API}


def _list(azure: Azure, scope: str, kind: str, at_scope: bool) -> list[dict[str, Any]]:
    path = f"{scope}/providers/Microsoft.Authorization/{kind}"
    return list(azure.list(path, APIS.get(kind, PIM_API), {"$filter": "atScope()"} if at_scope else None))


class _Grants:
    """The role assignments and PIM instances over the vaults, listed once per subscription when a sweep reads
    several vaults of it (a list at a subscription answers what is at, above and below it), else per vault
    (`atScope()`: at and above). A subscription list that fails falls back to the per-vault lists."""

    def __init__(
        self, azure: Azure, vault_ids: list[str], known: Mapping[str, list[dict[str, Any]]] | None = None
    ) -> None:
        self.azure = azure
        self.known = known or {}  # subscription -> ARM's role-assignment list of it, when the reader made it
        counts: dict[str, int] = {}
        for rid in vault_ids:
            counts[_subscription(rid)] = counts.get(_subscription(rid), 0) + 1
        self.wide = {sub for sub, n in counts.items() if n > 1}
        self.listed: dict[str, tuple[list[dict[str, Any]], ...] | None] = {}

    def over(self, vault_id: str) -> tuple[list[dict[str, Any]], ...]:
        sub = _subscription(vault_id)
        if sub in self.wide and sub not in self.listed:
            try:
                self.listed[sub] = tuple(self._whole(sub, kind) for kind in KINDS)
            except AzureAccessError:
                self.listed[sub] = None
        found = self.listed.get(sub)
        if found is not None:
            return found
        return tuple(
            self.known[sub]
            if kind == "roleAssignments" and sub in self.known
            else _list(self.azure, vault_id, kind, True)
            for kind in KINDS
        )

    def _whole(self, sub: str, kind: str) -> list[dict[str, Any]]:
        """The subscription's list of `kind`: the reader's own role-assignment list of it when it made one (the same
        request: key access and the access review share it), else one list here."""
        if kind == "roleAssignments" and sub in self.known:
            return self.known[sub]
        return _list(self.azure, sub, kind, False)


def _subscription(resource_id: str) -> str:
    return "/".join(resource_id.split("/")[:3]).lower()


def access_review(grants: _Grants, vault: dict[str, Any]) -> list[dict[str, Any]]:
    assignments, eligible, active = grants.over(str(vault["id"]))
    return vaultaccess.review(vault, assignments, eligible, active)


def items(grants: _Grants, vault: dict[str, Any]) -> list[dict[str, Any]]:
    vault_id, azure = str(vault["id"]), grants.azure
    bodies = [*azure.list(f"{vault_id}/secrets", VAULT_API), *azure.list(f"{vault_id}/keys", VAULT_API)]
    return [expiry.item(b) for b in bodies]


READS: dict[str, Callable[[_Grants, dict[str, Any]], list[dict[str, Any]]]] = {
    ACCESS_REVIEW: access_review,
    ITEMS: items,
}


def read_vault_extras(
    azure: Azure,
    reading: Reading,
    needs: Needs,
    *,
    progress: Progress | None = None,
    policies: Sequence[Policy] | None = None,
) -> None:
    """Fill the blocks `needs` names for the vaults read; with `policies`, a block only for the vaults one of the
    policies that read it applies to (not those under its assignment's notScopes, nor for a disabled policy)."""
    wanted = [block for block in READS if block.lower() in needs.blocks]
    if not wanted:
        return
    vault_type = aliases.VAULT.lower()
    vaults = {
        rid: body
        for rid, body in reading.resources.items()
        if str(body.get("type", "")).lower() == vault_type and not reading.reasons(rid).get("")
    }
    grants = _Grants(azure, list(vaults), reading.assignment_lists)
    share = Shared()  # an assignment over many vaults gives each the same review entry: one object for them all
    for block in wanted:
        readers = None if policies is None else [p for p in policies if block.lower() in Needs.of([p]).blocks]
        some = {rid: b for rid, b in vaults.items() if readers is None or any(p.applies_to(b) for p in readers)}

        def read(item: tuple[str, dict[str, Any]], block: str = block) -> list[dict[str, Any]]:
            if progress:
                progress(f"{block} of {item[1].get('name')}")
            return READS[block](grants, item[1])

        # A vault's items are independent reads: `CRYPTWARD_READ_CONCURRENCY` at once, paced by the read budget. The
        # access review stays one vault after another: its first vault of a subscription lists the subscription's
        # grants for all the others.
        results = azure.each(read, some.items()) if block == ITEMS else _one_by_one(read, some.items())
        for (rid, body), entries in zip(some.items(), results, strict=True):
            if isinstance(entries, AzureAccessError):
                reading.missing(rid, block, entries)
                continue
            if block == ACCESS_REVIEW:
                entries = [share(e) for e in entries]
            body.setdefault(aliases.CRYPTWARD, {})[block] = entries


def _one_by_one(read: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    results: list[Any] = []
    for item in items:
        try:
            results.append(read(item))
        except AzureAccessError as e:
            results.append(e)
    return results


__all__ = ["read_vault_extras"]
