"""Every policy's samples: its `if` holds for each non-compliant sample and for no compliant one, and each
non-compliant sample of a policy with a fix plans exactly what its `samples/expected-plan/<sample>.json` says.

New policy folders are picked up automatically: policies/<id>/samples/{compliant,noncompliant}/*.json. The plan is
made by the real planner with a `PlanContext` from `samples/context.json` (`now`, `caller`, `settings`, related
`resources`, and `mode` to plan the fix of an audit-mode policy as if opted in).
"""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from remediations import fixes
from remediations.changes import PlanContext
from remediations.engine.planner import Finding, plan
from remediations.policy.loader import Policy, load_policies

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
SAMPLES = sorted(POLICIES.glob("*/samples/*/*.json"))
KINDS = {"compliant": False, "noncompliant": True, "expected-plan": None}
DEFAULT_CONTEXT = {"now": "2026-06-01T08:00:00Z"}

# Fixes named by policies whose modules are still being written; drop a name once its fix is registered.
PENDING_FIXES: set[str] = set()


@cache
def policies_by_folder() -> dict[str, Policy]:
    loaded = load_policies(POLICIES, fixes={*fixes.names(), *PENDING_FIXES})
    return {policy.source.parent.name: policy for policy in loaded}


def planned(folder: Path, resource: dict[str, Any], policy: Policy | None = None) -> dict[str, Any]:
    """The plan for one finding, as JSON without change ids (they are hashes; their stability is tested apart).
    `policy` defaults to the one loaded from `folder` under policies/."""
    context_file = folder / "samples" / "context.json"
    doc = json.loads(context_file.read_text()) if context_file.exists() else DEFAULT_CONTEXT
    finding = Finding(policy or policies_by_folder()[folder.name], resource, mode=doc.get("mode"))
    result = plan([finding], PlanContext.from_dict(doc)).to_dict()
    for change in result["changes"]:
        del change["id"]
    return result


def check_sample(sample: Path, policy: Callable[[], Policy]) -> None:
    """One sample file of a policy folder holds what its folder says (`policy` loads the folder's policy)."""
    kind = sample.parent.name
    assert kind in KINDS, f"samples go in compliant/, noncompliant/ or expected-plan/, not {kind}/"
    if kind == "expected-plan":
        assert (sample.parents[1] / "noncompliant" / sample.name).exists(), (
            f"{sample.name} names no noncompliant sample"
        )
        return
    resource = json.loads(sample.read_text())
    assert policy().applies_to(resource), (
        f"{sample.name} is a {resource.get('type')}, the policy is for {policy().resource_type}"
    )
    assert policy().noncompliant(resource) is KINDS[kind]


def check_expected_plan(sample: Path, policy: Policy | None = None) -> None:
    """A non-compliant sample of a policy with a fix plans exactly its `samples/expected-plan/<sample>.json`."""
    expected_file = sample.parents[1] / "expected-plan" / sample.name
    assert expected_file.exists(), f"a policy with a fix needs samples/expected-plan/{sample.name}"
    got = planned(sample.parents[2], json.loads(sample.read_text()), policy)
    assert got == json.loads(expected_file.read_text())


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_sample(sample: Path):
    check_sample(sample, lambda: policies_by_folder()[sample.parents[2].name])


NONCOMPLIANT_WITH_FIX = [
    s for s in SAMPLES if s.parent.name == "noncompliant" and policies_by_folder()[s.parents[2].name].fix is not None
]


@pytest.mark.parametrize("sample", NONCOMPLIANT_WITH_FIX, ids=lambda p: str(p.relative_to(POLICIES)))
def test_expected_plan(sample: Path):
    check_expected_plan(sample)


def check_both_kinds(folder: Path) -> None:
    kinds = {p.parent.name for p in (folder / "samples").glob("*/*.json")}
    assert {"compliant", "noncompliant"} <= kinds, folder.name


def test_every_policy_has_both_kinds_of_sample():
    for folder in policies_by_folder():
        check_both_kinds(POLICIES / folder)


# Enum values, types and ids are case-insensitive in ARM: real answers spell them either way.
_ENUMS = {"type", "encryptiontype", "publicnetworkaccess", "defaultaction", "createoption", "ostype", "level", "kty"}


def _lowered(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _lowered(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_lowered(v, key) for v in node]
    return node.lower() if isinstance(node, str) and key.lower() in _ENUMS else node


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if s.parent.name != "expected-plan"], ids=lambda p: str(p.relative_to(POLICIES))
)
def test_lower_cased_enums_and_types_give_the_same_verdict_and_plan(sample: Path):
    policy = policies_by_folder()[sample.parents[2].name]
    body = json.loads(sample.read_text())
    lowered = _lowered(body)
    assert policy.noncompliant(lowered) is policy.noncompliant(body)
    if sample.parent.name == "noncompliant" and policy.fix is not None:
        got, want = planned(sample.parents[2], lowered), planned(sample.parents[2], body)
        assert json.dumps(got, sort_keys=True).lower() == json.dumps(want, sort_keys=True).lower()
