"""Print the README's "What it checks" table, generated from policies/; `--write` puts it into README.md between
`<!-- policies:start -->` and `<!-- policies:end -->`. tests/test_readme.py checks the README holds exactly this.

    .venv/bin/python scripts/policy_table.py            # print it
    .venv/bin/python scripts/policy_table.py --write    # update README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.policy.loader import load_policies  # noqa: E402
from remediations.report.text import policy_table  # noqa: E402

START, END = "<!-- policies:start -->", "<!-- policies:end -->"


def table() -> str:
    return policy_table(load_policies(ROOT / "policies"))


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
