"""The policy loader: `policies/<id>/policy.yaml` files and unmodified Azure Policy definition JSON files.

    policies = load_policies(Path("policies"))     # every policy, or PolicyLoadError listing every problem
    policy.noncompliant(resource)                  # the policy's `if` holds for this ARM body

Everything is validated at load: the YAML against `SCHEMA`, the id against the folder name, the fix against the
fix registry, the condition by compiling it. Problems are collected over all files and raised together; nothing is
returned from a folder that holds one bad policy. The format is described in policies/README.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from remediations.errors import ConditionError, PolicyLoadError, Problem
from remediations.policy import aliases
from remediations.policy.conditions import Condition, compile_condition
from remediations.policy.expressions import compile_value
from remediations.policy.fields import Scope
from remediations.policy.schema import SCHEMA, is_guid, schema_problems

POLICY_FILE = "policy.yaml"
DEFINITION_FILE = "definition.json"
AZURE_EFFECTS = {"audit": "Audit", "deny": "Deny", "auditifnotexists": "AuditIfNotExists"}
_AZURE_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict, "float": (int, float)}


@dataclass(frozen=True)
class FixRef:
    """The fix a policy applies: a registered fix name and its parameters."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class References:
    seed: str | None = None
    cis: str | None = None
    azure_policy: str | None = None


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy. `condition` holding means the resource is non-compliant."""

    id: str
    title: str
    description: str
    severity: str
    resource_type: str | None  # None: an Azure definition whose `if` does not pin one type
    condition: Condition
    parameters: Mapping[str, Any]
    fix: FixRef | None
    mode: str
    irreversible: bool
    references: References
    source: Path
    effect: str | None = None  # an Azure definition's effect (Audit, Deny, AuditIfNotExists)
    related: Mapping[str, Any] | None = None  # AuditIfNotExists `then.details`: not evaluated by this module
    immutable: bool = False  # the checked property cannot be changed once the resource exists

    def applies_to(self, resource: Mapping[str, Any]) -> bool:
        kind = resource.get("type")
        return self.resource_type is None or (isinstance(kind, str) and kind.lower() == self.resource_type.lower())

    def noncompliant(self, resource: Mapping[str, Any], *, now: datetime | None = None) -> bool:
        """True when the policy applies to `resource` and its `if` condition holds."""
        return self.applies_to(resource) and self.condition.matches(resource, now=now)


_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.DOTALL)


def first_sentence(text: str) -> str:
    """A policy's reasoning in one sentence: the first sentence of its description (notices and reports use it)."""
    text = " ".join(text.split())
    m = _SENTENCE.match(text)
    return m.group(1) if m else text


def load_policies(folder: Path, *, fixes: Collection[str] | None = None) -> list[Policy]:
    """Load every policy under `folder`, sorted by id. Raises `PolicyLoadError` listing all problems.

    `fixes` are the valid fix names; by default the names registered in `remediations.fixes`.
    """
    if fixes is None:
        from remediations import fixes as registry

        fixes = registry.names()
    problems: list[Problem] = []
    found: list[Policy] = []
    for file, policy_id in _policy_files(folder, problems):
        loader = _load_yaml if file.name == POLICY_FILE else _load_definition
        policy = loader(file, policy_id, fixes, problems)
        if policy is not None:
            found.append(policy)
    seen: dict[str, Path] = {}
    for policy in found:
        if policy.id in seen:
            problems.append(Problem(policy.source, "id", f"id {policy.id!r} is also used by {seen[policy.id]}"))
        seen.setdefault(policy.id, policy.source)
    if problems:
        raise PolicyLoadError(problems)
    return sorted(found, key=lambda p: p.id)


def _policy_files(folder: Path, problems: list[Problem]) -> list[tuple[Path, str]]:
    if not folder.is_dir():
        problems.append(Problem(folder, "", "the policies folder does not exist"))
        return []
    files = [(f, f.stem) for f in sorted(folder.glob("*.json"))]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        inside = [(f, sub.name if f.name == DEFINITION_FILE else f.stem) for f in sorted(sub.glob("*.json"))]
        if (sub / POLICY_FILE).is_file():
            inside.insert(0, (sub / POLICY_FILE, sub.name))
        if not inside:
            problems.append(Problem(sub, "", f"holds no {POLICY_FILE} and no Azure Policy definition JSON"))
        files.extend(inside)
    return files


def _read(file: Path, problems: list[Problem]) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
        return yaml.safe_load(text) if file.suffix == ".yaml" else json.loads(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        problems.append(Problem(file, "", f"cannot be read: {e}"))
        return None


def _load_yaml(file: Path, policy_id: str, fixes: Collection[str], problems: list[Problem]) -> Policy | None:
    doc = _read(file, problems)
    if doc is None:
        return None
    before = len(problems)
    problems.extend(Problem(file, *p) for p in schema_problems(doc))
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("id"), str) and doc["id"] != policy_id:
        problems.append(Problem(file, "id", f"id {doc['id']!r} must equal its folder name {policy_id!r}"))
    params = _parameters(doc.get("parameters"), "parameters", file, problems, _YAML_TYPES, schema_checked=True)
    params_ok = not any(p.field.startswith("parameters") for p in problems[before:])
    fix = doc.get("fix")
    if isinstance(fix, dict) and isinstance(fix.get("name"), str) and fix["name"] not in fixes:
        none = "" if fixes else " (no fix is registered)"
        problems.append(Problem(file, "fix.name", f"unknown fix {fix['name']!r}{none}", tuple(sorted(fixes))))
    resource_type = doc.get("resourceType") if aliases.is_resource_type(str(doc.get("resourceType"))) else None
    # A condition reads the parameters: with one of them wrong, its errors would only echo that one.
    condition = _condition(doc.get("if"), params, resource_type, "if", file, problems) if params_ok else None
    if condition is None or len(problems) > before:
        return None
    refs = doc["references"]
    return Policy(
        id=doc["id"],
        title=doc["title"],
        description=doc["description"],
        severity=doc["severity"],
        resource_type=resource_type,
        condition=condition,
        parameters=params,
        fix=FixRef(fix["name"], fix.get("parameters") or {}) if fix else None,
        mode=doc["mode"],
        irreversible=doc.get("irreversible", False),
        references=References(refs["seed"], refs["cis"], refs["azurePolicy"]),
        source=file,
        immutable=doc.get("immutable", False),
    )


