"""Azure ABAC role assignment conditions (`conditionVersion` 2.0): the part of the language that delegation
conditions use, parsed once and evaluated against a request.

Sources (Microsoft Learn; the MicrosoftDocs/azure-docs paths in brackets):
- "Azure condition format and syntax" [articles/role-based-access-control/conditions-format.md]: the grammar,
  `ActionMatches`, `SubOperationMatches`, `Exists`, AND/&&, OR/||, NOT/!, parentheses, the GUID and string
  comparison operators and the cross-product quantifiers; "a AND b OR c" must be parenthesised.
- "Authorization actions and attributes" [conditions-authorization-actions-attributes.md]: the actions
  `roleAssignments/write` (Request attributes) and `roleAssignments/delete` (Resource attributes), and the
  attributes RoleDefinitionId and PrincipalId (GUID) and PrincipalType (STRING).
- "Examples to delegate Azure role assignment management with conditions" [delegate-role-assignments-examples.md]:
  the shapes used (constrain roles, roles and principal types, roles and principals, all except some roles).
- "FAQ for Azure role assignment conditions" [conditions-faq.md]: a condition is at most 8 KB; 2.0 is the only
  public version.

Implemented: the pieces above, exactly as spelled there (names are case-sensitive here; whether Azure accepts other
casings is unverified). Left out, refused with `ConditionError(unsupported=True)`: other attribute sources
(@Principal, @Environment), attributes other than the three above (Blob/Queue Storage attributes: the sandbox has no
storage), and the StringLike/StringStartsWith/Numeric/DateTime/Bool operators.

Unverified choices (not found in Microsoft's documentation): a comparison whose attribute the request does not carry
is false, whatever the operator or quantifier (fails closed); a comparison without a quantifier takes one value, not a
set; GUID values are bare GUIDs and string values are quoted, as in every example.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = [
    "MAX_LENGTH",
    "VERSION",
    "Attributes",
    "ConditionError",
    "Node",
    "Request",
    "evaluate",
    "holds",
    "parse",
    "role_assignment_attributes",
]

VERSION = "2.0"  # "Currently the only accepted value is '2.0'" (authorization-RoleAssignmentsCalls.json, 2022-04-01)
MAX_LENGTH = 8 * 1024  # "A condition can be up to 8 KB long." (conditions-faq.md)

# (source, attribute) -> the attribute's values in the request; absent when the request does not carry it.
Attributes = Mapping[tuple[str, str], tuple[str, ...]]

_RA = "Microsoft.Authorization/roleAssignments"
# The attributes of role assignment actions and their types (conditions-authorization-actions-attributes.md).
ATTRIBUTE_TYPES = {
    f"{_RA}:RoleDefinitionId": "GUID",
    f"{_RA}:PrincipalId": "GUID",
    f"{_RA}:PrincipalType": "STRING",
}
SOURCES = ("Request", "Resource")
QUANTIFIERS = ("ForAnyOfAnyValues", "ForAllOfAnyValues", "ForAnyOfAllValues", "ForAllOfAllValues")
FUNCTIONS = {  # name -> (attribute type, negated, ignore case)
    "GuidEquals": ("GUID", False, True),
    "GuidNotEquals": ("GUID", True, True),
    "StringEquals": ("STRING", False, False),
    "StringNotEquals": ("STRING", True, False),
    "StringEqualsIgnoreCase": ("STRING", False, True),
    "StringNotEqualsIgnoreCase": ("STRING", True, True),
}
_DOCUMENTED_ELSEWHERE = re.compile(r"(String(Not)?(Like|StartsWith)|Numeric|DateTime|Bool)\w*")


class ConditionError(ValueError):
    """A condition the sandbox refuses: malformed (Azure refuses it too), or `unsupported` by the sandbox."""

    def __init__(self, detail: str, *, unsupported: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.unsupported = detail, unsupported


# --- the tree ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    source: str  # "Request" | "Resource"
    name: str  # e.g. "Microsoft.Authorization/roleAssignments:RoleDefinitionId"


@dataclass(frozen=True)
class ActionMatches:
    pattern: str


@dataclass(frozen=True)
class SubOperationMatches:
    pattern: str


@dataclass(frozen=True)
class Exists:
    attribute: Attribute


@dataclass(frozen=True)
class Compare:
    attribute: Attribute
    quantifier: str | None
    function: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class All:  # AND
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:  # OR
    operands: tuple[Node, ...]


Node = ActionMatches | SubOperationMatches | Exists | Compare | Not | All | Any_


# --- parsing ----------------------------------------------------------------------------------------------------

_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_TOKEN = re.compile(
    rf"""
    (?P<lparen>\() | (?P<rparen>\)) | (?P<lbrace>\{{) | (?P<rbrace>\}}) | (?P<comma>,)
    | (?P<and>&&) | (?P<or>\|\|) | (?P<bang>!)
    | (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<attribute>@(?P<source>[A-Za-z]+)\[(?P<name>[^\]]*)\])
    | (?P<guid>{_GUID})(?![\w-])
    | (?P<word>[A-Za-z][A-Za-z0-9]*(?::[A-Za-z][A-Za-z0-9]*)?)
    """,
    re.VERBOSE,
)


@dataclass
class _Token:
    kind: str
    text: str
    at: int
    groups: dict[str, Any] = field(default_factory=dict)


def _tokens(text: str) -> list[_Token]:
    out, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return out
        m = _TOKEN.match(text, at)
        if m is None or m.lastgroup is None:
            raise ConditionError(f"unexpected character {text[at]!r} at {at}")
        kind = m.lastgroup if m.lastgroup not in ("source", "name") else "attribute"
        if kind == "word" and m.group("word") in ("AND", "OR"):
            kind = m.group("word").lower()
        elif kind == "word" and m.group("word") == "NOT":
            kind = "bang"
        out.append(_Token(kind, m.group(0), at, m.groupdict()))
        at = m.end()


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens, self.i = _tokens(text), 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, what: str) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind:
            where = f"{token.text!r} at {token.at}" if token else "the end"
            raise ConditionError(f"expected {what}, found {where}")
        self.i += 1
        return token

    def expression(self) -> Node:
        """Operands joined by one kind of operator: conditions-format.md, 'Grouping and precedence'."""
        operands, joiners = [self.unary()], set()
        while (token := self.peek()) is not None and token.kind in ("and", "or"):
            joiners.add(token.kind)
            self.i += 1
            operands.append(self.unary())
        if len(joiners) > 1:
            raise ConditionError("AND and OR at the same level need parentheses")
        if not joiners:
            return operands[0]
        return All(tuple(operands)) if joiners == {"and"} else Any_(tuple(operands))

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "bang":
            self.i += 1
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if token is None:
            raise ConditionError("the condition ends where an expression is expected")
        if token.kind == "lparen":
            self.i += 1
            inner = self.expression()
            self.take("rparen", "')'")
            return inner
        if token.kind == "word" and token.text in ("ActionMatches", "SubOperationMatches"):
            self.i += 1
            self.take("lbrace", "'{'")
            pattern = _unquote(self.take("string", "a quoted pattern").text)
            self.take("rbrace", "'}'")
            return ActionMatches(pattern) if token.text == "ActionMatches" else SubOperationMatches(pattern)
        if token.kind == "word" and token.text == "Exists":
            self.i += 1
            return Exists(self.attribute())
        if token.kind == "attribute":
            return self.comparison()
        raise ConditionError(f"unexpected {token.text!r} at {token.at}")

    def attribute(self) -> Attribute:
        token = self.take("attribute", "an attribute such as @Request[...]")
        source, name = token.groups["source"], token.groups["name"]
        if source in ("Principal", "Environment"):
            raise ConditionError(f"@{source} attributes are not modelled by the sandbox", unsupported=True)
        if source not in SOURCES:
            raise ConditionError(f"unknown attribute source @{source} at {token.at}")
        if name not in ATTRIBUTE_TYPES:
            raise ConditionError(f"the sandbox models no attribute {name!r}", unsupported=True)
        return Attribute(source, name)

    def comparison(self) -> Compare:
        attribute = self.attribute()
        operator = self.take("word", "an operator")
        quantifier, _, function = operator.text.rpartition(":")
        if quantifier and quantifier not in QUANTIFIERS:
            raise ConditionError(f"unknown quantifier {quantifier!r} at {operator.at}")
        if function not in FUNCTIONS:
            if _DOCUMENTED_ELSEWHERE.fullmatch(function):
                raise ConditionError(f"the operator {function} is not modelled by the sandbox", unsupported=True)
            raise ConditionError(f"unknown operator {operator.text!r} at {operator.at}")
        kind = FUNCTIONS[function][0]
        if kind != ATTRIBUTE_TYPES[attribute.name]:
            raise ConditionError(f"{function} does not apply to {attribute.name} ({ATTRIBUTE_TYPES[attribute.name]})")
        values = self.values(kind, many=bool(quantifier))
        return Compare(attribute, quantifier or None, function, values)

    def values(self, kind: str, *, many: bool) -> tuple[str, ...]:
        value_kind = "guid" if kind == "GUID" else "string"
        what = "a GUID" if kind == "GUID" else "a quoted string"
        token = self.peek()
        if token is None or token.kind != "lbrace":
            return (self.value(value_kind, what),)
        if not many:
            raise ConditionError(f"a set of values at {token.at} needs a ForAnyOf/ForAllOf operator")
        self.i += 1
        out = [self.value(value_kind, what)]
        while (token := self.peek()) is not None and token.kind == "comma":
            self.i += 1
            out.append(self.value(value_kind, what))
        self.take("rbrace", "'}'")
        return tuple(out)

    def value(self, kind: str, what: str) -> str:
        token = self.take(kind, what)
        return _unquote(token.text) if kind == "string" else token.text.lower()


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


@lru_cache(maxsize=256)
def parse(text: str) -> Node:
    """The tree of a condition, or ConditionError. Cached: stored conditions are parsed once."""
    if len(text.encode()) > MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {MAX_LENGTH} bytes")
    parser = _Parser(text)
    node = parser.expression()
    if (token := parser.peek()) is not None:
        raise ConditionError(f"unexpected {token.text!r} at {token.at} after a complete expression")
    return node


# --- evaluation -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a condition is evaluated against: the action requested and the attributes it carries."""

    action: str
    attributes: Attributes = field(default_factory=dict)
    sub_operation: str | None = None  # ARM operations have none


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.IGNORECASE)


