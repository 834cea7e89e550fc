"""Cryptward policies with a built-in twin (`references.azurePolicy`) run with the twin on the Cryptward policy's own
samples: they agree, or the difference is listed here with why (Cryptward stricter, or a gap of Cryptward's)."""

import json
from functools import cache
from pathlib import Path

import pytest

from remediations.errors import ConditionError
from remediations.policy.loader import load_policies
from tests.builtins.test_builtins import DEFINITIONS

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"

STRICTER = "Cryptward is stricter"
DIFFERENCES = {
    "disk-cmk/noncompliant/double-encrypted": f"{STRICTER}: it wants the disk on its CMK-only encryption set; the "
    "built-in accepts any disk encryption set, double encryption included",
    "kv-diagnostic-setting/compliant/settings-not-read": "neither judges settings it could not read: the built-in's "
    "existence check cannot be evaluated, the Cryptward policy's `exists: true` guard does not hold",
    "kv-diagnostic-setting/noncompliant/storage-account-only": f"{STRICTER}: it wants the audit logs in Log "
    "Analytics; the built-in accepts enabled logs sent anywhere (here a storage account without retention)",
    "kv-diagnostic-setting/noncompliant/five-settings-elsewhere": f"{STRICTER}: it wants the audit logs in Log "
    "Analytics; the built-in accepts enabled logs sent anywhere (here five settings to storage accounts)",
    "kv-diagnostic-setting/noncompliant/other-category-to-workspace": f"{STRICTER}: it wants the audit events "
    "(AuditEvent, or a group holding it); the built-in accepts any enabled log category (here "
    "AzurePolicyEvaluationDetails alone)",
    "key-rotation-policy/compliant/not-used-by-disks": "different scope: Cryptward judges the keys disk encryption "
    "sets use (it rotates those); the built-in judges every key of the vault",
    "key-rsa-size/noncompliant/ec-key-for-disks": f"{STRICTER}: a disk encryption set takes RSA keys only; the "
    "built-in judges the size of RSA keys and leaves EC keys to another definition",
    "kv-network-access/noncompliant/private-endpoint-pending": f"{STRICTER}: it wants public access off; the "
    "built-in accepts a firewall that denies by default",
    "kv-network-access/noncompliant/public-with-firewall": f"{STRICTER}: as above",
    "kv-rbac-authorization/compliant/rbac-not-returned": "Cryptward does not judge an absent enableRbacAuthorization "
    "(its default depends on the api-version the vault was made with); the built-in calls absent non-compliant",
    "kv-required-tags/noncompliant/environment-missing": "different parameters: Cryptward requires several tags, the "
    "built-in's assignment here names one (owner)",
    "kv-soft-delete-retention/noncompliant/retention-7-days": f"{STRICTER}: it also wants the full 90-day retention; "
    "the built-in only wants soft delete on",
}


def verdict(policy, body) -> bool | None:
    """The policy's verdict; for an existence check, over the diagnostic settings the reader put in the body (as the
    engine does), and None when they were not read."""
    related = None
    if policy.existence is not None:
        related = body.get("cryptward", {}).get("diagnosticSettings")
    try:
        return policy.noncompliant(body, related=related)
    except ConditionError:
        return None


@cache
def twins() -> dict[str, object]:
    builtins = {p.id: p for p in load_policies(DEFINITIONS, fixes=[])}
    ours = load_policies(POLICIES)
    return {p.id: (p, builtins[p.references.azure_policy]) for p in ours if p.references.azure_policy in builtins}


def cases() -> list[tuple[str, Path]]:
    found = []
    for folder in sorted(POLICIES.iterdir()):
        if (folder / "policy.yaml").is_file():
            found += [(folder.name, s) for s in sorted(folder.glob("samples/*compliant/*.json"))]
    return found


def test_twins_exist():
    assert len(twins()) >= 9


@pytest.mark.parametrize(("policy_id", "sample"), cases(), ids=lambda c: c if isinstance(c, str) else c.stem)
def test_a_twin_agrees_or_the_difference_is_explained(policy_id, sample):
    if policy_id not in twins():
        pytest.skip("no built-in twin that loads")
    ours, builtin = twins()[policy_id]
    body = json.loads(sample.read_text())
    key = f"{policy_id}/{sample.parent.name}/{sample.stem}"
    agree = ours.noncompliant(body) == verdict(builtin, body)
    assert agree != (key in DIFFERENCES), DIFFERENCES.get(key, f"{key}: the twin {builtin.id} decides otherwise")
