"""Azure Policy exemptions, honoured beside the exemption tag: which apply to each resource read.

An exemption (`Microsoft.Authorization/policyExemptions`, azure-rest-api-specs Microsoft.Authorization/policy
2022-07-01-preview) sits at a scope (subscription, resource group or resource) and exempts what is at or below it
from one policy assignment (`policyAssignmentId`), until `expiresOn` if set, as a `Waiver` or as `Mitigated`
(Learn, "Azure Policy exemption structure", https://learn.microsoft.com/azure/governance/policy/concepts/
exemption-structure). Cryptward lists each subscription's exemptions once (unfiltered: at, above and below it, as
the list operation says), reads each named assignment once for its `policyDefinitionId`, and gives every resource
read the exemptions over it as `cryptward.azureExemptions`: `{id, name, scope, category, expiresOn, assignmentId,
definition (the definition's GUID name), policySet (true when the assignment is of an initiative),
referenceIds}`. The planner exempts a Cryptward policy whose Azure Policy twin (`references.azurePolicy`) is that
definition. An exemption of an initiative's assignment is listed but exempts nothing here: which definitions its
reference ids name needs the initiative, which Cryptward does not read. When the list cannot be read, each resource
gets `cryptward.azureExemptionsUnreadable` (why) and the planner acts on none of its Azure-twinned policies; so too
for an exemption over it whose assignment cannot be read (its record says `unreadable`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from remediations.azure import Azure
from remediations.errors import AzureAccessError
from remediations.policy.model import Policy
from remediations.resources import ASSIGNMENTS_API, EXEMPTIONS_API, EXEMPTIONS_BLOCK, EXEMPTIONS_UNREADABLE, get

UNREADABLE = EXEMPTIONS_UNREADABLE
Progress = Callable[[str], None]
_MARK = "/providers/microsoft.authorization/policyexemptions/"


def wanted(policies: Iterable[Policy]) -> bool:
    """Whether any policy has an Azure Policy twin an exemption could name."""
    return any(p.references.azure_policy for p in policies)


def _within(resource_id: str, scope: str) -> bool:
    rid, scope = resource_id.lower().rstrip("/"), scope.lower().rstrip("/")
    return rid == scope or rid.startswith(scope + "/")


def record(exemption: Mapping[str, Any], assignment: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the planner needs of one exemption and its assignment (None: not read)."""
    eid = str(exemption.get("id", ""))
    definition = str(get(assignment or {}, "properties.policyDefinitionId") or "")
    return {
        "id": eid,
        "name": exemption.get("name"),
        "scope": eid[: eid.lower().rindex(_MARK)] if _MARK in eid.lower() else "",
        "category": get(exemption, "properties.exemptionCategory"),
        "expiresOn": get(exemption, "properties.expiresOn"),
        "assignmentId": get(exemption, "properties.policyAssignmentId"),
        "definition": definition.rsplit("/", 1)[-1] if definition else None,
        "policySet": "/policysetdefinitions/" in definition.lower(),
        "referenceIds": list(get(exemption, "properties.policyDefinitionReferenceIds") or []),
    }


def attach(azure: Azure, bodies: Mapping[str, dict[str, Any]], progress: Progress | None = None) -> int:
    """Give each body the exemptions over it; the number of HTTP reads made."""
    subs = sorted({rid.split("/")[2].lower() for rid in bodies if rid.lower().startswith("/subscriptions/")})
    found: dict[str, list[dict[str, Any]] | str] = {}
    assignments: dict[str, Mapping[str, Any] | str] = {}
    calls = 0
    for sub in subs:
        if progress:
            progress(f"policy exemptions in {sub}")
        try:
            calls += 1
            listed = [
                dict(e)
                for e in azure.list(
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/policyExemptions", EXEMPTIONS_API
                )
            ]
        except AzureAccessError as e:
            found[sub] = f"{e.code}: {e.message}".rstrip(": ")
            continue
        records = []
        for ex in listed:
            aid = str(get(ex, "properties.policyAssignmentId") or "")
            if aid and aid.lower() not in assignments:
                try:
                    calls += 1
                    assignments[aid.lower()] = dict(azure.get(aid, ASSIGNMENTS_API))
                except AzureAccessError as e:
                    assignments[aid.lower()] = f"{e.code}: {e.message}".rstrip(": ")
            got = assignments.get(aid.lower())
            if isinstance(got, str):  # which policy it exempts is unknown: the planner acts on no twinned policy
                records.append({**record(ex, None), "unreadable": f"its assignment could not be read: {got}"})
            else:
                records.append(record(ex, got))
        found[sub] = records
    for rid, body in bodies.items():
        sub = rid.split("/")[2].lower() if rid.lower().startswith("/subscriptions/") else ""
        listed_here = found.get(sub)
        if listed_here is None:
            continue
        block = body.setdefault("cryptward", {})
        if isinstance(listed_here, str):
            block[UNREADABLE] = listed_here
        else:
            block[EXEMPTIONS_BLOCK] = [r for r in listed_here if r["scope"] and _within(rid, r["scope"])]
    return calls


__all__ = ["UNREADABLE", "attach", "record", "wanted"]
