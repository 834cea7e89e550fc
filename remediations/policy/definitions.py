"""Unmodified Azure Policy definitions, with their optional assignment and Cryptward settings, into `Policy` objects.

    policies/<id>/definition.json   the definition, exactly as Azure has it (built-in or custom)
    policies/<id>/assignment.json   optional: an assignment body as `az policy assignment show` prints it
    policies/<id>/cryptward.yaml    optional: Cryptward's own settings (mode, fix, severity, references)

Problems in the definition refuse that definition only (the loader reports it and runs the others); problems in the
two files the operator writes are errors, as in a policy.yaml. Semantics: "Azure Policy definition structure basics"
(mode, parameters) and "policy rule" (effects), https://learn.microsoft.com/azure/governance/policy/concepts/.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from remediations.errors import ConditionError, Problem
from remediations.policy import aliases, assignments
from remediations.policy.conditions import Condition, compile_condition
from remediations.policy.existence import compile_existence
from remediations.policy.expressions import compile_value
from remediations.policy.fields import Scope, compile_field, tag_name
from remediations.policy.model import FixRef, Modify, Operation, Policy, References
from remediations.policy.schema import is_guid, settings_problems

ASSIGNMENT_FILE = "assignment.json"
SETTINGS_FILE = "cryptward.yaml"
# Effect (lower-cased) -> Azure's spelling. Deny is reported (Cryptward cannot block a request); AuditIfNotExists and
# DeployIfNotExists evaluate their `if` and their existence check (`then.details`, onto `Policy.existence`); Modify
# evaluates its `if` and validates its operations; Disabled loads and evaluates nothing.
EFFECTS = {e.lower(): e for e in ("Audit", "Deny", "AuditIfNotExists", "DeployIfNotExists", "Modify", "Disabled")}
UNSUPPORTED_EFFECTS = {
    "append": "Append adds fields to a request; Cryptward sees no requests",
    "denyaction": "DenyAction blocks delete requests; Cryptward sees no requests",
    "manual": "Manual compliance is attested by people, not evaluated",
}
AZURE_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "array": list,
    "object": dict,
    "float": (int, float),
}
MODIFY_OPERATIONS = {"addorreplace": "addOrReplace", "add": "add", "remove": "remove"}
CONFLICT_EFFECTS = ("audit", "deny", "disabled")


def load_definition(
    file: Path,
    policy_id: str,
    fixes: Collection[str],
    problems: list[Problem],
    refusals: list[Problem],
    read: Any,
) -> Policy | None:
    """The definition in `file`, shaped by the assignment and settings beside it (when `file` is definition.json).
    Problems of the definition go to `refusals`, those of the operator's own files to `problems`."""
    doc = read(file, refusals)
    if doc is None:
        return None
    props = doc.get("properties", doc) if isinstance(doc, dict) else None
    base = "properties." if isinstance(doc, dict) and "properties" in doc else ""
    rule = props.get("policyRule") if isinstance(props, dict) else None
    if not isinstance(props, dict) or not isinstance(rule, dict) or not isinstance(rule.get("then"), dict):
        refusals.append(Problem(file, f"{base}policyRule", "not an Azure Policy definition (needs policyRule if/then)"))
        return None
    folder_files = file.name == "definition.json"
    assignment = _assignment(file.parent / ASSIGNMENT_FILE, read, problems) if folder_files else None
    settings = _settings(file.parent / SETTINGS_FILE, read, fixes, problems) if folder_files else None
    if assignment is None and folder_files and (file.parent / ASSIGNMENT_FILE).exists():
        return None
    if settings is None and folder_files and (file.parent / SETTINGS_FILE).exists():
        return None
    given = assignment.parameters if assignment else {}
    before = len(refusals)
    params = parameter_values(props.get("parameters"), f"{base}parameters", file, refusals, given)
    declared = {p.lower() for p in (props.get("parameters") or {})}
    for extra in (n for n in given if n.lower() not in declared):
        where = f"properties.parameters.{extra}"
        options = tuple(props.get("parameters") or ())
        problems.append(Problem(file.parent / ASSIGNMENT_FILE, where, "not a parameter of the definition", options))
    if len(refusals) > before:
        return None
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    info = {
        "assignmentId": assignment.id if assignment and assignment.id else "",
        "definitionId": doc.get("id") if isinstance(doc.get("id"), str) else "",
        "setDefinitionId": "",
        "definitionReferenceId": "",
    }
    scope = Scope({k.lower(): (k, v) for k, v in params.items()}, policy=info)
    effect = _effect(rule["then"].get("effect"), scope, f"{base}policyRule.then.effect", file, refusals)
    if effect is not None and assignment and assignment.effect is not None:
        allowed = _effect_allowed(rule["then"].get("effect"), props.get("parameters"))
        effect = _override(assignment.effect, allowed, file.parent / ASSIGNMENT_FILE, problems)
    mode = _mode(props.get("mode"), f"{base}mode", file, refusals)
    condition = _condition(rule.get("if"), scope, f"{base}policyRule.if", file, refusals)
    if rule.get("if") is None:
        refusals.append(Problem(file, f"{base}policyRule.if", "missing"))
    details = rule["then"].get("details")
    modify = existence = None
    if effect == "Modify":
        modify = _modify(details, scope, f"{base}policyRule.then.details", file, refusals)
    if effect in ("AuditIfNotExists", "DeployIfNotExists"):
        try:
            existence = compile_existence(details, scope, f"{base}policyRule.then.details")
        except ConditionError as e:
            refusals.append(Problem(file, e.path, e.message, e.options))
    if condition is None or effect is None or mode is None or len(refusals) > before:
        return None
    own = settings or {}
    refs = own.get("references") or {}
    fix = own.get("fix")
    return Policy(
        id=policy_id,
        title=str(props.get("displayName") or policy_id),
        description=str(props.get("description") or ""),
        severity=own.get("severity", "medium"),
        resource_type=_pinned_type(rule["if"]),
        condition=condition,
        parameters=params,
        fix=FixRef(fix["name"], fix.get("parameters") or {}) if fix else None,
        mode=own.get("mode", "audit") if (assignment is None or assignment.enforced) else "audit",
        irreversible=own.get("irreversible", False),
        references=References(refs.get("seed"), refs.get("cis"), name if name and is_guid(name) else None),
        source=file,
        effect=effect,
        related=details if effect in ("AuditIfNotExists", "DeployIfNotExists") else None,
        immutable=own.get("immutable", False),
        azure_mode=mode,
        not_scopes=tuple(s.lower() for s in assignment.not_scopes) if assignment else (),
        enforced=assignment.enforced if assignment else True,
        modify=modify,
        message=assignment.message if assignment else None,
        existence=existence,
    )


