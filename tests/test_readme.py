"""The README stays true: its policy table is the one generated from policies/, its settings table names every
setting the code and local.settings.json know, and a new user runs exactly two commands."""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "scripts"))

import policy_table  # noqa: E402


def section(title: str) -> str:
    """The README's text under `## title`, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def settings_table() -> set[str]:
    names: set[str] = set()
    for line in section("App settings").splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Za-z_<>]+)`", line.split("|")[1]))
    return names


def test_the_policy_table_is_the_generated_one():
    _, found, rest = README.partition(policy_table.START)
    assert found, f"README.md has no {policy_table.START} marker"
    current = rest.partition(policy_table.END)[0].lstrip("\n")
    assert current == policy_table.table(), (
        "README.md's policy table is out of date with policies/: run `.venv/bin/python scripts/policy_table.py --write`"
    )
    assert "What it checks" in README[: README.index(policy_table.START)]


def test_every_local_setting_is_in_the_settings_table():
    values = json.loads((ROOT / "local.settings.json").read_text())["Values"]
    missing = sorted(set(values) - settings_table())
    assert not missing, f"README.md's 'App settings' table lacks {missing}"


def test_every_setting_the_code_reads_is_in_the_settings_table():
    code = "".join(p.read_text() for p in [ROOT / "function_app.py", *(ROOT / "remediations").rglob("*.py")])
    bindings = (ROOT / "function_app.py").read_text()  # %NAME% in a trigger binding is an app setting
    read = set(re.findall(r"\b(CRYPTWARD_[A-Z_]*[A-Z])\b", code)) | set(re.findall(r"%([A-Z_]+)%", bindings))
    read |= {"AzureWebJobsStorage", "AZURE_CLIENT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_MANAGER_ENDPOINT"}
    table = settings_table()
    prefixes = {n.split("<")[0] for n in table if "<" in n}  # CRYPTWARD_DEST_<NAME>_URL covers CRYPTWARD_DEST_...
    missing = sorted(n for n in read if n not in table and not any(n.startswith(p) for p in prefixes))
    assert not missing, f"README.md's 'App settings' table lacks {missing}"


def test_a_new_user_runs_exactly_make_demo_and_make_test():
    block = re.search(r"```sh\n(.*?)```", section("Try it"), re.DOTALL)
    assert block, "the 'Try it' section has no sh block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]
    assert commands == ["make demo", "make test"]


def test_the_new_sections_come_after_try_it_in_order():
    headings = re.findall(r"^## (.+)$", README, re.MULTILINE)
    wanted = ["Try it", "What it checks", "How it works", "Safety model", "Compliance report"]
    assert headings[: len(wanted)] == wanted
    assert headings.index("Compared with Azure Policy and Cloud Custodian") < headings.index("App settings")
    assert "docs/report-example.png" in section("Compliance report")
    assert (ROOT / "docs" / "report-example.png").stat().st_size > 50_000
