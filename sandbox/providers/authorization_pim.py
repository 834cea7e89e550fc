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
from typing import Any

from sandbox.arm import ArmError, Call, ResourceType, register
from sandbox.providers.locks import relation

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