def _assignment(file: Path, read: Any, problems: list[Problem]) -> assignments.Assignment | None:
    if not file.exists():
        return assignments.Assignment()
    doc = read(file, problems)
    if doc is None:
        return None
    found = [Problem(file, *p) for p in assignments.problems(doc)]
    problems.extend(found)
    return None if found else assignments.read(doc)


def _settings(file: Path, read: Any, fixes: Collection[str], problems: list[Problem]) -> dict[str, Any] | None:
    if not file.exists():
        return {}
    doc = read(file, problems)
    if doc is None:
        return None
    found = [Problem(file, *p) for p in settings_problems(doc)]
    fix = doc.get("fix") if isinstance(doc, dict) else None
    if isinstance(fix, dict) and isinstance(fix.get("name"), str) and fix["name"] not in fixes:
        none = "" if fixes else " (no fix is registered)"
        found.append(Problem(file, "fix.name", f"unknown fix {fix['name']!r}{none}", tuple(sorted(fixes))))
    problems.extend(found)
    return None if found else dict(doc)


def parameter_values(
    specs: Any, path: str, file: Path, problems: list[Problem], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Parameter name -> the assignment's value, else the default; each checked against its type and allowed values."""
    values: dict[str, Any] = {}
    if not isinstance(specs, dict):
        return values
    supplied = {k.lower(): v for k, v in given.items()}
    for name, spec in specs.items():
        if not isinstance(spec, dict):
            continue
        where = f"{path}.{name}"
        declared = next((t for t in AZURE_TYPES if t == str(spec.get("type")).lower()), None)
        if declared is None:
            problems.append(Problem(file, f"{where}.type", f"unknown type {spec.get('type')!r}", tuple(AZURE_TYPES)))
            continue
        if name.lower() in supplied:
            value, field = supplied[name.lower()], "the assignment's value"
        elif "defaultValue" in spec:
            value, field = spec["defaultValue"], "defaultValue"
        else:
            message = f"needs a value: it has no defaultValue, and no {ASSIGNMENT_FILE} beside it gives one"
            problems.append(Problem(file, where, message))
            continue
        wanted = AZURE_TYPES[declared]
        if not isinstance(value, wanted) or (isinstance(value, bool) and wanted is not bool):
            problems.append(Problem(file, where, f"{field} {value!r} is not of type {spec.get('type')}"))
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list) and not _allowed(value, allowed):
            problems.append(Problem(file, where, f"{field} {value!r} is not allowed", tuple(map(str, allowed))))
        values[name] = value
    return values


