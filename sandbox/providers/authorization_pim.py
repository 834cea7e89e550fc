"""Privileged Identity Management for Azure resources, read side: Microsoft.Authorization/
roleEligibilityScheduleInstances and roleAssignmentScheduleInstances, listed at any scope (api 2020-10-01).

Shapes from Azure/azure-rest-api-specs specification/authorization/resource-manager/Microsoft.Authorization/stable/
2020-10-01/RoleEligibilityScheduleInstance.json and RoleAssignmentScheduleInstance.json (examples
GetRoleEligibilityScheduleInstancesByScope.json, GetRoleAssignmentScheduleInstancesByScope.json): `properties` with
`scope`, `roleDefinitionId`, `principalId`, `principalType`, `status`, `startDateTime`, `endDateTime`, `memberType`,
`createdOn`; an assignment instance also has `assignmentType` (`Activated`: activated from an eligibility, `Assigned`:
a standing assignment) and `originRoleAssignmentId` (the role assignment it is). `$filter=atScope()` keeps the
instances at or above the scope (as for role assignments). The sandbox checks the type's own
read action (`Microsoft.Authorization/roleEligibilityScheduleInstances/read`, "Gets the role eligibility schedule
instances at given scope", Microsoft Learn "Azure permissions for Identity"); Azure/azure-powershell src/Resources/
Authorization.Autorest/examples/Get-AzRoleEligibilityScheduleInstance.md says `roleAssignments/read` at the scope is
what Azure asks for (# unverified which of the two ARM checks).
Instances are seeded by scenarios (`add_instance`); the API never writes them (requests do, in Azure).
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sandbox.arm import ArmError, Call, ResourceType, register
from sandbox.providers.locks import relation
from sandbox.scenarios import assign

if TYPE_CHECKING:
    from sandbox.server import Sandbox

PIM_API = ("2020-10-01", "2020-10-01-preview", "2022-04-01-preview")
ELIGIBLE = "Microsoft.Authorization/roleEligibilityScheduleInstances"
ACTIVE = "Microsoft.Authorization/roleAssignmentScheduleInstances"


def add_instance(state: Any, kind: str, scope: str, principal: Any, role_guid: str, **props: Any) -> dict[str, Any]:
    """A schedule instance written straight into state (`kind`: ELIGIBLE or ACTIVE)."""
    name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}|{scope}|{principal.object_id}|{role_guid}".lower()))
    body = {
        "id": f"{scope.rstrip('/')}/providers/{kind}/{name}",
        "name": name,
        "type": kind,
        "properties": {
            "scope": scope,
            "roleDefinitionId": f"/subscriptions/{scope.split('/')[2]}/providers/Microsoft.Authorization/"
            f"roleDefinitions/{role_guid}",
            "principalId": principal.object_id,
            "principalType": principal.kind,
            "status": "Provisioned",
            "startDateTime": state.clock.iso(),
            "endDateTime": None,
            "memberType": "Direct",
            "createdOn": state.clock.iso(),
            **props,
        },
    }
    return state.put(body)


KV_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
VAULT_ADMINS = SimpleNamespace(object_id="5f0a8c1e-6b2d-4e7a-9c3f-0d1e2f3a4b5c", kind="Group")  # a directory group


def _estate(sb: Sandbox, name: str) -> None:
    """The estate's access review findings beyond the administrator's Owner: the vault owner (a user) holds Key
    Vault Secrets User on the whole of rg-app-weu; PIM is in use (the vault owner is eligible for Key Vault
    Administrator on the subscription) while a group holds Key Vault Administrator on kv-weu-disks standing."""
    if name != "estate" or not sb.state.subscriptions:
        return
    sub = f"/subscriptions/{next(iter(sb.state.subscriptions))}"
    owner = sb.directory.named("vault-owner")
    assign(sb, f"{sub}/resourceGroups/rg-app-weu", owner, KV_SECRETS_USER)
    add_instance(sb.state, ELIGIBLE, sub, owner, KV_ADMINISTRATOR)
    disks = f"{sub}/resourceGroups/rg-keys-weu/providers/Microsoft.KeyVault/vaults/kv-weu-disks"
    standing = assign(sb, disks, VAULT_ADMINS, KV_ADMINISTRATOR)
    add_instance(sb.state, ACTIVE, disks, VAULT_ADMINS, KV_ADMINISTRATOR, assignmentType="Assigned",
                 originRoleAssignmentId=standing["id"])  # fmt: skip


def install(sb: Sandbox) -> None:
    sb.hooks.after_seed(_estate)


class _Instances(ResourceType):
    api_versions = PIM_API
    extension = True

    def list(self, call: Call) -> list[dict[str, Any]]:
        raw = call.query.get("$filter") or ""
        flt = raw.replace(" ", "").lower()
        if flt not in ("", "atscope()"):  # assignedTo() / asTarget() exist in Azure; the sandbox does not serve them
            raise ArmError(400, "InvalidFilterInQueryString", f"The filter '{raw}' is not valid.")
        wanted = {"at", "above"} if flt == "atscope()" else {"at", "above", "below"}
        return [
            self.view(call, b)
            for b in call.state.of_type(self.type)
            if relation(b["properties"]["scope"], call.path.parent) in wanted
        ]


@register
class RoleEligibilityScheduleInstances(_Instances):
    type = ELIGIBLE


@register
class RoleAssignmentScheduleInstances(_Instances):
    type = ACTIVE
