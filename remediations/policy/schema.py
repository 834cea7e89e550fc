"""The JSON schema of `policies/<id>/policy.yaml`, and its errors turned into problems that list the valid options."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from remediations.policy.aliases import RESOURCE_TYPES

SEVERITIES = ("low", "medium", "high", "critical")
MODES = ("audit", "remediate", "approve")
PARAMETER_TYPES = ("String", "Integer", "Boolean", "Array", "Object")
GUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
POLICY_ID = "^[a-z0-9][a-z0-9-]*$"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "description", "severity", "resourceType", "if", "fix", "mode", "references"],
    "properties": {
        "id": {"type": "string", "pattern": POLICY_ID},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 1},
        "severity": {"enum": list(SEVERITIES)},
        "resourceType": {"enum": list(RESOURCE_TYPES)},
        "if": {"type": "object"},
        "parameters": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "defaultValue"],
                "properties": {
                    "type": {"enum": list(PARAMETER_TYPES)},
                    "defaultValue": {},
                    "allowedValues": {"type": "array", "minItems": 1},
                    "description": {"type": "string"},
                },
            },
        },
        "fix": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
        },
        "mode": {"enum": list(MODES)},
        "irreversible": {"type": "boolean"},
        "immutable": {"type": "boolean"},
        "references": {
            "type": "object",
            "additionalProperties": False,
            "required": ["seed", "cis", "azurePolicy"],
            "properties": {
                "seed": {"type": ["string", "null"]},
                "cis": {"type": ["string", "null"]},
                "azurePolicy": {"type": ["string", "null"], "pattern": GUID},
            },
        },
    },
}

_VALIDATOR = Draft202012Validator(SCHEMA)

# `policies/<id>/cryptward.yaml` beside an Azure definition: Cryptward's own settings for it (the definition and its
# assignment stay exactly as Azure has them).
SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "severity": SCHEMA["properties"]["severity"],
        "fix": SCHEMA["properties"]["fix"],
        "mode": SCHEMA["properties"]["mode"],
        "irreversible": {"type": "boolean"},
        "immutable": {"type": "boolean"},
        "references": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"seed": {"type": ["string", "null"]}, "cis": {"type": ["string", "null"]}},
        },
    },
}
_SETTINGS_VALIDATOR = Draft202012Validator(SETTINGS_SCHEMA)


def is_guid(value: str) -> bool:
    return re.fullmatch(GUID, value) is not None


def json_path(parts: Iterable[Any]) -> str:
    """('parameters', 'x', 'type') -> 'parameters.x.type'; list indexes become [i]."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_problems(doc: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """(field, message, valid options) for every way `doc` breaks `SCHEMA`."""
    found: list[tuple[str, str, tuple[str, ...]]] = []
    for error in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        found.extend(explain(error))
    return found


def settings_problems(doc: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """(field, message, valid options) for every way `doc` breaks `SETTINGS_SCHEMA`."""
    errors = sorted(_SETTINGS_VALIDATOR.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [found for error in errors for found in explain(error)]


def explain(error: ValidationError) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    where = json_path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = schema.get("properties", {})
        for key in error.instance:
            if key not in known:
                yield json_path([*error.absolute_path, key]), f"unknown field {key!r}", tuple(known)
    elif error.validator == "required":
        missing = [k for k in error.validator_value if isinstance(error.instance, dict) and k not in error.instance]
        for key in missing:
            yield json_path([*error.absolute_path, key]), "missing required field", ()
    elif error.validator == "enum":
        yield where, f"{error.instance!r} is not a valid value", tuple(map(str, error.validator_value))
    elif error.validator == "type":
        yield where, f"expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}", ()
    elif error.validator == "pattern" and error.validator_value == POLICY_ID:
        yield where, f"{error.instance!r} must be lower-case letters, digits and hyphens", ()
    elif error.validator == "pattern" and error.validator_value == GUID:
        yield where, f"{error.instance!r} must be a built-in policy definition GUID", ()
    else:
        yield where, error.message, ()
