"""Copy Microsoft's built-in definitions into tests/builtins/definitions/, unmodified, and record where each came from.

    git clone https://github.com/Azure/azure-policy /some/where
    .venv/bin/python tests/builtins/refresh.py /some/where

Takes every definition of the Key Vault and Compute folders whose `if` names a type Cryptward reads (vaults, keys
of the data plane or the management plane, disks, disk encryption sets, VMs), and every built-in id in the README's
"Azure Policy" column. Writes each file's bytes as `git show <commit>:<path>` gives them, and manifest.json with the
repository, commit, path and git blob id of each (test_builtins.py checks the blob ids: unmodified means that).
Assignments and samples beside each definition are written by hand and kept.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FOLDERS = ("Key Vault", "Compute")
TYPES = {
    t.lower()
    for t in (
        "Microsoft.KeyVault/vaults",
        "Microsoft.KeyVault.Data/vaults/keys",
        "Microsoft.KeyVault/vaults/keys",
        "Microsoft.Compute/disks",
        "Microsoft.Compute/diskEncryptionSets",
        "Microsoft.Compute/virtualMachines",
    )
}
BASE = "built-in-policies/policyDefinitions"


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout


def readme_ids() -> set[str]:
    pattern = r"policyDefinitions%2F([0-9a-f-]{36})"
    return set(re.findall(pattern, (ROOT / "README.md").read_text()))


def main(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD").decode().strip()
    paths = git(repo, "ls-tree", "-r", "--name-only", "HEAD", BASE).decode().splitlines()
    wanted = readme_ids()
    manifest: dict[str, dict[str, str]] = {}
    for path in paths:
        if not path.endswith(".json"):
            continue
        folder = path[len(BASE) + 1 :].split("/")[0]
        raw = git(repo, "show", f"HEAD:{path}")
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            continue
        name = str(doc.get("name", ""))
        rule = json.dumps(doc.get("properties", {}).get("policyRule", {}).get("if", {}))
        named = {s.lower() for s in re.findall(r'"(Microsoft\.[A-Za-z.]+/[A-Za-z/]+)"', rule)}
        if (folder in FOLDERS and named & TYPES) or name in wanted:
            target = HERE / "definitions" / name / "definition.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw)
            blob = git(repo, "rev-parse", f"HEAD:{path}").decode().strip()
            manifest[name] = {"path": path, "blob": blob, "displayName": doc["properties"].get("displayName", "")}
    out = {"repository": "Azure/azure-policy", "commit": commit, "definitions": dict(sorted(manifest.items()))}
    (HERE / "manifest.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"{len(manifest)} definitions from Azure/azure-policy at {commit}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
