"""The hostile resource owner of the security tests: the sandbox's `intruder` principal, Contributor on its own
resource group only, granted as the admin through AuthorizationManagementClient."""

from __future__ import annotations

import uuid
from typing import Any

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.resource.resources import ResourceManagementClient

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def contributor_on_own_group(sandbox: Any, group: str = "rg-intruder") -> Any:
    """Make `group` (westeurope) and make the intruder Contributor there; the intruder principal."""
    sandbox.client(ResourceManagementClient).resource_groups.create_or_update(group, {"location": "westeurope"})
    intruder = sandbox.principal("intruder")
    sandbox.client(AuthorizationManagementClient).role_assignments.create(
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/{group}",
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}",
            principal_id=intruder.object_id,
            principal_type=intruder.kind,
        ),
    )
    return intruder
