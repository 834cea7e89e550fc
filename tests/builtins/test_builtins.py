"""Microsoft's built-in definitions, unmodified, through Cryptward's loader: how many load, why the others do not,
and whether the ones that load decide as Azure Policy does on compliant and non-compliant bodies.

`definitions/<id>/definition.json` is the file of Azure/azure-policy named in manifest.json (checked by git blob id),
`assignment.json` beside it gives the required parameters, `samples/{compliant,noncompliant}/*.json` are bodies
whose verdict is written from Azure Policy's documented semantics (not from what Cryptward answers). A sample is an
ARM GET body (a key's management-plane body for the `Microsoft.KeyVault.Data` definitions, which evaluate it as the
data plane presents it), or `{"$from": <repo path of a recording, a spec example or a sample>,
"$set": {dotted.path: value}, "$unset": [...],
"$related": [related resources an existence check would find]}`.
"""

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from remediations.policy.loader import Policies, load_policies

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFINITIONS = HERE / "definitions"
MANIFEST = json.loads((HERE / "manifest.json").read_text())

# How many of the definitions load. Recorded: it must not go down (raise it when more load).
LOADS = 41

# Each definition that does not load, with what it needs that Cryptward does not have yet.
EXPECTED_REFUSALS: dict[str, str] = {}

# Verdicts Cryptward does not reach yet, each with the reason (strict xfails: fixing one fails until its line goes).
KNOWN_GAPS: dict[str, str] = {}


def blob_id(data: bytes) -> str:
    """The git blob id of `data`: equal to the manifest's means byte for byte the file at that commit."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's object id, not a security use


@cache
def loaded() -> Policies:
    return load_policies(DEFINITIONS, fixes=[])


def test_every_definition_is_unmodified_with_its_source():
    assert MANIFEST["repository"] == "Azure/azure-policy" and re.fullmatch("[0-9a-f]{40}", MANIFEST["commit"])
    folders = {d.name for d in DEFINITIONS.iterdir() if d.is_dir()}
    assert folders == set(MANIFEST["definitions"])
    for name, source in MANIFEST["definitions"].items():
        data = (DEFINITIONS / name / "definition.json").read_bytes()
        assert blob_id(data) == source["blob"], f"{name} differs from {source['path']} at {MANIFEST['commit']}"
        assert json.loads(data)["name"] == name


def test_the_readme_azure_policy_column_is_covered():
    readme = (ROOT / "README.md").read_text()
    column = set(re.findall(r"policyDefinitions%2F([0-9a-f-]{36})", readme))
    assert column and column <= set(MANIFEST["definitions"])


def test_how_many_load_and_why_the_others_do_not():
    policies = loaded()
    total = len(MANIFEST["definitions"])
    print(f"\n{len(policies)} of {total} built-in definitions load; refused: {len(policies.refused)}")
    for refused in policies.refused:
        print(f"  {refused}")
    assert len(policies) >= LOADS, "fewer built-ins load than recorded"
    reasons = {r.id: " ".join(p.message for p in r.problems) for r in policies.refused}
    assert set(reasons) == set(EXPECTED_REFUSALS), "refused definitions changed: update EXPECTED_REFUSALS"
    for name, reason in reasons.items():
        assert EXPECTED_REFUSALS[name] in reason, f"{name}: {reason}"
    assert len(policies) + len(policies.refused) == total


def resolve(sample: Path) -> dict[str, Any]:
    doc = json.loads(sample.read_text())
    if "$from" not in doc:
        return doc
    source = json.loads((ROOT / doc["$from"]).read_text())
    if "responses" in source:  # an example of azure-rest-api-specs: its 200 answer
        source = source["responses"]["200"]["body"]
    body = json.loads(json.dumps(source.get("body", source) if "source" in source else source))
    for path, value in doc.get("$set", {}).items():
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    for path in doc.get("$unset", []):
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target.get(key, {})
        target.pop(last, None)
    return body


SAMPLES = sorted(DEFINITIONS.glob("*/samples/*/*.json"))


def test_every_definition_that_loads_has_samples():
    with_samples = {s.parents[2].name for s in SAMPLES}
    missing = [p.id for p in loaded() if p.id not in with_samples]
    assert not missing


@pytest.mark.parametrize(
    "sample",
    [
        pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[key]))
        if (key := f"{s.parents[2].name[:8]}/{s.parent.name}/{s.stem}") in KNOWN_GAPS
        else s
        for s in SAMPLES
    ],
    ids=lambda s: f"{s.parents[2].name[:8]}/{s.parent.name}/{s.stem}",
)
def test_a_sample_gets_azures_verdict(sample):
    by_id = {p.id: p for p in loaded()}
    policy = by_id.get(sample.parents[2].name)
    if policy is None:
        pytest.skip(f"{sample.parents[2].name} does not load: {EXPECTED_REFUSALS[sample.parents[2].name]}")
    assert sample.parent.name in ("compliant", "noncompliant")
    expected = sample.parent.name == "noncompliant"
    related = json.loads(sample.read_text()).get("$related", []) if policy.existence else None
    assert policy.noncompliant(resolve(sample), now=None, related=related) is expected
