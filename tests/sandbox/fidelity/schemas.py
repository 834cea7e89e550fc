"""Validate JSON bodies against the Microsoft OpenAPI (swagger 2.0 / openapi 3) files in azure-specs/openapi/.

The swagger schema is translated into a JSON Schema (Draft 2020-12) and checked with the `jsonschema` library:

- local refs `#/definitions/X` (swagger 2.0) and `#/components/schemas/X` (openapi 3) resolve inside the file;
- refs to other files (common-types `Resource`/`ProxyResource`/`TrackedResource`, `./common.json`,
  `./diskRPCommon.json`...) are not copied here: they are treated as "any" (`{}` plus "every property evaluated")
  and listed in `Spec.unresolved`, so a base class from another file accepts anything (id/name/type are not
  checked through it);
- `allOf` is kept (jsonschema applies it); `x-ms-client-flatten`, `x-ms-azure-resource`, `x-ms-client-name`,
  `x-ms-mutability`, `discriminator`... are no-ops;
- `readOnly`: a response may carry it (no-op); in a request a readOnly property is never `required`;
- `enum`: a string enum with `x-ms-enum.modelAsString: true` accepts any string; otherwise (modelAsString false or
  no `x-ms-enum`) it is enforced, case-insensitively, as a `pattern`;
- `format`: checked loosely for `date-time` (ISO 8601, any fraction length, `Z` or an offset) and `uuid`; every
  other format (`unixtime`, `arm-id`, `uri`, `int32`, `duration`...) is not checked;
- `x-nullable: true` (swagger) / `nullable: true` (openapi 3) also allow `null`;
- `additionalProperties` is honoured as written (absent = allowed, as in swagger). With `strict=True`, an object
  schema that lists `properties` and says nothing about `additionalProperties` also gets
  `unevaluatedProperties: false`, so a property the spec does not know is reported ("unknown property").

An operation is found by HTTP method + path (matched against the `paths` templates, case-insensitively; a parameter
marked `x-ms-skip-url-encoding` such as `{scope}` or `{resourceUri}` may span several segments) or by the file name
of one of its `x-ms-examples`.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

SPECS_ROOT = Path(__file__).resolve().parents[2] / "data" / "azure-specs"  # Microsoft's files, see MANIFEST.md
OPENAPI_ROOT = SPECS_ROOT / "openapi"

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$",
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_VERBS = ("get", "put", "post", "patch", "delete", "head")

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_DATE_TIME.match(value))


@FORMATS.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(_UUID.match(value))


@dataclass(frozen=True)
class Violation:
    """One schema violation: where in the body (a JSON path such as `$.properties.sku.name`) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Operation:
    spec: Spec
    method: str
    template: str
    operation_id: str
    raw: dict[str, Any]
    regex: re.Pattern[str]
    literal_segments: int

    @property
    def examples(self) -> list[str]:
        return [Path(v["$ref"]).name for v in self.raw.get("x-ms-examples", {}).values() if "$ref" in v]

    def response_schema(self, status: int | str) -> dict[str, Any] | None:
        """The swagger schema of one response (None: the status is not declared or has no body)."""
        resp = self.raw.get("responses", {}).get(str(status))
        if resp is None:
            return None
        resp = self.spec.deref(resp)
        if "schema" in resp:  # swagger 2.0
            return resp["schema"]
        content = resp.get("content") or {}  # openapi 3
        for media in ("application/json", *content):
            if media in content and "schema" in content[media]:
                return content[media]["schema"]
        return None

    def validate_response(self, status: int | str, body: Any, *, strict: bool = False) -> list[Violation]:
        schema = self.response_schema(status)
        if schema is None:
            return [Violation("$", f"{self.operation_id}: no response schema for status {status}")]
        return self.spec.validate(schema, body, strict=strict)


