"""Print the README's "What it checks" table, generated from policies/, and under it the CIS recommendation each id
names, or why a policy has none (policies/cis.yaml); `--write` puts both into README.md between
`<!-- policies:start -->` and `<!-- policies:end -->`. tests/test_readme.py checks the README holds exactly this.

    .venv/bin/python scripts/policy_table.py            # print it
    .venv/bin/python scripts/policy_table.py --write    # update README.md
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.policy.loader import load_policies  # noqa: E402
from remediations.report.text import policy_table  # noqa: E402

START, END = "<!-- policies:start -->", "<!-- policies:end -->"


CIS_FILE = ROOT / "policies" / "cis.yaml"


def cis_data() -> dict[str, Any]:
    return yaml.safe_load(CIS_FILE.read_text(encoding="utf-8"))


def cis_notes(data: dict[str, Any]) -> str:
    """The CIS ids' titles and the reasons for "—", one line per policy, with the benchmark and where it was read."""
    src, also = data["source"], data["also_checked"]
    lines = [
        f"CIS ids: {data['benchmark']}, as transcribed in {src['repository']} `{src['path']}` at `{src['commit']}`"
        f" (the numbers below are unchanged in v6.0.0, `{also['path']}` at `{also['commit']}`); kept in"
        " `policies/cis.yaml`.",
        "",
    ]
    for pid, entry in sorted(data["policies"].items()):
        if "ids" in entry:
            text = "; ".join(f"{n} {title}" for n, title in entry["ids"].items())
        else:
            text = f"— {entry['none']}"
        lines.append(f"- `{pid}`: {text}")
    return "\n".join(lines) + "\n"


def table() -> str:
    return policy_table(load_policies(ROOT / "policies")) + "\n" + cis_notes(cis_data())


def replaced(readme: str, text: str) -> str:
    """`readme` with the text between the markers replaced by `text`."""
    head, found, rest = readme.partition(START)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return f"{head}{START}\n{text}{END}{tail}"


def main(argv: list[str]) -> int:
    text = table()
    if "--write" not in argv:
        sys.stdout.write(text)
        return 0
    readme = ROOT / "README.md"
    readme.write_text(replaced(readme.read_text(encoding="utf-8"), text), encoding="utf-8")
    print("README.md: policy table updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
