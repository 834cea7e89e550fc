"""What a vault's access review and its expiring items need, read after the reader (one small hook in the run):

    read_vault_extras(azure, reading, needs)    # fills `cryptward.accessReview` and `cryptward.items` of the vaults

Only when a policy reads the block (`Needs.blocks`), and only for the vaults the policies evaluate:

- `accessReview` (remediations/vaultaccess.py): one list of the role assignments at and above the vault
  (`$filter=atScope()`, 2022-04-01) and one list each of PIM's eligibility and assignment schedule instances at and
  above it (`roleEligibilityScheduleInstances` / `roleAssignmentScheduleInstances`, 2020-10-01, azure-rest-api-specs
  authorization stable/2020-10-01; the role has `Microsoft.Authorization/roleEligibilityScheduleInstances/read` and
  `.../roleAssignmentScheduleInstances/read`, "Gets the role eligibility schedule instances at given scope", Microsoft
  Learn "Azure permissions for Identity"; Azure/azure-powershell's Get-AzRoleEligibilityScheduleInstance example
  says `roleAssignments/read` is enough, which the role has too).
- `items` (remediations/expiry.py): one management-plane list of the vault's secrets and one of its keys: metadata
  only. The ARM secret list never carries a value (azure-rest-api-specs keyvault SecretProperties) and needs
  `Microsoft.KeyVault/vaults/secrets/read`, "View the properties of a secret, but not its value"; no data-plane
  role, so it reads RBAC and access-policy vaults alike.

A list that fails leaves its block unfilled with the reason (`Reading.missing`): the vault's finding for that policy
is `could not read`, never compliant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from remediations import expiry, vaultaccess
from remediations.azure import Azure
from remediations.engine.reader import Needs, Reading
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.resources import ROLE_ASSIGNMENTS_API, VAULT_API

PIM_API = "2020-10-01"
ACCESS_REVIEW, ITEMS = "accessReview", "items"
Progress = Callable[[str], None]


def _at_and_above(azure: Azure, vault_id: str, kind: str, api: str) -> list[dict[str, Any]]:
    path = f"{vault_id}/providers/Microsoft.Authorization/{kind}"
    return list(azure.list(path, api, {"$filter": "atScope()"}))


def access_review(azure: Azure, vault: dict[str, Any]) -> list[dict[str, Any]]:
    vault_id = str(vault["id"])
    assignments = _at_and_above(azure, vault_id, "roleAssignments", ROLE_ASSIGNMENTS_API)
    eligible = _at_and_above(azure, vault_id, "roleEligibilityScheduleInstances", PIM_API)
    active = _at_and_above(azure, vault_id, "roleAssignmentScheduleInstances", PIM_API)
    return vaultaccess.review(vault, assignments, eligible, active)


def items(azure: Azure, vault: dict[str, Any]) -> list[dict[str, Any]]:
    vault_id = str(vault["id"])
    bodies = [*azure.list(f"{vault_id}/secrets", VAULT_API), *azure.list(f"{vault_id}/keys", VAULT_API)]
    return [expiry.item(b) for b in bodies]


READS: dict[str, Callable[[Azure, dict[str, Any]], list[dict[str, Any]]]] = {
    ACCESS_REVIEW: access_review,
    ITEMS: items,
}


def read_vault_extras(azure: Azure, reading: Reading, needs: Needs, *, progress: Progress | None = None) -> None:
    wanted = [block for block in READS if block.lower() in needs.blocks]
    if not wanted:
        return
    vault_type = aliases.VAULT.lower()
    for rid, body in reading.resources.items():
        if str(body.get("type", "")).lower() != vault_type or reading.reasons(rid).get(""):
            continue
        for block in wanted:
            if progress:
                progress(f"{block} of {body.get('name')}")
            try:
                body.setdefault(aliases.CRYPTWARD, {})[block] = READS[block](azure, body)
            except AzureAccessError as e:
                reading.missing(rid, block, e)


__all__ = ["read_vault_extras"]
