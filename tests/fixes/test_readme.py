"""remediations/fixes/README.md, the checklist for adding a fix, stays true.

Its example (the files it names, each followed by its contents) is written into a temporary folder as the steps
say; the fix registers with the real registry, the policy loads with the real loader, and the samples pass the
checks of tests/test_policy_samples.py. Every path, `path::test`, name and command the page cites exists, and the
rules its steps state hold for the real fixes: FIX_MODULES lists every fix module, the role grants every write an
expected plan makes, the end-to-end test names every fix.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediations import fixes
from remediations.policy.loader import load_policies
from remediations.report.text import policy_table
from sandbox import arm, rbac
from tests.test_policy_samples import check_both_kinds, check_expected_plan, check_sample

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "remediations" / "fixes" / "README.md"
TEXT = README.read_text(encoding="utf-8")
ROLE = json.loads((ROOT / "infra" / "cryptward-role.json").read_text())

# "`path`:" on a line of its own, then a fenced block: a file of the example and its contents.
EXAMPLE_FILE = re.compile(r"^`([^`\n]+)`:\n+```\w+\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXAMPLE = dict(EXAMPLE_FILE.findall(TEXT))
TOKENS = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", TEXT, flags=re.MULTILINE | re.DOTALL))
COMMANDS = [
    line
    for block in re.findall(r"^```sh\n(.*?)^```", TEXT, re.MULTILINE | re.DOTALL)
    for line in block.splitlines()
    if line.strip()
]


def _identifiers(path: Path) -> set[str]:
    """Every name a Python file defines or uses."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def _example_dir(rel: str) -> bool:
    """`rel` is a file of the example, or a folder holding one."""
    return any(f == rel or f.startswith(rel.rstrip("/") + "/") for f in EXAMPLE)


@pytest.fixture
def example(tmp_path: Path) -> Iterator[tuple[Path, set[str]]]:
    """The example's files written under `tmp_path`, its fix module imported (so registered) as a module of
    remediations.fixes; the fixes it registered. Both are forgotten afterwards."""
    for rel, body in EXAMPLE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    modules = [rel for rel in EXAMPLE if rel.startswith("remediations/fixes/") and rel.endswith(".py")]
    assert len(modules) == 1, f"the example has one fix module, not {modules}"
    name = "remediations.fixes." + Path(modules[0]).stem
    spec = importlib.util.spec_from_file_location(name, tmp_path / modules[0])
    assert spec is not None and spec.loader is not None
    before = set(fixes.names())
    try:
        module = sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield tmp_path, set(fixes.names()) - before
    finally:
        for added in set(fixes.names()) - before:
            fixes.unregister(added)
        sys.modules.pop(name, None)


def test_the_example_is_new_to_the_repository():
    assert EXAMPLE, "the README shows no example files (`path`: then a fenced block)"
    assert not [rel for rel in EXAMPLE if (ROOT / rel).exists()], "the example must not be a real policy or fix"


def test_the_example_followed_step_by_step_is_a_working_policy_and_fix(example):
    where, registered = example
    # Step 3: importing the module registers one fix, by the name the policy gives.
    assert len(registered) == 1, f"importing the example's module registered {sorted(registered)}"
    # Step 1: the real loader, with the real registry, loads the policy and its fix.
    (policy,) = load_policies(where / "policies")
    assert policy.fix is not None and policy.fix.name in registered
    # Step 2: the samples pass the same checks as every policy folder's.
    folder = policy.source.parent
    check_both_kinds(folder)
    samples = sorted(folder.glob("samples/*/*.json"))
    for sample in samples:
        check_sample(sample, lambda: policy)
    noncompliant = [s for s in samples if s.parent.name == "noncompliant"]
    assert noncompliant
    for sample in noncompliant:
        check_expected_plan(sample, policy)
    # Step 4: the role already grants the example's writes, and the page names them.
    for action, data in _writes(folder):
        assert action.lower() in {a.lower() for a in ROLE["dataActions" if data else "actions"]}, action
        assert f"`{action}`" in TEXT
    # Step 6: the README's table generator takes it.
    assert f"| `{policy.id}` | {policy.title} |" in policy_table([policy])


def _writes(folder: Path) -> list[tuple[str, bool]]:
    """The RBAC (action, is a data action) of every write in a policy folder's expected plans, named as the sandbox
    names them (sandbox/rbac.py follows Azure's operations list)."""
    out = []
    for plan in sorted(folder.glob("samples/expected-plan/*.json")):
        for change in json.loads(plan.read_text())["changes"]:
            op = change["operation"]
            method, path = op["method"], op["path"]
            if op["plane"] == "keyvault":
                kinds = {("PUT", "rotationpolicy"): "set_rotation_policy", ("POST", "rotate"): "rotate"}
                kind = kinds.get((method, path.rstrip("/").rsplit("/", 1)[-1].lower()))
                assert kind, f"{plan}: teach this test the data action of {method} {path}"
                out.append((rbac.DATA_ACTIONS[kind], True))
            else:
                parsed = arm.parse_path(path, method)
                verb = "POST" if parsed.kind == "action" else method
                out.append((rbac.action_for(verb, parsed.type, parsed.action), False))
    return out