@dataclass
class Spec:
    """One OpenAPI file: its operations and a JSON Schema translation of its definitions."""

    path: Path
    doc: dict[str, Any]
    unresolved: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path | str) -> Spec:
        path = Path(path)
        return cls(path, json.loads(path.read_text()))

    @property
    def name(self) -> str:
        return str(self.path.relative_to(OPENAPI_ROOT)) if self.path.is_relative_to(OPENAPI_ROOT) else self.path.name

    @property
    def definitions(self) -> dict[str, Any]:
        if "definitions" in self.doc:
            return self.doc["definitions"]
        return self.doc.get("components", {}).get("schemas", {})

    def deref(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `$ref` (responses, parameters); an external one gives `{}`."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 20:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                self.unresolved.add(ref)
                return {}
            target: Any = self.doc
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node, seen = target, seen + 1
        return node

    # -- operations -------------------------------------------------------------------------------------------
    @cached_property
    def operations(self) -> list[Operation]:
        out = []
        for section in ("paths", "x-ms-paths"):
            for template, item in (self.doc.get(section) or {}).items():
                common = item.get("parameters", [])
                for method, raw in item.items():
                    if method not in _VERBS:
                        continue
                    params = [self.deref(p) for p in (*common, *raw.get("parameters", []))]
                    multi = {
                        p["name"]
                        for p in params
                        if p.get("in") == "path" and p.get("x-ms-skip-url-encoding") and "name" in p
                    }
                    regex, literals = _template_regex(template.split("?")[0], multi)
                    out.append(
                        Operation(self, method.upper(), template, raw.get("operationId", ""), raw, regex, literals)
                    )
        return out

    def find(self, method: str, url: str) -> Operation | None:
        """The operation serving `method url` (url: a full URL or a path, %-escapes decoded as ARM does: the locks SDK
        escapes `{scope}`; the most literal template wins)."""
        path = re.sub(r"/{2,}", "/", unquote(urlsplit(url).path)).rstrip("/") or "/"
        hits = [op for op in self.operations if op.method == method.upper() and op.regex.match(path)]
        return max(hits, key=lambda op: op.literal_segments) if hits else None

    def for_example(self, filename: str) -> Operation | None:
        for op in self.operations:
            if filename in op.examples:
                return op
        return None

    # -- schemas ----------------------------------------------------------------------------------------------
    def _defs(self, strict: bool, request: bool) -> dict[str, Any]:
        key = (strict, request)
        cache = self.__dict__.setdefault("_defs_cache", {})
        if key not in cache:
            bases = _allof_bases(self.definitions)
            defs: dict[str, Any] = {"__external_any__": {"additionalProperties": True}}
            for name, schema in self.definitions.items():
                defs[name] = self._translate(schema, strict=strict, request=request)
                if name in bases:  # the same definition used as an allOf base must not close itself
                    defs[f"{name}__base"] = self._translate(schema, strict=False, request=request, base=True)
            cache[key] = defs
        return cache[key]

    def json_schema(self, schema: dict[str, Any], *, strict: bool = False, request: bool = False) -> dict[str, Any]:
        """A standalone JSON Schema (2020-12) for one swagger schema of this file."""
        root = self._translate(schema, strict=strict, request=request)
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **root,
            "definitions": self._defs(strict, request),
        }

    def validator(self, schema: dict[str, Any], *, strict: bool = False, request: bool = False) -> Draft202012Validator:
        js = self.json_schema(schema, strict=strict, request=request)
        return Draft202012Validator(js, format_checker=FORMATS)

    def validate(
        self, schema: dict[str, Any], body: Any, *, strict: bool = False, request: bool = False
    ) -> list[Violation]:
        """Every violation of `body` against a swagger schema of this file, each with its JSON path."""
        out = []
        errors = self.validator(schema, strict=strict, request=request).iter_errors(body)
        for err in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
            out.extend(_flatten(err))
        return sorted(set(out), key=lambda v: (v.path, v.message))

    def validate_definition(self, name: str, body: Any, *, strict: bool = False) -> list[Violation]:
        return self.validate({"$ref": self._ref_prefix + name}, body, strict=strict)

    @property
    def _ref_prefix(self) -> str:
        return "#/definitions/" if "definitions" in self.doc else "#/components/schemas/"

    def _translate(self, node: Any, *, strict: bool, request: bool, base: bool = False) -> Any:
        """Swagger schema -> JSON Schema 2020-12 (see the module docstring for the rules)."""
        if isinstance(node, list):
            return [self._translate(n, strict=strict, request=request) for n in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref":
                out["$ref"] = self._translate_ref(value)
            elif key in ("properties", "patternProperties", "definitions", "$defs"):
                out[key] = {k: self._translate(v, strict=strict, request=request) for k, v in value.items()}
            elif key == "allOf":
                parts = [self._translate(v, strict=strict, request=request) for v in value]
                out["allOf"] = [_as_base(p) for p in parts]
            elif key in ("items", "additionalProperties", "not"):
                out[key] = self._translate(value, strict=strict, request=request)
            elif key in ("anyOf", "oneOf"):
                out[key] = [self._translate(v, strict=strict, request=request) for v in value]
            elif key in _COPIED:
                out[key] = copy.deepcopy(value)
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                if value is True and bound in node:
                    out[key] = node[bound]
            # everything else (description, readOnly, default, example, x-ms-*, discriminator, title...) is
            # an annotation here; enum / nullable are handled below
        if "enum" in node:
            out.update(_enum(node))
        if node.get("type") == "file":
            out.pop("type")
        if request and "required" in out and "properties" in node:
            ro = {k for k, v in node["properties"].items() if isinstance(v, dict) and v.get("readOnly")}
            out["required"] = [r for r in out["required"] if r not in ro]
        if node.get("x-nullable") or node.get("nullable"):
            out = {"anyOf": [out, {"type": "null"}]}
        elif (
            strict
            and not base
            and "properties" in node
            and "additionalProperties" not in node
            and node.get("type", "object") == "object"
        ):
            out["unevaluatedProperties"] = False
        return out

    def _translate_ref(self, ref: str) -> Any:
        if ref.startswith("#/definitions/"):
            return ref
        if ref.startswith("#/components/schemas/"):
            return "#/definitions/" + ref.rsplit("/", 1)[1]
        self.unresolved.add(ref)
        return _EXTERNAL


_EXTERNAL = "#/definitions/__external_any__"
_COPIED = frozenset(
    {"required", "type", "format", "minimum", "maximum", "minLength", "maxLength", "pattern"}
    | {"minItems", "maxItems", "uniqueItems", "multipleOf", "const"}
)


def _as_base(part: Any) -> Any:
    """An allOf member: point a local ref at the definition's open (`__base`) copy."""
    if isinstance(part, dict) and isinstance(part.get("$ref"), str) and part["$ref"] != _EXTERNAL:
        return {**part, "$ref": part["$ref"] + "__base"}
    return part


def _allof_bases(defs: dict[str, Any]) -> set[str]:
    bases = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for part in node.get("allOf", []):
                ref = part.get("$ref", "") if isinstance(part, dict) else ""
                if ref.startswith(("#/definitions/", "#/components/schemas/")):
                    bases.add(ref.rsplit("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(defs)
    return bases


def _enum(node: dict[str, Any]) -> dict[str, Any]:
    values = node["enum"]
    ms_enum = node.get("x-ms-enum") or {}
    if ms_enum.get("modelAsString", False):
        return {}  # an open (extensible) enum: any string
    if all(isinstance(v, str) for v in values):
        alternatives = "|".join(re.escape(v) for v in values)
        return {"pattern": f"^(?i:{alternatives})$"}
    return {"enum": list(values)}


def _template_regex(template: str, multi: set[str]) -> tuple[re.Pattern[str], int]:
    parts, literals = [], 0
    for seg in [s for s in template.split("/") if s]:
        m = re.fullmatch(r"\{([^}]+)\}", seg)
        if m and m.group(1) in multi:
            parts.append(r"(?:/.+?)?")  # {scope}, {resourceUri}, {parentResourcePath} (may be empty)
        elif m:
            parts.append(r"/[^/]+")
        else:
            parts.append("/" + re.escape(seg))
            literals += 1
    return re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE), literals


def _json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _flatten(err: jsonschema.ValidationError) -> list[Violation]:
    """anyOf/oneOf failures carry their reasons in `context`: report the leaf errors with full paths."""
    if err.validator == "unevaluatedProperties":
        extra = re.findall(r"'([^']+)'", err.message.split("(", 1)[-1]) if "(" in err.message else []
        names = extra or [err.message]
        return [Violation(_json_path([*err.absolute_path, n]), "unknown property (not in the spec)") for n in names]
    if err.context and err.validator in ("anyOf", "oneOf"):
        leaves = [
            leaf for sub in err.context for leaf in _flatten(sub) if not leaf.message.endswith("is not of type 'null'")
        ]
        if leaves:
            return leaves
    return [Violation(_json_path(err.absolute_path), err.message)]


# -- the spec folder ------------------------------------------------------------------------------------------


class Specs:
    """All OpenAPI files under a folder; `find(method, url)` across them."""

    def __init__(self, root: Path = OPENAPI_ROOT, only: tuple[str, ...] = ()) -> None:
        files = sorted(root.rglob("*.json"))
        self.specs = [Spec.load(p) for p in files if not only or str(p.relative_to(root)) in only]

    def find(self, method: str, url: str) -> Operation | None:
        hits = [op for spec in self.specs if (op := spec.find(method, url)) is not None]
        return max(hits, key=lambda op: op.literal_segments) if hits else None

    def for_example(self, filename: str) -> Operation | None:
        for spec in self.specs:
            op = spec.for_example(filename)
            if op is not None:
                return op
        return None

    def validate_response(
        self, method: str, url: str, status: int, body: Any, *, strict: bool = False
    ) -> list[Violation] | None:
        """Violations of a response body, or None when no spec covers the operation (or the status has no body)."""
        op = self.find(method, url)
        if op is None or op.response_schema(status) is None:
            return None
        return op.validate_response(status, body, strict=strict)

    @property
    def unresolved(self) -> dict[str, set[str]]:
        return {s.name: set(s.unresolved) for s in self.specs if s.unresolved}
