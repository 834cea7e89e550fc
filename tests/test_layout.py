"""The I/O boundaries the design holds to, read from the source with `ast` (imports inside functions, under
`if TYPE_CHECKING:` and `importlib.import_module("literal")` count as imports too):

1. Azure SDKs, each in its one place:
   - `azure.mgmt.*`, `azure.keyvault.*`, `azure.identity`, `azure.eventgrid` and `azure.core.*` are imported only by
     `remediations/azure/`, the one package that talks to ARM and Key Vault;
   - `azure.data.tables` and `azure.storage.*` only by `remediations/store/`, the function app's own storage; the
     store may also import `azure.core.*`, which those SDKs are built on (MatchConditions, their exceptions);
   - `azure.functions` only by `function_app.py` (the doors) and `remediations/cli/` (the local host, `serve`);
   - any other `azure.*` module is imported nowhere until it is given a place in `AZURE_SDKS` below.
   `azure.core.exceptions` is no exception to the first rule: `remediations/azure/` turns the SDK's exceptions into
   `AzureAccessError` / `CredentialError` (`translated`) and the store into `AzureAccessError` (`storage_errors`), so
   a module outside them that catches an SDK exception is one that calls an SDK itself, which is what the rule is for.
2. `remediations/policy/` and `remediations/fixes/` do no I/O: no Azure SDK, no HTTP or socket client (`httpx`,
   `requests`, `urllib3`, `urllib.request`, `http.client`, `socket`, `ssl`, `aiohttp`), no `subprocess`, and neither
   `remediations.azure` nor `remediations.store`: not directly and not through any `remediations` module they
   import, at any depth. (`urllib.parse` is string handling and allowed.)
3. The sandbox and the bot never import each other: they meet over HTTPS, as the bot and Azure do.
4. The sandbox's core (`sandbox/*.py`) never imports a provider module (`sandbox.providers.<name>`): providers
   register their resource types (`sandbox.arm.register`), data planes with their throttling cost and admin routes
   (`sandbox/hooks.py`) with the core when they are installed. Only `sandbox/server.py` imports the
   `sandbox.providers` package, whose `install` loads the list of providers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "remediations"

# Azure SDK module prefixes -> where they may be imported (paths relative to the repository; a folder ends in "/").
AZURE_SDKS: dict[str, tuple[str, ...]] = {
    "azure.mgmt": ("remediations/azure/",),
    "azure.keyvault": ("remediations/azure/",),
    "azure.identity": ("remediations/azure/",),
    "azure.eventgrid": ("remediations/azure/",),
    "azure.core": ("remediations/azure/", "remediations/store/"),
    "azure.data.tables": ("remediations/store/",),
    "azure.storage": ("remediations/store/",),
    "azure.functions": ("function_app.py", "remediations/cli/"),
}
NETWORK = ("httpx", "requests", "urllib3", "urllib.request", "http.client", "socket", "ssl", "aiohttp", "subprocess")
PURE_PACKAGES = ("remediations/policy/", "remediations/fixes/")
IO_MODULES = ("remediations.azure", "remediations.store")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports, anywhere in it. `from a import b` gives `a` and `a.b` (b may be a module);
    relative imports are made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _outermost(names: set[str]) -> list[str]:
    """`names` without those inside another of them (`a.b.C` from `from a.b import C` goes with `a.b`)."""
    return sorted(n for n in names if not any(n != m and _within(n, m) for m in names))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _allowed(path: Path, places: tuple[str, ...]) -> bool:
    rel = _rel(path)
    return any(rel.startswith(p) if p.endswith("/") else rel == p for p in places)


BOT_FILES = sorted([ROOT / "function_app.py", *BOT.rglob("*.py")])
SANDBOX_FILES = sorted((ROOT / "sandbox").rglob("*.py"))
SANDBOX_CORE = sorted((ROOT / "sandbox").glob("*.py"))
PURE_FILES = [p for p in BOT_FILES if _allowed(p, PURE_PACKAGES)]


def _ids(path: Path) -> str:
    return _rel(path)


def _azure_sdk(name: str) -> str | None:
    """The AZURE_SDKS prefix `name` belongs to; "" for an `azure.*` module not in the table; None if not Azure."""
    if not _within(name, "azure"):
        return None
    return next((prefix for prefix in AZURE_SDKS if _within(name, prefix)), "")


@pytest.mark.parametrize("path", BOT_FILES, ids=_ids)
def test_each_azure_sdk_is_imported_only_in_its_place(path):
    wrong = []
    for name in _outermost(_imports(path)):
        prefix = _azure_sdk(name)
        if prefix is None or name == "azure":
            continue
        if prefix == "":
            wrong.append(f"{name}: an Azure SDK with no place yet; give it one in AZURE_SDKS")
        elif not _allowed(path, AZURE_SDKS[prefix]):
            wrong.append(f"{name}: only {', '.join(AZURE_SDKS[prefix])} may import {prefix}")
    assert not wrong, f"{_rel(path)} imports\n" + "\n".join(wrong)


def _file_of(module: str) -> Path | None:
    """The repository file that defines `module` (or the longest dotted prefix of it that is a module)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:end])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _io_in(path: Path) -> list[str]:
    return _outermost(
        {n for n in _imports(path) if _within(n, "azure") or any(_within(n, io) for io in (*NETWORK, *IO_MODULES))}
    )


