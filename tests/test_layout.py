"""Boundaries the design holds to: the bot never imports the sandbox; only one module imports SDK clients."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


BOT_FILES = sorted([ROOT / "function_app.py", *(ROOT / "remediations").rglob("*.py")])


@pytest.mark.parametrize("path", BOT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_bot_never_imports_the_sandbox(path):
    assert not any(name == "sandbox" or name.startswith("sandbox.") for name in _imports(path))


def test_sandbox_never_imports_the_bot():
    for path in (ROOT / "sandbox").rglob("*.py"):
        names = _imports(path)
        assert not any(n == "remediations" or n.startswith("remediations.") for n in names), path
        assert "function_app" not in names, path
