"""Azure Policy `if` conditions over an ARM resource body: compiled once, evaluated many times, no I/O.

    condition = compile_condition(policy_rule["if"], parameters={"effect": "Audit"})
    condition.matches(resource)   # True => the `if` holds => the resource is NON-compliant (the effect fires)

Semantics follow Azure Policy: keys are case-insensitive; string comparisons ignore case (except `match`/`notMatch`);
a condition on an `[*]` alias outside `count` must hold for every selected member (so it holds for none selected);
`count` counts the members for which `where` holds. Values of different types compare as Azure coerces them: `true`
equals `"True"`, `443` equals `"443"`. Ordering a number against a non-numeric string, or anything against a boolean,
raises `ConditionError` at evaluation, as Azure fails such an evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remediations.errors import ConditionError
from remediations.policy.expressions import Expr, compile_value, constant, is_expression
from remediations.policy.fields import Context, Frame, Many, Scope, array_prefixes, compile_field
from remediations.policy.operators import OPERATORS, Mismatch

_LOGICAL = ("allOf", "anyOf", "not")
_SUBJECTS = ("field", "value", "count")
_CANONICAL = {k.lower(): k for k in (*_LOGICAL, *_SUBJECTS, *OPERATORS)}

Test = Callable[[Context], bool]


@dataclass(frozen=True)
class Condition:
    """A compiled `if` condition. `fields` lists every field and alias it reads."""

    source: Mapping[str, Any]
    fields: frozenset[str]
    _test: Test
    conjuncts: tuple[Condition, ...] = ()  # a top-level `allOf`'s members, each compiled on its own

    def matches(
        self, resource: Mapping[str, Any], *, now: datetime | None = None, primary: Context | None = None
    ) -> bool:
        """True when the condition holds for `resource` (an ARM GET body): in Azure terms, non-compliant. `primary`:
        for an existence condition over a related resource, the evaluation of the resource the `if` matched."""
        return self._test(Context(resource, now, primary))

    def fails_without(
        self, resource: Mapping[str, Any], unknown: Callable[[str], bool], *, now: datetime | None = None
    ) -> bool:
        """True when the condition is false for `resource` whatever the fields `unknown` names hold: a member of
        its top-level `allOf` that reads none of them is false (Azure Policy's allOf is false when any member is).
        Lets a verdict stand when only what the other members read could not be read."""
        for part in self.conjuncts:
            if any(unknown(f) for f in part.fields):
                continue
            try:
                if not part.matches(resource, now=now):
                    return True
            except ConditionError:
                continue  # a member that cannot be evaluated decides nothing
        return False


def compile_condition(
    condition: Any,
    *,
    parameters: Mapping[str, Any] | None = None,
    resource_type: str | None = None,
    path: str = "if",
    policy: Mapping[str, Any] | None = None,
    related: bool = False,
) -> Condition:
    """Validate and compile an Azure Policy condition. Raises `ConditionError` naming the JSON path and options.

    `parameters` are the values `[parameters('x')]` returns; `resource_type`, when given, restricts aliases to it;
    `policy` is what `policy()` returns (assignment and definition ids); `related` compiles an existence condition
    (its `field` reads the related resource, its `[field()]` the resource the `if` matched).
    """
    params = {name.lower(): (name, value) for name, value in (parameters or {}).items()}
    scope = Scope(params, resource_type, policy=policy or {}, related=related)
    test = _compile(condition, scope, path)
    conjuncts: tuple[Condition, ...] = ()
    if isinstance(condition, dict) and len(condition) == 1 and str(next(iter(condition))).lower() == "allof":
        members = next(iter(condition.values()))
        if isinstance(members, list):
            parts = []
            for i, member in enumerate(members):
                part_scope = Scope(params, resource_type, policy=policy or {})
                part_test = _compile(member, part_scope, f"{path}.allOf[{i}]")
                parts.append(Condition(member, frozenset(part_scope.fields), part_test))
            conjuncts = tuple(parts)
    return Condition(condition, frozenset(scope.fields), test, conjuncts)


def _keys(node: Any, path: str) -> dict[str, str]:
    """Canonical key -> key as written. Rejects non-objects, unknown keys and keys repeated in another case."""
    if not isinstance(node, dict):
        raise ConditionError(path, f"expected a condition object, got {type(node).__name__} {node!r}")
    found: dict[str, str] = {}
    for key in node:
        canonical = _CANONICAL.get(str(key).lower())
        if canonical is None:
            raise ConditionError(f"{path}.{key}", f"unknown key {key!r}", (*_LOGICAL, *_SUBJECTS, *OPERATORS))
        if canonical in found:
            raise ConditionError(f"{path}.{key}", f"{canonical!r} is given twice")
        found[canonical] = key
    return found


def _compile(node: Any, scope: Scope, path: str) -> Test:
    keys = _keys(node, path)
    logical = [k for k in keys if k in _LOGICAL]
    if logical:
        if len(keys) != 1:
            others = ", ".join(k for k in keys if k != logical[0])
            raise ConditionError(path, f"{logical[0]!r} must be alone in its object, found also {others}")
        return _logical(logical[0], node[keys[logical[0]]], scope, f"{path}.{keys[logical[0]]}")
    subjects = [k for k in keys if k in _SUBJECTS]
    operators = [k for k in keys if k in OPERATORS]
    if len(subjects) != 1:
        raise ConditionError(path, f"a condition needs exactly one of field, value, count; found {subjects}", _SUBJECTS)
    if len(operators) != 1:
        raise ConditionError(path, f"a condition needs exactly one operator, found {operators}", tuple(OPERATORS))
    subject, op = subjects[0], operators[0]
    op_path = f"{path}.{keys[op]}"
    expected = _operand(op, node[keys[op]], scope, op_path)
    if subject == "count":
        return _count(node[keys[subject]], op, expected, scope, f"{path}.{keys[subject]}", op_path)
    if subject == "value":
        return _compare(compile_value(node[keys[subject]], scope, f"{path}.value").fn, op, expected, op_path)
    return _field(node[keys[subject]], op, expected, scope, f"{path}.{keys[subject]}", op_path)


def _logical(op: str, body: Any, scope: Scope, path: str) -> Test:
    if op == "not":
        inner = _compile(body, scope, path)
        return lambda ctx: not inner(ctx)
    if not isinstance(body, list) or not body:
        raise ConditionError(path, f"{op} needs a non-empty list of conditions, got {body!r}")
    parts = tuple(_compile(item, scope, f"{path}[{i}]") for i, item in enumerate(body))
    if op == "allOf":
        return lambda ctx: all(p(ctx) for p in parts)
    return lambda ctx: any(p(ctx) for p in parts)


def _operand(op: str, raw: Any, scope: Scope, path: str) -> Expr:
    """Compile the operator's operand; prepare it now (regexes, shape checks) when it is constant."""
    value = compile_value(raw, scope, path)
    if value.const:
        try:
            return constant(OPERATORS[op].prepare(value.value))
        except Mismatch as e:
            raise ConditionError(path, str(e)) from None
    return value


def _prepared(op: str, expected: Expr, path: str) -> Callable[[Context], Any]:
    if expected.const:
        prepared = expected.value
        return lambda _ctx: prepared
    prepare, fn = OPERATORS[op].prepare, expected.fn

    def dynamic(ctx: Context) -> Any:
        try:
            return prepare(fn(ctx))
        except Mismatch as e:
            raise ConditionError(path, str(e)) from None

    return dynamic


def _compare(subject: Callable[[Context], Any], op: str, expected: Expr, path: str) -> Test:
    check, operand = OPERATORS[op].test, _prepared(op, expected, path)

    def test(ctx: Context) -> bool:
        try:
            return check(subject(ctx), operand(ctx))
        except Mismatch as e:
            raise ConditionError(path, str(e)) from None

    return test


def _field(name: Any, op: str, expected: Expr, scope: Scope, path: str, op_path: str) -> Test:
    if is_expression(name):
        resolved = compile_value(name, scope, path)
        if not (resolved.const and isinstance(resolved.value, str)):
            raise ConditionError(path, "a field expression must resolve to a field name when the policy loads")
        name = resolved.value
    if not isinstance(name, str):
        raise ConditionError(path, f"field must be a string, got {name!r}")
    select = compile_field(name, scope, path).select
    if name.lower() == "location":
        expected = _location_operand(op, expected)
    check, operand = OPERATORS[op].test, _prepared(op, expected, op_path)

    def test(ctx: Context) -> bool:
        value, wanted = select(ctx), operand(ctx)
        try:
            if type(value) is Many:
                return all(check(v, wanted) for v in value)
            return check(value, wanted)
        except Mismatch as e:
            raise ConditionError(op_path, str(e)) from None

    return test


def _location_operand(op: str, expected: Expr) -> Expr:
    """Azure treats `East US 2` and `eastus2` as the same location."""

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(" ", "").lower()
        return [norm(v) for v in value] if isinstance(value, list) else value

    if expected.const and op not in ("like", "notLike", "match", "matchInsensitively", "notMatch"):
        return constant(norm(expected.value))
    if expected.const:
        return expected
    fn = expected.fn
    return Expr(lambda ctx: norm(fn(ctx)))


def _count(spec: Any, op: str, expected: Expr, scope: Scope, path: str, op_path: str) -> Test:
    keys = {str(k).lower(): k for k in spec} if isinstance(spec, dict) else None
    allowed = {"field", "value", "where", "name"}
    if keys is None or set(keys) - allowed or ("field" in keys) == ("value" in keys):
        raise ConditionError(path, f"count needs an object with field or value, plus optional where/name: {spec!r}")
    members: Callable[[Context], list[Any]]
    if "field" in keys:
        if "name" in keys:
            raise ConditionError(f"{path}.{keys['name']}", "name is only valid in a value count")
        alias = spec[keys["field"]]
        field_path = f"{path}.{keys['field']}"
        if not isinstance(alias, str):
            raise ConditionError(field_path, f"count.field must be an array alias, got {alias!r}")
        frame = Frame(alias.lower(), array_prefixes(alias, scope, field_path))
        selected = compile_field(alias, scope, field_path).select
        members = lambda ctx: list(selected(ctx))  # noqa: E731
    else:
        index = spec.get(keys.get("name", ""), "default")
        frame = Frame(str(index).lower())
        source = compile_value(spec[keys["value"]], scope, f"{path}.{keys['value']}")
        members = _value_members(source, f"{path}.{keys['value']}")
    where = _compile(spec[keys["where"]], scope.inside(frame), f"{path}.{keys['where']}") if "where" in keys else None
    return _compare(_counter(members, where), op, expected, op_path)


def _value_members(source: Expr, path: str) -> Callable[[Context], list[Any]]:
    if source.const and not isinstance(source.value, list):
        raise ConditionError(path, f"count.value must be an array, got {source.value!r}")

    def members(ctx: Context) -> list[Any]:
        value = source.fn(ctx)
        if not isinstance(value, list):
            raise ConditionError(path, f"count.value must be an array, got {value!r}")
        return value

    return members


def _counter(members: Callable[[Context], list[Any]], where: Test | None) -> Callable[[Context], int]:
    if where is None:
        return lambda ctx: len(members(ctx))

    def count(ctx: Context) -> int:
        found, bindings = 0, ctx.bindings
        bindings.append(None)
        try:
            for member in members(ctx):
                bindings[-1] = member
                if where(ctx):
                    found += 1
        finally:
            bindings.pop()
        return found

    return count
