"""The policy loader: `policies/<id>/policy.yaml` files and unmodified Azure Policy definition JSON files.

    policies = load_policies(Path("policies"))     # every policy, or PolicyLoadError listing every problem
    policies.refused                               # the Azure definitions that did not load, each with its problems
    policy.noncompliant(resource)                  # the policy's `if` holds for this ARM body

Everything is validated at load: the YAML against `SCHEMA`, the id against the folder name, the fix against the
fix registry, the condition by compiling it. Problems in Cryptward's own files (policy.yaml, cryptward.yaml,
assignment.json) are collected over all files and raised together: nothing is returned from a folder that holds one
bad policy. An Azure definition that cannot load (a feature Cryptward does not support, a parameter without a value)
is refused alone: it is listed in `refused` with every problem in it, and the others run. The format is described
in policies/README.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from remediations.errors import ConditionError, PolicyLoadError, Problem
from remediations.policy import aliases
from remediations.policy.conditions import Condition, compile_condition
from remediations.policy.definitions import ASSIGNMENT_FILE, load_definition
from remediations.policy.model import FixRef, Policies, Policy, References, Refused
from remediations.policy.schema import SCHEMA, schema_problems

POLICY_FILE = "policy.yaml"
DEFINITION_FILE = "definition.json"


_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.DOTALL)


def first_sentence(text: str) -> str:
    """A policy's reasoning in one sentence: the first sentence of its description (notices and reports use it)."""
    text = " ".join(text.split())
    m = _SENTENCE.match(text)
    return m.group(1) if m else text


def load_policies(folder: Path, *, fixes: Collection[str] | None = None) -> Policies:
    """Load every policy under `folder`, sorted by id. Raises `PolicyLoadError` listing all problems in Cryptward's
    own files; the Azure definitions that cannot load are in the result's `refused`.

    `fixes` are the valid fix names; by default the names registered in `remediations.fixes`.
    """
    if fixes is None:
        from remediations import fixes as registry

        fixes = registry.names()
    problems: list[Problem] = []
    found: list[Policy] = []
    refused: list[Refused] = []
    for file, policy_id in _policy_files(folder, problems):
        if file.name == POLICY_FILE:
            policy = _load_yaml(file, policy_id, fixes, problems)
        else:
            refusals: list[Problem] = []
            policy = load_definition(file, policy_id, fixes, problems, refusals, _read)
            if refusals:
                refused.append(Refused(policy_id, file, tuple(refusals)))
        if policy is not None:
            found.append(policy)
    seen: dict[str, Path] = {}
    for policy in found:
        if policy.id in seen:
            problems.append(Problem(policy.source, "id", f"id {policy.id!r} is also used by {seen[policy.id]}"))
        seen.setdefault(policy.id, policy.source)
    if problems:
        raise PolicyLoadError(problems)
    return Policies(sorted(found, key=lambda p: p.id), refused)


def _policy_files(folder: Path, problems: list[Problem]) -> list[tuple[Path, str]]:
    if not folder.is_dir():
        problems.append(Problem(folder, "", "the policies folder does not exist"))
        return []
    files = [(f, f.stem) for f in sorted(folder.glob("*.json"))]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        jsons = [f for f in sorted(sub.glob("*.json")) if f.name != ASSIGNMENT_FILE]
        inside = [(f, sub.name if f.name == DEFINITION_FILE else f.stem) for f in jsons]
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


__all__ = ["SCHEMA", "FixRef", "Policies", "Policy", "References", "Refused", "first_sentence", "load_policies"]