REAL_POLICIES = sorted({p.parents[2] for p in (ROOT / "policies").glob("*/samples/expected-plan/*.json")})


@pytest.mark.parametrize("folder", REAL_POLICIES, ids=lambda p: p.name)
def test_the_role_grants_every_write_of_every_expected_plan(folder):
    missing = [a for a, data in _writes(folder) if a.lower() not in {x.lower() for x in ROLE[_key(data)]}]
    assert not missing, f"infra/cryptward-role.json lacks {missing}, which {folder.name}'s fix writes with"


def _key(data: bool) -> str:
    return "dataActions" if data else "actions"


def test_fix_modules_lists_every_fix_module():
    """Step 3's 'add it to FIX_MODULES': only the modules listed there are imported, so a fix left out of it would
    never be registered."""
    files = {p.stem for p in (ROOT / "remediations" / "fixes").glob("*.py") if p.name != "__init__.py"}
    assert set(fixes.FIX_MODULES) == files


def test_the_end_to_end_test_names_every_fix():
    text = (ROOT / "tests" / "engine" / "test_run.py").read_text()
    assert not [name for name in fixes.names() if f'"{name}"' not in text]


def test_every_path_the_readme_names_exists():
    tops = {p.name for p in ROOT.iterdir()}
    checked = 0
    for token in TOKENS:
        rel = token.split("::")[0]
        if rel.split("/")[0] not in tops or " " in rel or _example_dir(rel):
            continue
        if "<" in rel:  # a template: the folder holding the first placeholder exists
            rel = rel[: rel.rfind("/", 0, rel.index("<")) + 1]
        assert (ROOT / rel).exists(), f"README names {token}, which does not exist"
        if "::" in token:
            assert token.split("::")[1] in _identifiers(ROOT / rel), f"README names {token}, which does not exist"
        checked += 1
    assert checked >= 15


def test_every_name_the_readme_places_in_a_file_is_there():
    """What the page says is where: `A`, `B` and `C` are in `path`; `X` in `path`; `f(...)` (from `module`)."""
    listed = re.findall(r"((?:`\w+`(?:, | and ))*`\w+`),? (?:are )?in `([\w/.]+\.py)`", TEXT)
    places = [(name, path) for names, path in listed for name in re.findall(r"`(\w+)`", names)]
    modules = re.findall(r"`@?(\w+)[^`]*` \(from `([\w.]+)`", TEXT)
    assert len(places) >= 6 and len(modules) >= 2
    for name, path in places:
        assert name in _identifiers(ROOT / path), f"README says {name} is in {path}; it is not"
    for name, module in modules:
        assert hasattr(importlib.import_module(module), name), f"README says {name} is in {module}; it is not"


def test_every_module_and_name_the_readme_cites_imports():
    cited = [t.split("(")[0] for t in TOKENS if re.match(r"^remediations(\.\w+)+", t)]
    assert len(cited) >= 4
    for dotted in cited:
        _resolve(dotted)


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:end]))
        except ModuleNotFoundError:
            continue
        for attr in parts[end:]:
            found = getattr(found, attr)
        return found
    raise AssertionError(f"README cites {dotted}, which does not import")


def test_every_command_the_readme_gives_runs_what_exists():
    assert COMMANDS
    for line in COMMANDS:
        for command in line.split("&&"):
            words = shlex.split(command)
            tool = Path(words[0])
            assert tool.parts[:2] == (".venv", "bin"), f"{command}: commands run the project's .venv"
            assert (Path(sys.executable).parent / tool.name).exists(), f"{command}: no {tool.name} in the venv"
            script = next((w for w in words[1:] if w.endswith(".py") and not w.startswith("-")), None)
            for word in words[1:]:
                if "/" in word or word.endswith(".py"):
                    assert (ROOT / word).exists(), f"{command}: {word} does not exist"
                elif word.startswith("--") and script and words[1] == script:
                    assert word in (ROOT / script).read_text(), f"{command}: {script} takes no {word}"


def test_the_policy_fields_the_steps_name_are_the_schemas():
    """Step 1 names the policy fields a fix needs; the schema has them and the loader reads policy.yaml."""
    from remediations.policy import loader, schema

    for field in ("fix", "mode", "irreversible", "parameters", "if", "references"):
        assert field in schema.SCHEMA["properties"]
    assert set(schema.MODES) == {"audit", "approve", "remediate"}
    assert (loader.POLICY_FILE, loader.DEFINITION_FILE) == ("policy.yaml", "definition.json")
