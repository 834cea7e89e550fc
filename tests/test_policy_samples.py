"""Every policy's samples: its `if` holds for each non-compliant sample and for no compliant one.

New policy folders are picked up automatically: policies/<id>/samples/{compliant,noncompliant}/*.json.
"""

import json
from functools import cache
from pathlib import Path

import pytest

from remediations import fixes
from remediations.policy import Policy, load_policies

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
SAMPLES = sorted(POLICIES.glob("*/samples/*/*.json"))
KINDS = {"compliant": False, "noncompliant": True}

# Fixes named by policies whose modules are still being written; drop a name once its fix is registered.
PENDING_FIXES = {"kv-purge-protection"}


@cache
def policies_by_folder() -> dict[str, Policy]:
    loaded = load_policies(POLICIES, fixes={*fixes.names(), *PENDING_FIXES})
    return {policy.source.parent.name: policy for policy in loaded}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_sample(sample: Path):
    folder, kind = sample.parents[2].name, sample.parent.name
    assert kind in KINDS, f"samples go in compliant/ or noncompliant/, not {kind}/"
    policy = policies_by_folder()[folder]
    resource = json.loads(sample.read_text())
    assert policy.applies_to(resource), (
        f"{sample.name} is a {resource.get('type')}, the policy is for {policy.resource_type}"
    )
    assert policy.noncompliant(resource) is KINDS[kind]