def _compare(function: str, left: str, right: str) -> bool:
    _, negated, ignore_case = FUNCTIONS[function]
    same = left.casefold() == right.casefold() if ignore_case else left == right
    return same != negated


def evaluate(node: Node, request: Request) -> bool:
    match node:
        case All(operands):
            return all(evaluate(n, request) for n in operands)
        case Any_(operands):
            return any(evaluate(n, request) for n in operands)
        case Not(operand):
            return not evaluate(operand, request)
        case ActionMatches(pattern):
            return _wildcard(pattern).fullmatch(request.action) is not None
        case SubOperationMatches(pattern):
            return request.sub_operation is not None and _wildcard(pattern).fullmatch(request.sub_operation) is not None
        case Exists(attribute):
            return bool(request.attributes.get((attribute.source, attribute.name)))
        case Compare(attribute, quantifier, function, values):
            left = request.attributes.get((attribute.source, attribute.name)) or ()
            if not left:
                return False  # unverified: a missing attribute fails every comparison (closed)
            every_left = quantifier in ("ForAllOfAnyValues", "ForAllOfAllValues")
            every_right = quantifier in ("ForAnyOfAllValues", "ForAllOfAllValues")
            outer = all if every_left else any
            inner = all if every_right else any
            return outer(inner(_compare(function, lv, rv) for rv in values) for lv in left)
    raise TypeError(f"not a condition node: {node!r}")


def holds(condition: str, request: Request) -> bool:
    """Whether a stored condition allows the request. One that does not parse never does."""
    try:
        node = parse(condition)
    except ConditionError:
        return False
    return evaluate(node, request)


def role_assignment_attributes(source: str, properties: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, ...]]:
    """The attributes of a role assignment, as the `source` ("Request": the body of a write; "Resource": the stored
    assignment a delete acts on) presents them. RoleDefinitionId is the role's GUID, whatever form the id is in."""
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    role = properties.get("roleDefinitionId")
    if isinstance(role, str) and role:
        out[(source, f"{_RA}:RoleDefinitionId")] = (role.rstrip("/").rsplit("/", 1)[-1].lower(),)
    for key, name in (("principalId", "PrincipalId"), ("principalType", "PrincipalType")):
        value = properties.get(key)
        if isinstance(value, str) and value:
            out[(source, f"{_RA}:{name}")] = (value.lower() if key == "principalId" else value,)
    return out
