"""A small Kusto Query Language (KQL) engine: the subset of Resource Graph queries the bot and the well-known queries
use, parsed and run over lists of rows (dicts). Pure: no I/O, no sandbox state.

    rows = run("resources | where type =~ 'microsoft.keyvault/vaults' | project id, name", tables)

Tabular operators: `where`, `project`, `project-away`, `extend`, `order by` / `sort by` (descending unless `asc`, as
in Kusto), `take` / `limit`, `summarize [name =] count() [by ...]`, `count`, `join kind=leftouter|inner (query) on
col` or `on $left.a == $right.b`. Expressions: `==`, `!=`, `=~`, `!~`, `<`, `<=`, `>`, `>=`, `in`, `in~`, `!in`,
`!in~`, `has`, `!has`, `contains`, `!contains`, `startswith`, `endswith`, `and`, `or`, `not()`, `isnotempty()`,
`isempty()`, `isnull()`, `isnotnull()`, `tostring()`, `tobool()`, `tolower()`, `toupper()`, `toint()`, `tolong()`,
property paths (`properties.a.b`, `tags['x']`, `a[0]`), string, number, `true` / `false` / `null` literals.
Semantics from the Kusto reference on Microsoft Learn (https://learn.microsoft.com/kusto/query/): `==` is case
sensitive and `=~` is not; `has` matches a whole term, `contains` any substring, both case-insensitive; `sort`
is descending by default; `join` defaults to `innerunique` (not served: name the kind). Anything else raises
`KqlError` with the offending token and where it is: the caller answers Resource Graph's `ParserFailure`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.kqlvalues import FUNCTIONS, binary, column, key, member, membership, ordered, truthy, unquote

__all__ = ["KqlError", "Query", "parse", "run"]

Row = dict[str, Any]
Expr = Callable[[Mapping[str, Any]], Any]
Stage = Callable[[list[Row], Mapping[str, list[Row]]], list[Row]]


class KqlError(ValueError):
    """A query outside the subset or not well formed: the token and its position (1-based line and column)."""

    def __init__(self, message: str, token: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, position {column}, token {token!r})")
        self.message, self.token, self.line, self.column = message, token, line, column


_TOKEN = re.compile(
    r"""\s+|//[^\n]*
    |(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    |(?P<num>\d+(?:\.\d+)?)
    |(?P<op>!in~|in~|!~|=~|==|!=|<=|>=|[|(),.\[\]=<>*+\-/%])
    |(?P<word>\$?[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z_]+)?|![A-Za-z_]+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # str | num | op | word | end
    text: str
    pos: int


def _tokens(text: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            line, col = _where(text, pos)
            raise KqlError("unexpected character", text[pos], line, col)
        if m.lastgroup:
            out.append(Tok(m.lastgroup, m.group(), pos))
        pos = m.end()
    out.append(Tok("end", "<EOF>", len(text)))
    return out


def _where(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1)


_COMPARE = {"==", "!=", "=~", "!~", "<", "<=", ">", ">=", "in", "in~", "!in", "!in~"}
_WORDOPS = {"has", "!has", "contains", "!contains", "startswith", "endswith", "contains_cs", "has_cs"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    # -- tokens ----------------------------------------------------------------------------------------------
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def fail(self, message: str, tok: Tok | None = None) -> KqlError:
        tok = tok or self.tok
        line, col = _where(self.text, tok.pos)
        return KqlError(message, tok.text, line, col)

    def next(self) -> Tok:
        tok = self.tok
        self.i += 1
        return tok

    def peek(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "word") and self.tok.text.lower() in texts

    def expect(self, *texts: str) -> Tok:
        if not self.peek(*texts):
            raise self.fail(f"expected {' or '.join(texts)}")
        return self.next()

    def name(self) -> str:
        if self.tok.kind != "word":
            raise self.fail("expected a name")
        return self.next().text

    # -- the pipeline ----------------------------------------------------------------------------------------
    def query(self, nested: bool = False) -> Query:
        table = self.name()
        stages: list[Stage] = []
        while self.peek("|"):
            self.next()
            stages.append(self.stage())
        if not nested and self.tok.kind != "end":
            raise self.fail("expected | or the end of the query")
        return Query(table.lower(), stages)

    def stage(self) -> Stage:
        word = self.tok
        op = self.name().lower()
        if op == "where":
            cond = self.expr()
            return lambda rows, _: [r for r in rows if truthy(cond(r))]
        if op in ("project", "extend"):
            items = self.assignments()
            if op == "project":
                return lambda rows, _: [{n: e(r) for n, e in items} for r in rows]
            return lambda rows, _: [{**r, **{n: e(r) for n, e in items}} for r in rows]
        if op == "project-away":
            names = {self.name()}
            while self.peek(","):
                self.next()
                names.add(self.name())
            return lambda rows, _: [{k: v for k, v in r.items() if k not in names} for r in rows]
        if op in ("order", "sort"):
            self.expect("by")
            keys = [self.sort_key()]
            while self.peek(","):
                self.next()
                keys.append(self.sort_key())
            return lambda rows, _: ordered(rows, keys)
        if op in ("take", "limit"):
            if self.tok.kind != "num":
                raise self.fail("expected a number")
            n = int(float(self.next().text))
            return lambda rows, _: rows[:n]
        if op == "count":
            return lambda rows, _: [{"Count": len(rows)}]
        if op == "summarize":
            return self.summarize()
        if op == "join":
            return self.join()
        raise self.fail(f"the operator '{word.text}' is not supported", word)

    def assignments(self) -> list[tuple[str, Expr]]:
        items = [self.assignment()]
        while self.peek(","):
            self.next()
            items.append(self.assignment())
        return items

    def assignment(self) -> tuple[str, Expr]:
        start = self.tok
        if start.kind == "word" and self.toks[self.i + 1].text == "=" and self.toks[self.i + 1].kind == "op":
            self.i += 2
            return start.text, self.expr()
        expr = self.expr()
        if start.kind != "word":
            raise self.fail("a computed column needs a name (name = expression)", start)
        last = [t for t in self.toks[self.i - 1 : self.i] if t.kind in ("word", "str")]
        name = last[0].text.strip("'\"") if last else start.text
        return name, expr

    def sort_key(self) -> tuple[Expr, bool]:
        expr = self.expr()
        desc = True
        if self.peek("asc", "desc"):
            desc = self.next().text.lower() == "desc"
        return expr, desc

    def summarize(self) -> Stage:
        name = "count_"
        if self.tok.kind == "word" and self.toks[self.i + 1].text == "=":
            name = self.next().text
            self.next()
        if not self.peek("count"):
            raise self.fail(f"the aggregation '{self.tok.text}' is not supported")
        self.next()
        self.expect("(")
        self.expect(")")
        groups: list[tuple[str, Expr]] = []
        if self.peek("by"):
            self.next()
            groups = self.assignments()

        def run(rows: list[Row], _: Mapping[str, list[Row]]) -> list[Row]:
            counts: dict[str, tuple[Row, int]] = {}
            for r in rows:
                key_row = {n: e(r) for n, e in groups}
                key = json.dumps(key_row, sort_keys=True, default=str)
                prev = counts.get(key)
                counts[key] = (key_row, (prev[1] if prev else 0) + 1)
            return [{**k, name: n} for k, n in counts.values()]

        return run

    def join(self) -> Stage:
        kind = "innerunique"
        if self.peek("kind"):
            self.next()
            self.expect("=")
            kind = self.name().lower()
        if kind not in ("leftouter", "inner"):
            raise self.fail(f"the join kind '{kind}' is not supported")
        self.expect("(")
        right = self.query(nested=True)
        self.expect(")")
        self.expect("on")
        pairs = [self.join_key()]
        while self.peek(",", "and"):
            self.next()
            pairs.append(self.join_key())

        def run(rows: list[Row], tables: Mapping[str, list[Row]]) -> list[Row]:
            other = right.rows(tables)
            index: dict[tuple[Any, ...], list[Row]] = {}
            for r in other:
                index.setdefault(tuple(key(r.get(b)) for _, b in pairs), []).append(r)
            out = []
            for r in rows:
                hits = index.get(tuple(key(r.get(a)) for a, _ in pairs), [])
                for h in hits:
                    out.append({**r, **{(k if k not in r else f"{k}1"): v for k, v in h.items()}})
                if not hits and kind == "leftouter":
                    out.append(dict(r))
            return out

        return run

    def join_key(self) -> tuple[str, str]:
        first = self.name()
        if not first.lower().startswith("$left"):
            return first, first
        self.expect(".")
        left = self.name()
        self.expect("==")
        if self.name().lower() != "$right":
            raise self.fail("expected $right")
        self.expect(".")
        return left, self.name()

    # -- expressions -----------------------------------------------------------------------------------------
    def expr(self) -> Expr:
        left = self.conj()
        while self.peek("or"):
            self.next()
            right, first = self.conj(), left
            left = lambda r, a=first, b=right: truthy(a(r)) or truthy(b(r))  # noqa: E731
        return left

    def conj(self) -> Expr:
        left = self.comparison()
        while self.peek("and"):
            self.next()
            right, first = self.comparison(), left
            left = lambda r, a=first, b=right: truthy(a(r)) and truthy(b(r))  # noqa: E731
        return left

    def comparison(self) -> Expr:
        left = self.primary()
        if self.tok.kind in ("op", "word") and self.tok.text.lower() in _COMPARE | _WORDOPS:
            op = self.next().text.lower()
            if op in ("in", "in~", "!in", "!in~"):
                self.expect("(")
                values = [self.primary()]
                while self.peek(","):
                    self.next()
                    values.append(self.primary())
                self.expect(")")
                return membership(op, left, values)
            return binary(op, left, self.primary())
        return left

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "str":
            self.next()
            value = unquote(tok.text)
            expr: Expr = lambda r: value  # noqa: E731
        elif tok.kind == "num":
            self.next()
            number = float(tok.text) if "." in tok.text else int(tok.text)
            expr = lambda r: number  # noqa: E731
        elif self.peek("("):
            self.next()
            expr = self.expr()
            self.expect(")")
        elif tok.kind == "word":
            self.next()
            word = tok.text
            if word.lower() in ("true", "false", "null"):
                constant = {"true": True, "false": False, "null": None}[word.lower()]
                return lambda r: constant
            expr = self.call(word, tok) if self.peek("(") else (lambda r, n=word: column(r, n))
        else:
            raise self.fail("expected an expression")
        while self.peek(".", "["):
            if self.next().text == ".":
                key: Any = self.name()
            else:
                index = self.tok
                if index.kind == "str":
                    key = unquote(index.text)
                elif index.kind == "num":
                    key = int(index.text)
                else:
                    raise self.fail("expected a string or a number")
                self.next()
                self.expect("]")
            expr = lambda r, base=expr, k=key: member(base(r), k)  # noqa: E731
        return expr

    def call(self, name: str, tok: Tok) -> Expr:
        fn = FUNCTIONS.get(name.lower())
        if fn is None:
            raise self.fail(f"the function '{name}' is not supported", tok)
        self.expect("(")
        args: list[Expr] = []
        if not self.peek(")"):
            args.append(self.expr())
            while self.peek(","):
                self.next()
                args.append(self.expr())
        self.expect(")")
        return lambda r: fn(*(a(r) for a in args))


@dataclass(frozen=True)
class Query:
    """A parsed query: a table and its stages, run over the tables it is given (name -> rows)."""

    table: str
    stages: Sequence[Stage]

    def rows(self, tables: Mapping[str, list[Row]]) -> list[Row]:
        if self.table not in tables:
            raise KqlError(f"the table '{self.table}' is not known", self.table, 1, 0)
        rows = tables[self.table]
        for stage in self.stages:
            rows = stage(rows, tables)
        return rows


def parse(text: str) -> Query:
    """Parse a query; KqlError when it is outside the subset."""
    return _Parser(text).query()


def run(text: str, tables: Mapping[str, list[Row]]) -> list[Row]:
    return parse(text).rows(tables)