def _allowed(value: Any, allowed: list[Any]) -> bool:
    """Azure compares string values case-insensitively (effect "audit" is allowed by ["Audit", ...])."""

    def norm(v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    if isinstance(value, list):
        return all(norm(v) in [norm(a) for a in allowed] for v in value) or value in allowed
    return norm(value) in [norm(a) for a in allowed]


def _effect(raw: Any, scope: Scope, path: str, file: Path, problems: list[Problem]) -> str | None:
    try:
        value = compile_value(raw, scope, path)
    except ConditionError as e:
        problems.append(Problem(file, e.path, e.message, e.options))
        return None
    text = str(value.value).lower() if value.const else ""
    if text in UNSUPPORTED_EFFECTS:
        problems.append(Problem(file, path, f"effect {value.value!r} is not supported: {UNSUPPORTED_EFFECTS[text]}"))
        return None
    effect = EFFECTS.get(text)
    if effect is None:
        problems.append(Problem(file, path, f"effect {value.value!r} is not supported", tuple(EFFECTS.values())))
    return effect


def _override(value: str, allowed: list[Any] | None, file: Path, problems: list[Problem]) -> str | None:
    """An effect override. Azure validates it "against the policy rule and parameter allowed value list" (Learn,
    "Azure Policy assignment structure", Overrides)."""
    effect = EFFECTS.get(value.lower())
    where = "properties.overrides"
    if effect is None:
        problems.append(Problem(file, where, f"effect {value!r} is not supported", tuple(EFFECTS.values())))
    elif allowed is not None and not _allowed(value, allowed):
        options = tuple(map(str, allowed))
        problems.append(
            Problem(file, where, f"effect {value!r} is not an allowed value of the effect parameter", options)
        )
        return None
    return effect


def _effect_allowed(raw: Any, specs: Any) -> list[Any] | None:
    """The allowedValues of the parameter a `[parameters('x')]` effect reads, if any."""
    m = re.fullmatch(r"\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]", str(raw), re.IGNORECASE)
    if not m or not isinstance(specs, dict):
        return None
    spec = next((v for k, v in specs.items() if k.lower() == m.group(1).lower()), None)
    allowed = spec.get("allowedValues") if isinstance(spec, dict) else None
    return allowed if isinstance(allowed, list) else None


def _mode(raw: Any, path: str, file: Path, problems: list[Problem]) -> str | None:
    text = str(raw or "Indexed")
    if text.lower() in ("indexed", "all"):
        return text.lower()
    provider = next((m for m in aliases.PROVIDER_MODES if m.lower() == text.lower()), None)
    if provider is not None and provider in aliases.DATA_PLANE_MODES:
        return provider.lower()
    if provider is not None:
        problems.append(
            Problem(
                file,
                path,
                f"mode {provider} (a data plane) is recognised; Cryptward does not evaluate that data plane yet",
            )
        )
    elif provider is None:
        problems.append(Problem(file, path, f"unknown mode {raw!r}", ("All", "Indexed", *aliases.PROVIDER_MODES)))
    return None


def _condition(node: Any, scope: Scope, path: str, file: Path, problems: list[Problem]) -> Condition | None:
    if node is None:
        return None
    try:
        return compile_condition(
            node, parameters={n: v for n, v in scope.parameters.values()}, path=path, policy=scope.policy
        )
    except ConditionError as e:
        problems.append(Problem(file, e.path, e.message, e.options))
        return None


def _modify(details: Any, scope: Scope, path: str, file: Path, problems: list[Problem]) -> Modify | None:
    """Modify's details, validated: operations on known aliases or tags, their values and conditions compiled."""
    if not isinstance(details, dict):
        problems.append(Problem(file, path, "Modify needs details with roleDefinitionIds and operations"))
        return None
    before = len(problems)
    keys = {k.lower(): k for k in details}
    roles = details.get(keys.get("roledefinitionids", ""))
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        problems.append(Problem(file, f"{path}.roleDefinitionIds", "needs a non-empty list of role definition ids"))
    conflict = str(details.get(keys.get("conflicteffect", ""), "audit")).lower()
    if conflict not in CONFLICT_EFFECTS:
        problems.append(Problem(file, f"{path}.conflictEffect", f"{conflict!r} is not valid", CONFLICT_EFFECTS))
    raw_ops = details.get(keys.get("operations", ""))
    if not isinstance(raw_ops, list) or not raw_ops:
        problems.append(Problem(file, f"{path}.operations", "needs a non-empty list of operations"))
        raw_ops = []
    operations = [
        op for i, raw in enumerate(raw_ops) if (op := _operation(raw, scope, f"{path}.operations[{i}]", file, problems))
    ]
    if len(problems) > before:
        return None
    return Modify(tuple(operations), tuple(roles or ()), conflict)


def _operation(raw: Any, scope: Scope, path: str, file: Path, problems: list[Problem]) -> Operation | None:
    if not isinstance(raw, dict):
        problems.append(Problem(file, path, f"an operation must be an object, got {raw!r}"))
        return None
    keys = {k.lower(): k for k in raw}
    unknown = set(keys) - {"operation", "field", "value", "condition"}
    if unknown:
        problems.append(
            Problem(file, f"{path}.{sorted(unknown)[0]}", "unknown key", ("operation", "field", "value", "condition"))
        )
        return None
    op = MODIFY_OPERATIONS.get(str(raw.get(keys.get("operation", ""))).lower())
    if op is None:
        problems.append(
            Problem(
                file,
                f"{path}.operation",
                f"{raw.get(keys.get('operation', ''))!r} is not an operation",
                tuple(MODIFY_OPERATIONS.values()),
            )
        )
        return None
    try:
        field_name = compile_value(raw.get(keys.get("field", "")), scope, f"{path}.field")
        name = field_name.value if field_name.const else None
        if not isinstance(name, str) or not name:
            raise ConditionError(f"{path}.field", "needs an alias or a tag name, known when the policy loads")
        if tag_name(name) is None and name.lower() != "tags":
            compile_field(name, scope, f"{path}.field")
        if op != "remove" and "value" not in keys:
            raise ConditionError(f"{path}.value", f"{op} needs a value")
        value = compile_value(raw[keys["value"]], scope, f"{path}.value") if "value" in keys else None
        condition = compile_value(raw[keys["condition"]], scope, f"{path}.condition") if "condition" in keys else None
    except ConditionError as e:
        problems.append(Problem(file, e.path, e.message, e.options))
        return None
    return Operation(op, name, value, condition)


def _pinned_type(node: Any) -> str | None:
    """The resource type an `if` requires with `field: type, equals: ...` at its top or in its top-level allOf."""
    candidates = [node, *(node.get("allOf") or [])] if isinstance(node, dict) else []
    for cond in candidates:
        pins = isinstance(cond, dict) and str(cond.get("field", "")).lower() == "type"
        if pins and isinstance(cond.get("equals"), str):
            return next((t for t in aliases.RESOURCE_TYPES if t.lower() == cond["equals"].lower()), cond["equals"])
    return None
