"""Azure Policy template expressions (`"[concat(parameters('prefix'), '-kv')]"`): a tokenizer, a parser and a compiler.

An expression is compiled once into an `Expr`; parts that do not depend on the resource (parameters, literals and
pure functions of them) are folded into constants at compile time. Unknown functions and parameters are compile
errors that list the valid names. Supported functions are in `FUNCTIONS` and `_SPECIAL`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from remediations.errors import ConditionError
from remediations.policy import aliases
from remediations.policy.fields import Context, Scope, compile_field
from remediations.policy.functions import EXCLUDED, FUNCTIONS, MISSING, EvalError, need


@dataclass(frozen=True)
class Expr:
    """A compiled expression: call `fn(ctx)`, or read `value` when `const`."""

    fn: Callable[[Context], Any]
    const: bool = False
    value: Any = None


def constant(value: Any) -> Expr:
    return Expr(lambda _ctx: value, True, value)


def is_expression(value: Any) -> bool:
    """Azure's rule: a string in square brackets is an expression; a leading `[[` escapes a literal `[`."""
    return isinstance(value, str) and value.startswith("[") and value.endswith("]") and not value.startswith("[[")


def compile_value(value: Any, scope: Scope, path: str) -> Expr:
    """A literal (returned as is, with `[[` unescaped) or an expression string, compiled."""
    if is_expression(value):
        return compile_expression(value[1:-1], scope, path)
    if isinstance(value, str) and value.startswith("[["):
        return constant(value[1:])
    return constant(value)


# --- tokenizer and parser -------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),.\[\]]))"
)