_YAML_TYPES = {"String": str, "Integer": int, "Boolean": bool, "Array": list, "Object": dict}


def _parameters(
    specs: Any, path: str, file: Path, problems: list[Problem], types: Mapping[str, Any], *, schema_checked: bool
) -> dict[str, Any]:
    """Parameter name -> default value, checking each default against its declared type and allowed values.

    With `schema_checked`, a missing default or an unknown type was already reported by the schema."""
    values: dict[str, Any] = {}
    if not isinstance(specs, dict):
        return values
    for name, spec in specs.items():
        if not isinstance(spec, dict):
            continue
        where = f"{path}.{name}"
        declared = next((t for t in types if t.lower() == str(spec.get("type")).lower()), None)
        if declared is None:
            if not schema_checked:
                problems.append(Problem(file, f"{where}.type", f"unknown type {spec.get('type')!r}", tuple(types)))
            continue
        if "defaultValue" not in spec:
            if not schema_checked:
                problems.append(Problem(file, where, "needs a defaultValue: Cryptward has no assignment to supply one"))
            continue
        default = spec["defaultValue"]
        wanted = types[declared]
        if not isinstance(default, wanted) or (isinstance(default, bool) and wanted is not bool):
            problems.append(Problem(file, f"{where}.defaultValue", f"{default!r} is not of type {declared}"))
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list) and default not in allowed and not isinstance(default, list):
            problems.append(
                Problem(file, f"{where}.defaultValue", f"{default!r} is not allowed", tuple(map(str, allowed)))
            )
        values[name] = default
    return values


def _condition(
    node: Any, params: Mapping[str, Any], resource_type: str | None, path: str, file: Path, problems: list[Problem]
) -> Condition | None:
    if node is None:
        return None
    try:
        return compile_condition(node, parameters=params, resource_type=resource_type, path=path)
    except ConditionError as e:
        problems.append(Problem(file, e.path, e.message, e.options))
        return None


def _load_definition(file: Path, policy_id: str, fixes: Collection[str], problems: list[Problem]) -> Policy | None:
    """An Azure Policy definition, as exported or as in Azure/azure-policy: always loaded in audit mode."""
    doc = _read(file, problems)
    if doc is None:
        return None
    props = doc.get("properties", doc) if isinstance(doc, dict) else None
    base = "properties." if isinstance(doc, dict) and "properties" in doc else ""
    rule = props.get("policyRule") if isinstance(props, dict) else None
    if not isinstance(props, dict) or not isinstance(rule, dict) or not isinstance(rule.get("then"), dict):
        problems.append(Problem(file, f"{base}policyRule", "not an Azure Policy definition (needs policyRule if/then)"))
        return None
    before = len(problems)
    params = _parameters(
        props.get("parameters"), f"{base}parameters", file, problems, _AZURE_TYPES, schema_checked=False
    )
    if len(problems) > before:
        return None
    effect = _effect(rule["then"].get("effect"), params, f"{base}policyRule.then.effect", file, problems)
    condition = _condition(rule.get("if"), params, None, f"{base}policyRule.if", file, problems)
    if rule.get("if") is None:
        problems.append(Problem(file, f"{base}policyRule.if", "missing"))
    if condition is None or effect is None or len(problems) > before:
        return None
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    return Policy(
        id=policy_id,
        title=str(props.get("displayName") or policy_id),
        description=str(props.get("description") or ""),
        severity="medium",
        resource_type=_pinned_type(rule["if"]),
        condition=condition,
        parameters=params,
        fix=None,
        mode="audit",
        irreversible=False,
        references=References(azure_policy=name if name and is_guid(name) else None),
        source=file,
        effect=effect,
        related=rule["then"].get("details") if effect == "AuditIfNotExists" else None,
    )


def _effect(raw: Any, params: Mapping[str, Any], path: str, file: Path, problems: list[Problem]) -> str | None:
    scope = Scope({k.lower(): (k, v) for k, v in params.items()})
    try:
        value = compile_value(raw, scope, path)
    except ConditionError as e:
        problems.append(Problem(file, e.path, e.message, e.options))
        return None
    effect = AZURE_EFFECTS.get(str(value.value).lower()) if value.const else None
    if effect is None:
        problems.append(Problem(file, path, f"effect {value.value!r} is not supported", tuple(AZURE_EFFECTS.values())))
    return effect


def _pinned_type(node: Any) -> str | None:
    """The resource type an `if` requires with `field: type, equals: ...` at its top or in its top-level allOf."""
    candidates = [node, *(node.get("allOf") or [])] if isinstance(node, dict) else []
    for cond in candidates:
        pins = isinstance(cond, dict) and str(cond.get("field", "")).lower() == "type"
        if pins and isinstance(cond.get("equals"), str):
            return next((t for t in aliases.RESOURCE_TYPES if t.lower() == cond["equals"].lower()), cond["equals"])
    return None


__all__ = ["SCHEMA", "FixRef", "Policy", "References", "first_sentence", "load_policies"]
