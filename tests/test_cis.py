"""Every policy's CIS id is the one policies/cis.yaml gives, read from a named benchmark version and source, and a
policy without one says why."""

import re
import sys
from pathlib import Path

from remediations.policy.loader import load_policies

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import policy_table  # noqa: E402

DATA = policy_table.cis_data()
POLICIES = {p.id: p for p in load_policies(ROOT / "policies")}


def test_every_policy_and_only_they_are_in_cis_yaml():
    assert set(DATA["policies"]) == set(POLICIES)


def test_the_benchmark_is_v5_or_later_with_its_source_pinned():
    assert DATA["benchmark"].endswith(f"v{DATA['version']}")
    assert int(DATA["version"].split(".")[0]) >= 5
    for source in (DATA["source"], DATA["also_checked"]):
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])


def test_each_policy_carries_the_ids_cis_yaml_gives_or_a_reason_for_none():
    for pid, entry in DATA["policies"].items():
        cis = POLICIES[pid].references.cis
        assert ("ids" in entry) != ("none" in entry), pid
        if "none" in entry:
            assert cis is None and entry["none"].strip(), pid
            continue
        assert all(re.fullmatch(r"\d+(\.\d+)+", n) and title for n, title in entry["ids"].items()), pid
        assert cis == f"CIS Azure {DATA['version']} " + ", ".join(entry["ids"]), pid