def _reached(start: Path) -> Iterator[tuple[Path, list[str]]]:
    """Every `remediations` file `start` imports, at any depth, with the chain of modules that leads to it."""
    seen = {start}
    todo = [(start, [_module_name(start)])]
    while todo:
        path, chain = todo.pop()
        yield path, chain
        for name in sorted(_imports(path)):
            if not _within(name, "remediations"):
                continue
            found = _file_of(name)
            if found is not None and found not in seen:
                seen.add(found)
                todo.append((found, [*chain, _module_name(found)]))


@pytest.mark.parametrize("path", PURE_FILES, ids=_ids)
def test_policy_and_fixes_do_no_io(path):
    wrong = [f"{' -> '.join(chain)} imports {', '.join(_io_in(p))}" for p, chain in _reached(path) if _io_in(p)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", BOT_FILES, ids=_ids)
def test_bot_never_imports_the_sandbox(path):
    assert not any(_within(name, "sandbox") for name in _imports(path))


@pytest.mark.parametrize("path", SANDBOX_FILES, ids=_ids)
def test_sandbox_never_imports_the_bot(path):
    names = _imports(path)
    assert not any(_within(n, "remediations") or _within(n, "function_app") for n in names)


@pytest.mark.parametrize("path", SANDBOX_CORE, ids=_ids)
def test_the_sandbox_core_never_imports_a_provider(path):
    inside = {n for n in _imports(path) if _within(n, "sandbox.providers")}
    if _rel(path) == "sandbox/server.py":
        assert inside == {"sandbox.providers"}, "server.py loads the provider list, and imports no provider"
    else:
        providers = sorted({".".join(n.split(".")[:3]) for n in inside})
        assert not providers, f"{_rel(path)} imports {providers}: register with the core from the provider instead"


def test_the_rules_see_what_they_look_for():
    """The checks above find imports where the code has them (a rule that matches nothing cannot fail)."""
    assert "azure.mgmt.keyvault" in _imports(BOT / "azure" / "client.py")  # inside a method
    assert "azure.storage.queue" in _imports(BOT / "store" / "storage.py")  # under TYPE_CHECKING, and in a method
    assert "remediations.fixes" in _imports(BOT / "policy" / "loader.py")  # `from remediations import fixes as ...`
    assert "sandbox.providers" in _imports(ROOT / "sandbox" / "server.py")
    reached = {_rel(p) for p, _ in _reached(BOT / "fixes" / "vm_encryption_at_host.py")}
    assert {"remediations/engine/advisor.py", "remediations/policy/aliases.py"} <= reached  # at depth 1 and 3


# --- size: a module is split by concern before it reaches MAX_LINES (STYLE.md "split before 500") -----------------

MAX_LINES = 500
# Modules allowed over MAX_LINES for now, each with its reason (an entry here is a debt, not a permission).
LONG_MODULES: dict[str, str] = {}


SIZED_FILES = [p for p in [*BOT_FILES, *SANDBOX_FILES] if _allowed(p, ("remediations/", "sandbox/"))]


@pytest.mark.parametrize("path", SIZED_FILES, ids=_ids)
def test_no_module_is_over_the_line_limit(path):
    lines = len(path.read_text().splitlines())
    why = f"{_rel(path)} has {lines} lines; split it by concern (or list it in LONG_MODULES with its reason)"
    assert _rel(path) in LONG_MODULES or lines <= MAX_LINES, why


def test_every_long_module_exception_is_still_needed():
    stale = [rel for rel in LONG_MODULES if len((ROOT / rel).read_text().splitlines()) <= MAX_LINES]
    assert not stale, f"no longer over {MAX_LINES} lines: remove from LONG_MODULES: {stale}"
