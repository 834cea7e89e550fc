"""`policies/<id>/assignment.json`: an Azure Policy assignment body, as `az policy assignment show` prints it.

Honoured: `properties.parameters.<name>.value`, `properties.notScopes`, `properties.enforcementMode` (`DoNotEnforce`:
reported, never fixed) and `properties.overrides` of kind `policyEffect`. Read and kept: `nonComplianceMessages`.
Anything Cryptward would have to ignore to run the assignment (resource selectors, an override with selectors, a
definitionVersion override) is an error, not silently dropped. Shape: "Azure Policy assignment structure",
https://learn.microsoft.com/azure/governance/policy/concepts/assignment-structure; the REST body:
Azure/azure-rest-api-specs specification/resources/resource-manager/Microsoft.Authorization/policy/stable/
2023-04-01/policyAssignments.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from remediations.policy.schema import explain

_SCOPE = (
    "^/(subscriptions/[^/]+(/resourceGroups/[^/]+(/providers/.+)?)?"
    "|providers/Microsoft.Management/managementGroups/[^/]+)$"
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["properties"],
    "properties": {
        "properties": {
            "type": "object",
            "properties": {
                "policyDefinitionId": {"type": "string"},
                "parameters": {
                    "type": ["object", "null"],
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["value"],
                        "properties": {"value": {}},
                    },
                },
                "notScopes": {"type": ["array", "null"], "items": {"type": "string", "pattern": _SCOPE}},
                "enforcementMode": {"enum": ["Default", "DoNotEnforce"]},
                "nonComplianceMessages": {
                    "type": ["array", "null"],
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["message"],
                        "properties": {
                            "message": {"type": "string", "minLength": 1},
                            "policyDefinitionReferenceId": {"type": ["string", "null"]},
                        },
                    },
                },
                "overrides": {
                    "type": ["array", "null"],
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["kind", "value"],
                        "properties": {
                            "kind": {"enum": ["policyEffect"]},
                            "value": {"type": "string"},
                            "selectors": {"type": "array", "maxItems": 0},
                        },
                    },
                },
                "resourceSelectors": {"type": ["array", "null"], "maxItems": 0},
            },
        }
    },
}

_VALIDATOR = Draft202012Validator(SCHEMA)


@dataclass(frozen=True)
class Assignment:
    """What Cryptward takes from an assignment."""

    name: str | None = None
    id: str | None = None
    definition_id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    not_scopes: tuple[str, ...] = ()
    enforced: bool = True
    effect: str | None = None  # an override of kind policyEffect
    message: str | None = None  # the non-compliance message


def problems(doc: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """(field, message, valid options) for every way `doc` is not an assignment Cryptward can honour."""
    found: list[tuple[str, str, tuple[str, ...]]] = []
    for error in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        where = list(error.absolute_path)
        if error.validator == "maxItems" and where[-1:] == ["resourceSelectors"]:
            found.append((".".join(map(str, where)), "resource selectors are not supported by Cryptward", ()))
        elif error.validator == "maxItems" and where[-1:] == ["selectors"]:
            path = "properties.overrides" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where[2:])
            found.append((path, "override selectors are not supported by Cryptward (it assigns one definition)", ()))
        elif error.validator == "enum" and where[-1:] == ["kind"]:
            found.append((_path(where), f"override kind {error.instance!r} is not supported", ("policyEffect",)))
        elif error.validator == "pattern":
            message = f"{error.instance!r} is not a subscription, resource group, resource or management group id"
            found.append((_path(where), message, ()))
        else:
            found.extend(explain(error))
    return found


def _path(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read(doc: Mapping[str, Any]) -> Assignment:
    """An assignment from a body that `problems` found valid."""
    props = doc.get("properties") or {}
    params = {name: spec["value"] for name, spec in (props.get("parameters") or {}).items()}
    effects = [o["value"] for o in props.get("overrides") or [] if o.get("kind") == "policyEffect"]
    messages = [
        m["message"] for m in props.get("nonComplianceMessages") or [] if not m.get("policyDefinitionReferenceId")
    ]
    return Assignment(
        name=doc.get("name") if isinstance(doc.get("name"), str) else None,
        id=doc.get("id") if isinstance(doc.get("id"), str) else None,
        definition_id=props.get("policyDefinitionId"),
        parameters=params,
        not_scopes=tuple(s.rstrip("/") for s in props.get("notScopes") or ()),
        enforced=props.get("enforcementMode", "Default") != "DoNotEnforce",
        effect=effects[-1] if effects else None,
        message=messages[0] if messages else None,
    )
