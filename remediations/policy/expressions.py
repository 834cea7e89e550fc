"""Azure Policy template expressions (`"[concat(parameters('prefix'), '-kv')]"`): a tokenizer, a parser and a compiler.

An expression is compiled once into an `Expr`; parts that do not depend on the resource (parameters, literals and
pure functions of them) are folded into constants at compile time. Unknown functions and parameters are compile
errors that list the valid names. Supported functions are in `FUNCTIONS` and `_SPECIAL`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from remediations.errors import ConditionError
from remediations.policy.fields import Context, Scope, compile_field


class EvalError(Exception):
    """A function failed on its arguments; the caller turns it into a `ConditionError` naming the path."""


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


# --- functions ------------------------------------------------------------------------------------------------------


def _need(value: Any, kinds: type | tuple[type, ...], fn: str) -> Any:
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise EvalError(f"{fn}() got {type(value).__name__} {value!r}")
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _concat(*args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [x for a in args for x in a]
    return "".join(_string(a) if a is not None else "" for a in args)


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def _int(value: Any) -> int:
    try:
        return int(value) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        raise EvalError(f"int() cannot convert {value!r}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int):
        return value != 0
    raise EvalError(f"bool() cannot convert {value!r}")


def _length(value: Any) -> int:
    return len(_need(value, (str, list, dict), "length"))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return _string(item) in container
    if isinstance(container, list):
        return item in container
    if isinstance(container, dict):
        return isinstance(item, str) and item.lower() in (k.lower() for k in container)
    raise EvalError(f"contains() cannot search {type(container).__name__}")


def _split(text: Any, delimiter: Any) -> list[str]:
    _need(text, str, "split")
    delimiters = delimiter if isinstance(delimiter, list) else [delimiter]
    pattern = "|".join(re.escape(_need(d, str, "split")) for d in delimiters)
    return re.split(pattern, text) if pattern else [text]


def _first(value: Any) -> Any:
    _need(value, (str, list), "first")
    return value[0] if value else (None if isinstance(value, list) else "")


def _last(value: Any) -> Any:
    _need(value, (str, list), "last")
    return value[-1] if value else (None if isinstance(value, list) else "")


def _compare(a: Any, b: Any) -> int:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    raise EvalError(f"cannot compare {a!r} with {b!r}")


def _add_days(when: Any, days: Any) -> str:
    start = datetime.fromisoformat(_need(when, str, "addDays").replace("Z", "+00:00"))
    return (start + timedelta(days=_need(days, int, "addDays"))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lower(value: Any, fn: str) -> str:
    return str(_need(value, str, fn)).lower()


def _coalesce(*args: Any) -> Any:
    return next((a for a in args if a is not None), None)


def _try_get(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict) and isinstance(key, str):
            value = next((v for k, v in value.items() if k.lower() == key.lower()), None)
        elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            return None
    return value


# name -> (implementation, min args, max args or None). All pure: constant arguments fold at compile time.
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "concat": (_concat, 1, None),
    "toLower": (lambda s: _need(s, str, "toLower").lower(), 1, 1),
    "toUpper": (lambda s: _need(s, str, "toUpper").upper(), 1, 1),
    "equals": (lambda a, b: type(a) is type(b) and a == b, 2, 2),
    "not": (lambda a: not _need(a, bool, "not"), 1, 1),
    "and": (lambda *a: all(_need(x, bool, "and") for x in a), 2, None),
    "or": (lambda *a: any(_need(x, bool, "or") for x in a), 2, None),
    "less": (lambda a, b: _compare(a, b) < 0, 2, 2),
    "lessOrEquals": (lambda a, b: _compare(a, b) <= 0, 2, 2),
    "greater": (lambda a, b: _compare(a, b) > 0, 2, 2),
    "greaterOrEquals": (lambda a, b: _compare(a, b) >= 0, 2, 2),
    "length": (_length, 1, 1),
    "empty": (_empty, 1, 1),
    "contains": (_contains, 2, 2),
    "split": (_split, 2, 2),
    "first": (_first, 1, 1),
    "last": (_last, 1, 1),
    "string": (_string, 1, 1),
    "int": (_int, 1, 1),
    "bool": (_bool, 1, 1),
    "startsWith": (lambda s, p: _lower(s, "startsWith").startswith(_lower(p, "startsWith")), 2, 2),
    "endsWith": (lambda s, p: _lower(s, "endsWith").endswith(_lower(p, "endsWith")), 2, 2),
    "substring": (lambda s, i, n=None: _need(s, str, "substring")[i : None if n is None else i + n], 2, 3),
    "replace": (lambda s, a, b: _need(s, str, "replace").replace(a, b), 3, 3),
    "trim": (lambda s: _need(s, str, "trim").strip(), 1, 1),
    "coalesce": (_coalesce, 1, None),
    "tryGet": (_try_get, 2, None),
    "addDays": (_add_days, 2, 2),
    "createArray": (lambda *a: list(a), 0, None),
    "true": (lambda: True, 0, 0),
    "false": (lambda: False, 0, 0),
    "null": (lambda: None, 0, 0),
}
_SPECIAL = ("parameters", "field", "current", "if", "requestContext", "utcNow")
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
        raise ConditionError(path, f"unknown function {name!r} in [{text}]", function_names())
    compiled = [_compile(a, scope, path, text) for a in args]
    if canonical in FUNCTIONS:
        fn, low, high = FUNCTIONS[canonical]
        _arity(canonical, compiled, low, high, path)
        return _fold(fn, compiled, path, text)
    return _special(canonical, compiled, scope, path, text)


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
            return yes if _need(cond.value, bool, "if") else no
        return Expr(lambda ctx: (yes if _need(cond.fn(ctx), bool, "if") else no).fn(ctx))
    if name == "requestContext":
        _arity(name, args, 0, 0, path)
        return Expr(lambda ctx: {"apiVersion": ctx.api_version})
    if name == "utcNow":
        _arity(name, args, 0, 1, path)
        return Expr(_utc_now)
    _arity(name, args, 0 if name == "current" else 1, 1, path)
    if args and not (args[0].const and isinstance(args[0].value, str)):
        raise ConditionError(path, f"{name}() needs a literal string argument in [{text}]")
    arg = args[0].value if args else None
    if name == "field":
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
