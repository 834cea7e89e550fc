"""Microsoft.Authorization/policyAssignments (minimal) and policyExemptions, at any scope.

Shapes: azure-rest-api-specs specification/resources/resource-manager/Microsoft.Authorization/policy/preview/
2022-07-01-preview (policyExemptions.json; examples createOrUpdatePolicyExemption.json,
listPolicyExemptionsForSubscription.json): an exemption is `{id, name, type, systemData, properties:
{policyAssignmentId, policyDefinitionReferenceIds?, exemptionCategory (Waiver | Mitigated), expiresOn?, displayName?,
description?, metadata?}}` at `{scope}/providers/Microsoft.Authorization/policyExemptions/{name}`, answered 201 on
create and 200 on update. An assignment keeps what it was given (`policyDefinitionId`, `displayName`,
`enforcementMode`, `parameters`, `notScopes`) with its `scope`.

List semantics (policyExemptions.json, PolicyExemptions_ListForResourceGroup/_ListForResource, `$filter`): without a
filter, the exemptions at the scope, above it and below it; `atScope()`: at the scope and above it;
`atExactScope()`: at the scope only; `excludeExpired()`: not expired (may be combined with one of the others, joined
by `and`; combinations beyond that are refused # unverified: the error code); `policyAssignmentId eq '{id}'`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sandbox.arm import Answer, ArmError, Call, ResourceType, register
from sandbox.providers.locks import relation

EXEMPTION_API = ("2020-07-01-preview", "2022-07-01-preview", "2024-12-01-preview")
ASSIGNMENT_API = ("2021-06-01", "2022-06-01", "2023-04-01", "2024-04-01", "2024-05-01", "2025-01-01")
CATEGORIES = ("Waiver", "Mitigated")
_EXEMPTIONS = "/providers/Microsoft.Authorization/policyExemptions/"
_ASSIGNMENTS = "/providers/Microsoft.Authorization/policyAssignments/"
_ASSIGNMENT_ID = re.compile(r"eq\s+'([^']+)'", re.IGNORECASE)


def _scope(resource_id: str, marker: str) -> str:
    return resource_id[: resource_id.lower().rindex(marker.lower())] or "/"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _expired(exemption: dict[str, Any]) -> bool:
    expires = (exemption.get("properties") or {}).get("expiresOn")
    if not expires:
        return False
    return datetime.fromisoformat(str(expires).replace("Z", "+00:00")) <= datetime.now(UTC)


@register
class PolicyAssignments(ResourceType):
    type = "Microsoft.Authorization/policyAssignments"
    api_versions = ASSIGNMENT_API
    extension = True

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise ArmError(
                404, "PolicyAssignmentNotFound", f"The policy assignment '{call.path.name}' is not found."
            )  # unverified: message wording
        return self.view(call, body)

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body if isinstance(call.body, dict) else {}
        props = req.get("properties") or {}
        if not props.get("policyDefinitionId"):
            raise ArmError(400, "InvalidRequestContent", "The policy assignment must have a policyDefinitionId.")
        keep = ("policyDefinitionId", "displayName", "description", "enforcementMode", "parameters", "notScopes")
        stored_props = {k: props[k] for k in keep if k in props}
        stored_props.setdefault("enforcementMode", "Default")
        stored_props["scope"] = call.path.parent
        stored = {
            "id": existing["id"] if existing else f"{call.path.parent}{_ASSIGNMENTS}{call.path.name}",
            "name": call.path.name,
            "type": self.type,
            "properties": stored_props,
        }
        call.state.put(stored)
        return Answer(200 if existing else 201, self.view(call, stored))

    def list(self, call: Call) -> list[dict[str, Any]]:
        target = call.path.parent
        return [
            self.view(call, a)
            for a in call.state.of_type(self.type)
            if relation(_scope(a["id"], _ASSIGNMENTS), target) in ("at", "above")
        ]


@register
class PolicyExemptions(ResourceType):
    type = "Microsoft.Authorization/policyExemptions"
    api_versions = EXEMPTION_API
    extension = True

    def read(self, call: Call) -> dict[str, Any]:
        body = call.state.get(call.path.id)
        if body is None:
            raise ArmError(404, "PolicyExemptionNotFound", f"The policy exemption '{call.path.name}' is not found.")
        return self.view(call, body)

    def put(self, call: Call, existing: dict[str, Any] | None) -> Answer:
        req = call.body if isinstance(call.body, dict) else {}
        props = req.get("properties") or {}
        assignment = props.get("policyAssignmentId")
        if not assignment:
            raise ArmError(400, "InvalidRequestContent", "The policy exemption must have a policyAssignmentId.")
        category = next((c for c in CATEGORIES if c.lower() == str(props.get("exemptionCategory", "")).lower()), None)
        if category is None:
            raise ArmError(
                400,
                "InvalidRequestContent",  # unverified: the code; the values are the spec's enum
                f"The exemption category '{props.get('exemptionCategory')}' is not valid. "
                f"Allowed values: {', '.join(CATEGORIES)}.",
            )
        if call.state.get(assignment) is None:
            raise ArmError(
                404, "PolicyAssignmentNotFound", f"The policy assignment '{assignment}' is not found."
            )  # unverified: Azure checks the assignment exists (assignmentScopeValidation Default)
        keep = ("policyDefinitionReferenceIds", "expiresOn", "displayName", "description", "metadata")
        stored_props = {"policyAssignmentId": assignment, "exemptionCategory": category}
        stored_props |= {k: props[k] for k in keep if k in props}
        who = call.principal.upn or call.principal.object_id
        stamp = {
            "createdBy": who,
            "createdByType": "User" if call.principal.is_user else "Application",
            "createdAt": _now(),
        }
        stored = {
            "properties": stored_props,
            "systemData": (existing or {}).get("systemData") or stamp,
            "id": existing["id"] if existing else f"{call.path.parent}{_EXEMPTIONS}{call.path.name}",
            "type": self.type,
            "name": call.path.name,
        }
        call.state.put(stored)
        return Answer(200 if existing else 201, self.view(call, stored))

    def list(self, call: Call) -> list[dict[str, Any]]:
        target = call.path.parent
        wanted, exclude_expired, assignment = {"at", "above", "below"}, False, None
        for part in re.split(r"\s+and\s+", (call.query.get("$filter") or "").strip(), flags=re.IGNORECASE):
            term = part.replace(" ", "").lower()
            if not term:
                continue
            if term == "atscope()":
                wanted = {"at", "above"}
            elif term == "atexactscope()":
                wanted = {"at"}
            elif term == "excludeexpired()":
                exclude_expired = True
            elif term.startswith("policyassignmentid") and _ASSIGNMENT_ID.search(part):
                assignment = _ASSIGNMENT_ID.search(part).group(1).lower()  # type: ignore[union-attr]
            else:
                raise ArmError(
                    400, "InvalidFilterInQueryString", f"The filter '{call.query.get('$filter')}' is not valid."
                )  # unverified: code and message
        out = []
        for ex in call.state.of_type(self.type):
            if relation(_scope(ex["id"], _EXEMPTIONS), target) not in wanted:
                continue
            if exclude_expired and _expired(ex):
                continue
            if assignment and str(ex["properties"]["policyAssignmentId"]).lower() != assignment:
                continue
            out.append(self.view(call, ex))
        return out