def _tokens(text: str, path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConditionError(path, f"cannot read the expression at {text[pos:]!r} (in [{text}])")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


# A parsed node: ("lit", value) | ("call", name, [args]) | ("prop", node, name) | ("index", node, node)
Node = tuple[Any, ...]


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text, self.path = text, path
        self.toks = _tokens(text, path)
        self.i = 0

    def fail(self, message: str) -> ConditionError:
        return ConditionError(self.path, f"{message} in expression [{self.text}]")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, punct: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (punct is not None and tok != ("punct", punct)):
            raise self.fail(f"expected {punct!r}" if punct else "unexpected end")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def expr(self) -> Node:
        kind, text = self.take()
        node: Node
        if kind == "str":
            node = ("lit", text[1:-1].replace("''", "'"))
        elif kind == "num":
            node = ("lit", float(text) if "." in text else int(text))
        elif kind == "ident" and self.peek() == ("punct", "("):
            self.take("(")
            args: list[Node] = []
            if self.peek() != ("punct", ")"):
                args.append(self.expr())
                while self.peek() == ("punct", ","):
                    self.take(",")
                    args.append(self.expr())
            self.take(")")
            node = ("call", text, args)
        elif kind == "ident" and text.lower() in ("true", "false", "null"):
            node = ("lit", {"true": True, "false": False, "null": None}[text.lower()])
        else:
            raise self.fail(f"unexpected {text!r}")
        while self.peek() in (("punct", "."), ("punct", "[")):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "ident":
                    raise self.fail(f"expected a property name after '.', got {name!r}")
                node = ("prop", node, name)
            else:
                node = ("index", node, self.expr())
                self.take("]")
        return node


# Functions that read the resource, the policy or the compile-time scope (compiled by `_special`).
_SPECIAL: tuple[str, ...] = ("parameters", "field", "current", "if", "requestContext", "utcNow", "policy")
_SPECIAL += ("resourceGroup", "subscription")
_BY_LOWER = {name.lower(): name for name in (*FUNCTIONS, *_SPECIAL)}


def function_names() -> tuple[str, ...]:
    return tuple(sorted(_BY_LOWER.values(), key=str.lower))


# --- compiler -------------------------------------------------------------------------------------------------------


def compile_expression(text: str, scope: Scope, path: str) -> Expr:
    """Compile the inside of `[...]`. Raises `ConditionError` naming `path` for any mistake."""
    expr = _compile(_Parser(text, path).parse(), scope, path, text)
    if expr.const:
        return expr
    inner = expr.fn

    def guarded(ctx: Context) -> Any:
        try:
            return inner(ctx)
        except EvalError as e:
            raise ConditionError(path, f"[{text}] failed: {e}") from None

    return Expr(guarded)


def _compile(node: Node, scope: Scope, path: str, text: str) -> Expr:
    kind = node[0]
    if kind == "lit":
        return constant(node[1])
    if kind in ("prop", "index"):
        target = _compile(node[1], scope, path, text)
        key = constant(node[2]) if kind == "prop" else _compile(node[2], scope, path, text)
        return _fold(_member, [target, key], path, text)
    name, args = node[1], node[2]
    canonical = _BY_LOWER.get(name.lower())
    if canonical is None:
        raise _unknown_function(name, path, text)
    compiled = [_compile(a, scope, path, text) for a in args]
    if canonical in FUNCTIONS:
        fn, low, high = FUNCTIONS[canonical]
        _arity(canonical, compiled, low, high, path)
        return _fold(fn, compiled, path, text)
    return _special(canonical, compiled, scope, path, text)


def _unknown_function(name: str, path: str, text: str) -> ConditionError:
    if name.lower() in EXCLUDED:
        return ConditionError(path, f"{name}() is not allowed in an Azure Policy rule, in [{text}]")
    missing = {m.lower(): m for m in MISSING}
    if name.lower() in missing:
        return ConditionError(path, f"{missing[name.lower()]}() is not supported by Cryptward yet, in [{text}]")
    near = difflib.get_close_matches(name.lower(), list(_BY_LOWER), n=5, cutoff=0.6)
    return ConditionError(path, f"unknown function {name!r} in [{text}]", tuple(_BY_LOWER[n] for n in near))


def _arity(name: str, args: Sequence[Expr], low: int, high: int | None, path: str) -> None:
    if len(args) < low or (high is not None and len(args) > high):
        expected = f"{low}" if low == high else f"{low} to {high if high is not None else 'any'}"
        raise ConditionError(path, f"{name}() takes {expected} argument(s), got {len(args)}")


def _member(target: Any, key: Any) -> Any:
    if isinstance(target, dict) and isinstance(key, str):
        for k, v in target.items():
            if k.lower() == key.lower():
                return v
        raise EvalError(f"no property {key!r} in {sorted(target)}")
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        if -len(target) <= key < len(target):
            return target[key]
        raise EvalError(f"index {key} is out of range (length {len(target)})")
    raise EvalError(f"cannot read {key!r} of {type(target).__name__} {target!r}")


def _fold(fn: Callable[..., Any], args: list[Expr], path: str, text: str) -> Expr:
    if all(a.const for a in args):
        try:
            return constant(fn(*(a.value for a in args)))
        except (EvalError, TypeError, ValueError) as e:
            raise ConditionError(path, f"[{text}] fails: {e}") from None
    fns = [a.fn for a in args]

    def call(ctx: Context) -> Any:
        try:
            return fn(*(f(ctx) for f in fns))
        except (TypeError, ValueError) as e:
            raise EvalError(str(e)) from None

    return Expr(call)


def _special(name: str, args: list[Expr], scope: Scope, path: str, text: str) -> Expr:
    if name == "parameters":
        _arity(name, args, 1, 1, path)
        key = args[0].value if args[0].const else None
        if not isinstance(key, str) or key.lower() not in scope.parameters:
            declared = [n for n, _ in scope.parameters.values()]
            raise ConditionError(path, f"unknown parameter {key!r} in [{text}]", declared)
        return constant(scope.parameters[key.lower()][1])
    if name == "if":
        _arity(name, args, 3, 3, path)
        cond, yes, no = args
        if cond.const:
            return yes if need(cond.value, bool, "if") else no
        return Expr(lambda ctx: (yes if need(cond.fn(ctx), bool, "if") else no).fn(ctx))
    if name == "requestContext":
        # Cryptward evaluates existing resources, as Azure's compliance scan does: no request, so no caller identity.
        _arity(name, args, 0, 0, path)
        return Expr(lambda ctx: {"apiVersion": ctx.api_version, "identity": None})
    if name == "policy":
        _arity(name, args, 0, 0, path)
        return constant(dict(scope.policy))
    if name in ("resourceGroup", "subscription"):
        _arity(name, args, 0, 0, path)
        return Expr(_resource_group if name == "resourceGroup" else _subscription)
    if name == "utcNow":
        _arity(name, args, 0, 1, path)
        return Expr(_utc_now)
    _arity(name, args, 0 if name == "current" else 1, 1, path)
    if args and not (args[0].const and isinstance(args[0].value, str)):
        raise ConditionError(path, f"{name}() needs a literal string argument in [{text}]")
    arg = args[0].value if args else None
    if name == "field":
        if scope.related:
            # In an existence condition `[field()]` reads the resource the `if` matched (Learn, "Azure Policy effect:
            # auditIfNotExists", existenceCondition: "Can use [field()] to check equivalence with values in the if").
            outer = compile_field(str(arg), Scope(scope.parameters, None, (), set(), scope.policy), path)
            return Expr(lambda ctx: outer.template_value(ctx.primary or ctx))
        return Expr(compile_field(str(arg), scope, path).template_value)
    return _current(arg, scope, path, text)


def _current(arg: str | None, scope: Scope, path: str, text: str) -> Expr:
    if not scope.frames:
        raise ConditionError(path, f"current() is only valid inside a count's where, in [{text}]")
    if arg is None:
        return _binding(len(scope.frames) - 1)
    for idx in range(len(scope.frames) - 1, -1, -1):
        if scope.frames[idx].name == arg.lower():
            return _binding(idx)
    ref = compile_field(arg, scope, path)
    if not ref.bound and aliases.owner_type(arg) is None and not aliases.lookup(arg):
        return Expr(lambda _ctx: None)  # inside a count over a type Cryptward does not read: never evaluated
    if not ref.bound:
        raise ConditionError(path, f"current({arg!r}) names no enclosing count", [f.name for f in scope.frames])
    select = ref.select
    return Expr(lambda ctx: (lambda v: list(v) if isinstance(v, list) else v)(select(ctx)))


def _binding(idx: int) -> Expr:
    return Expr(lambda ctx: ctx.bindings[idx])


def _utc_now(ctx: Context) -> str:
    if ctx.now is None:
        ctx.now = datetime.now(UTC)
    return ctx.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_RG = re.compile(r"^/subscriptions/([^/]+)(?:/resourceGroups/([^/]+))?", re.IGNORECASE)


def _resource_group(ctx: Context) -> dict[str, Any]:
    """`resourceGroup()` of the evaluated resource: what its id tells (id, name, type). Its location, tags and
    properties would need a read of the group, so asking for them fails the evaluation rather than guessing."""
    m = _RG.match(str(ctx.resource.get("id", "")))
    if not m or not m.group(2):
        raise EvalError(f"resourceGroup(): {ctx.resource.get('id')!r} is not in a resource group")
    rg_id = f"/subscriptions/{m.group(1)}/resourceGroups/{m.group(2)}"
    return {"id": rg_id, "name": m.group(2), "type": "Microsoft.Resources/resourceGroups"}


def _subscription(ctx: Context) -> dict[str, Any]:
    """`subscription()` of the evaluated resource: its id and subscriptionId (the rest needs a read)."""
    m = _RG.match(str(ctx.resource.get("id", "")))
    if not m:
        raise EvalError(f"subscription(): {ctx.resource.get('id')!r} is not in a subscription")
    return {"id": f"/subscriptions/{m.group(1)}", "subscriptionId": m.group(1)}
