"""Parts (b) and (c) of "Real Azure I/II": the engine's verdicts and plans on REAL bodies.

Each estate below is a set of recordings (tests/conformance/recordings/) served verbatim by `replay.py` to the bot's
real SDK clients; `scan` reads them as it reads Azure (sweep: the subscription's lists; event: one resource by id),
evaluates every policy under policies/, and plans. Then:

(b) every verdict equals the one Microsoft's documented rules give (`oracle.py`, written from the built-in policy
    definitions and Learn, not from Cryptward's code). Where the bot disagrees today the case is a strict xfail
    naming the issue item and the branch fixing it (`DISAGREE`): it XPASSes, and fails, once the fix is merged —
    then delete its line.
(c) the same bodies with `type` and enum values lower-cased, and with the resource-group segments of ids re-cased
    (upper <-> lower: ARM spells them either way, `TEST_VM` and `test_vm` for one group in recordings/vms/), give
    the same verdicts and the same plans (compared case-insensitively).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from remediations import fixes
from remediations.azure import Azure, CloudProfile
from remediations.changes import PlanSettings
from remediations.engine.reader import Scope
from remediations.engine.run import Report, scan
from remediations.policy.loader import Policy, load_policies
from remediations.settings import Settings
from tests.conformance import oracle, replay
from tests.conformance.test_shapes import ROOT, load

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NOW = "2026-06-01T08:00:00+00:00"

# Estates: recordings served together (same subscription, no two bodies with the same id). Lists stand for
# themselves; single GETs of vaults, sets, disks and VMs make up the collections nobody recorded (replay.py).
ESTATES: dict[str, tuple[str, ...]] = {
    # 2019-09-01 vaults of Cloud Custodian's tests: no enableRbacAuthorization, enableSoftDelete,
    # softDeleteRetentionInDays, enablePurgeProtection, publicNetworkAccess.
    "c7n-vaults": ("keyvault/c7n-vaults-list-2019-09-01.json", "keyvault/c7n-vault-get-2019-09-01-no-policies.json"),
    # 2023-02-01 vaults of the Azure CLI's tests, and a DES (system- and user-assigned identity) on the second.
    "cli-vaults": (
        "keyvault/cli-vault-get-2023-02-01.json",
        "keyvault/cli-vault-get-2023-02-01-purge-protection.json",
        "des/cli-des-get-system-and-user-assigned-2023-04-02.json",
    ),
    # A DES following its key's latest version (its vault, vault1, was never read in that recording), beside an
    # access-policy vault (2021-10-01, no enableRbacAuthorization).
    "cli-des-rotation": (
        "des/cli-des-get-auto-rotation-2022-03-02.json",
        "keyvault/cli-vault-get-2021-10-01-access-policies.json",
    ),
    # The same DES moved to vault2's key, after `az keyvault set-policy` gave its identity get/wrapKey/unwrapKey on
    # vault2 (an access-policy vault: no enableRbacAuthorization) and a Reader role on it.
    "cli-des-granted": (
        "des/cli-des-get-updated-2022-03-02.json",
        "keyvault/cli-vault-put-2021-10-01-des-access-policy.json",
        "authorization/cli-role-assignment-put-2020-04-01-preview.json",
    ),
    # The same DES with vault2 as it was before the access policy (two real bodies from one recording, put together:
    # the DES pointed at vault2 only after the grant).
    "cli-des-not-granted": (
        "des/cli-des-get-updated-2022-03-02.json",
        "keyvault/cli-vault-get-2021-10-01-access-policies.json",
        "authorization/cli-role-assignment-put-2020-04-01-preview.json",
    ),
    # Cloud Custodian's compute: disks (2024-03-02) and VMs (2024-11-01) of one subscription.
    "c7n-compute-2024": ("disks/c7n-disks-list-2024-03-02.json", "vms/c7n-vms-list-2024-11-01.json"),
    # Older answers: disks at 2018-09-30 have no `encryption` at all; a VM list at 2020-12-01.
    "c7n-compute-2018": ("disks/c7n-disks-list-2018-09-30.json", "vms/c7n-vms-list-2020-12-01.json"),
    "c7n-disk-2020": ("disks/c7n-disk-get-2020-09-30.json",),
    "c7n-vm-2019": ("vms/c7n-vm-get-2019-07-01.json",),
    "c7n-vm-2022": ("vms/c7n-vm-get-2022-11-01.json",),
    "c7n-vm-instanceview-2020": ("vms/c7n-vm-get-instanceview-2020-12-01.json",),
    # The Azure CLI's VM with encryption at host (its OS disk was not read in that recording).
    "cli-vm-encryption-at-host": ("vms/cli-vm-get-encryption-at-host-2021-03-01.json",),
    # A VM encrypted with Azure Disk Encryption (its extension's full body in resources[], encryptionSettings in its
    # instance view; its OS disk was not read) and the RBAC vault holding its secrets (2025-05-01).
    "cli-vm-ade": ("vms/cli-vm-get-ade-instanceview-2025-11-01.json", "keyvault/cli-vault-get-2025-05-01-rbac.json"),
    # The Azure CLI's disk and VM made with disk encryption sets (test_disk_encryption_set.yaml: a 2021-12-01 disk on
    # des1; a 2022-03-01 VM with des1 on its OS disk and des2, des3 on its data disks; the sets were not read there).
    "cli-disk-cmk": ("disks/cli-disk-get-cmk-2021-12-01.json",),
    "cli-vm-des": ("vms/cli-vm-get-des-2022-03-01.json",),
    # Scale sets: the Azure CLI's with encryption at host in its model (2021-03-01, Manual, no disk encryption set;
    # its instances were not read in that recording), and Cloud Custodian's list at 2019-03-01 (Manual, no
    # securityProfile).
    "cli-vmss-encryption-at-host": ("scalesets/cli-vmss-get-encryption-at-host-2021-03-01.json",),
    "c7n-vmss-2019": ("scalesets/c7n-vmss-list-2019-03-01.json",),
    # The Azure CLI's scale set with disk encryption sets on its OS and data disks (2021-11-01, Manual; its instances
    # were not read in that recording), and its Automatic one with its instances as listed (2021-11-01, no
    # securityProfile on the model or the instances).
    "cli-vmss-des": ("scalesets/cli-vmss-get-des-2021-11-01.json",),
    "cli-vmss-automatic": (
        "scalesets/cli-vmss-get-automatic-2021-11-01.json",
        "scalesets/cli-vmss-instances-list-2021-11-01.json",
    ),
}

# (estate, resource name, policy) -> why the bot disagrees with the documented rule today (strict xfail).
DISAGREE: dict[tuple[str, str, str], str] = {}

# Verdicts no documented rule decides from the body (README: "could not be verified without Azure").
UNDECIDED: list[tuple[str, str, str, str]] = []


# -- the estates, served ------------------------------------------------------------------------------------------


def recordings(estate: str) -> list[dict[str, Any]]:
    return [load(name) for name in ESTATES[estate]]


def resources(estate: str) -> list[dict[str, Any]]:
    """The recorded vaults, sets, disks and VMs of an estate (what the policies evaluate)."""
    served = replay.estate_of(recordings(estate))
    return [b for b in served.bodies.values() if str(b.get("type", "")).lower() in replay.COLLECTIONS]


@functools.cache
def policies() -> tuple[Policy, ...]:
    return tuple(load_policies(POLICIES, fixes=set(fixes.names())))


def _subscriptions(bodies: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(b["id"]).split("/")[2] for b in bodies))


_REPORTS: dict[tuple[str, str, str | None], Report] = {}  # one scan per estate, variant and path (module-wide)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from sandbox.certs import ensure_certs

    return ensure_certs(tmp_path_factory.mktemp("replay-tls"))


def run(estate: str, variant: str, certs: tuple[Path, Path, Path], resource_id: str | None = None) -> Report:
    key = (estate, variant, resource_id)
    if key not in _REPORTS:
        transform = VARIANTS[variant]
        served = replay.estate_of(recordings(estate), transform)
        subs = _subscriptions(resources(estate))
        rid = transform(resource_id) if resource_id and variant != "as recorded" else resource_id
        with replay.serving(served, certs) as url:
            profile = CloudProfile(arm_endpoint=url, ca_bundle=str(certs[0]), polling_interval=0.0)
            azure = Azure(profile, credential_factory=replay.StaticToken)
            try:
                _REPORTS[key] = scan(
                    Scope(subs),
                    policies(),
                    settings=Settings(plan=PlanSettings()),
                    azure=azure,
                    resource_id=rid,
                    now=datetime.fromisoformat(NOW),
                )
            finally:
                azure.close()
    return _REPORTS[key]


def verdicts(report: Report) -> dict[tuple[str, str], Any]:
    """(lower-cased resource id, policy id) -> True (non-compliant), False, or "unreadable"."""
    out: dict[tuple[str, str], Any] = {}
    for rid, body in report.bodies.items():
        for policy in policies():
            if policy.id in report.policy_ids and policy.applies_to(body):
                out[(rid.lower(), policy.id)] = False
    for f in report.findings:
        out[(str(f.resource["id"]).lower(), f.policy.id)] = oracle.UNREADABLE if f.unreadable else True
    return out


# -- (b) verdicts on real bodies ----------------------------------------------------------------------------------


def _swept(served: replay.Estate, body: dict[str, Any]) -> bool:
    """Whether a sweep of the body's subscription lists it (a recorded list may hold other resources only)."""
    sub, kind = str(body["id"]).split("/")[2], str(body["type"])
    status, listed = served.answer(f"/subscriptions/{sub}/providers/{kind}", {})
    return status == 200 and any(str(b["id"]).lower() == str(body["id"]).lower() for b in listed["value"])


def _cases() -> list[Any]:
    cases = []
    for estate in ESTATES:
        served = replay.estate_of(recordings(estate))
        known = oracle.Estate(served.bodies, served.assignments)
        for body in resources(estate):
            kind = str(body["type"]).lower()
            for policy in policies():
                if (policy.resource_type or "").lower() != kind:
                    continue
                expected = oracle.RULES[policy.id](body, known)
                name = str(body["name"])
                if isinstance(expected, oracle.Undecided):
                    UNDECIDED.append((estate, name, policy.id, expected.why))
                    continue
                why = DISAGREE.get((estate, name, policy.id))
                marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
                for path in ("sweep", "event") if _swept(served, body) else ("event",):
                    cases.append(
                        pytest.param(
                            path,
                            estate,
                            str(body["id"]),
                            policy.id,
                            expected,
                            id=f"{estate}:{name}:{policy.id}:{path}",
                            marks=marks,
                        )
                    )
    return cases


@pytest.mark.parametrize(("path", "estate", "resource_id", "policy_id", "expected"), _cases())
def test_verdict_on_real_body_is_azure_policys(certs, path, estate, resource_id, policy_id, expected):
    report = run(estate, "as recorded", certs, resource_id if path == "event" else None)
    got = verdicts(report).get((resource_id.lower(), policy_id))
    assert got == expected, f"{policy_id} on {resource_id}: the bot says {got}, Azure Policy's rule says {expected}"


# -- (b) plans on real bodies, where a documented rule says what the change must be --------------------------------


def _changes(report: Report, policy_id: str) -> list[dict[str, Any]]:
    return [c for c in report.plan.to_dict()["changes"] if policy_id in c["policyIds"]]


def test_key_access_on_an_access_policy_vault_is_an_access_policy(certs):
    # Learn, "Migrate from vault access policy to an Azure role-based access control permission model"
    # (https://learn.microsoft.com/azure/key-vault/general/rbac-migration): a vault uses one permission model; with
    # access policies (enableRbacAuthorization absent = false, Key Vault spec) a role assignment grants nothing on
    # the data plane. vault2 has no enableRbacAuthorization; the DES's identity needs get, wrapKey, unwrapKey there.
    (change,) = _changes(run("cli-des-not-granted", "as recorded", certs), "des-key-access")
    op = change["operation"]
    assert op["path"].lower().endswith("/vaults/vault2-000003/accesspolicies/add"), op["path"]
    (entry,) = op["body"]["properties"]["accessPolicies"]
    assert entry["objectId"] == "81c81079-df12-4e82-a59d-29e4536ce879"
    assert {k.lower() for k in entry["permissions"]["keys"]} == {"get", "wrapkey", "unwrapkey"}


def test_auto_rotation_keeps_the_versioned_key_url(certs):
    # DiskRP spec (diskRPCommon/diskEncryptionSet.json, KeyForDiskEncryptionSet.keyUrl): a fully versioned key URL
    # is required whatever rotationToLatestKeyVersionEnabled says; recorded: the Azure CLI's PUT of des-000008 with
    # the flag and a versioned URL was accepted (202), recordings/des/cli-des-get-auto-rotation-2022-03-02.json.
    (change,) = _changes(run("cli-des-granted", "as recorded", certs), "des-auto-rotation")
    body = change["operation"]["body"]["properties"]
    assert body["rotationToLatestKeyVersionEnabled"] is True
    assert body["activeKey"]["keyUrl"] == (
        "https://vault2-000003.vault.azure.net/keys/key2-000006/7e3fab73264d441b9dc39f046db54cc4"
    )


def test_no_encryption_at_host_for_a_vm_with_azure_disk_encryption(certs):
    # Learn, "Server-side encryption of Azure Disk Storage", Encryption at host, Restrictions
    # (https://learn.microsoft.com/azure/virtual-machines/disk-encryption): encryption at host can't be enabled on a
    # VM that currently or ever had Azure Disk Encryption. vm1 has the AzureDiskEncryption extension.
    for path in ("sweep", "event"):
        rid = next(str(b["id"]) for b in resources("cli-vm-ade") if b["type"] == "Microsoft.Compute/virtualMachines")
        report = run("cli-vm-ade", "as recorded", certs, rid if path == "event" else None)
        assert not _changes(report, "vm-encryption-at-host"), path


def test_a_real_instance_list_is_read_and_an_automatic_scale_set_is_left_to_its_owner(certs):
    # Recorded (scalesets/cli-vmss-instances-list-2021-11-01.json): Azure lists each instance with
    # latestModelApplied and, its model naming no encryption at host, no securityProfile: the reader keeps both
    # instances as not known to be encrypted at host. The upgrade policy is Automatic: a model change would make
    # Azure restart the instances itself (Learn, "Upgrade policies for Virtual Machine Scale Sets"): nothing is
    # planned for encryption at host (here the unrecorded policy exemptions stop the plan first; the refusal for
    # an upgrade policy that is not Manual is the policy's rolling-upgrade sample's).
    report = run("cli-vmss-automatic", "as recorded", certs)
    (vmss,) = [b for b in report.bodies.values() if b["type"] == "Microsoft.Compute/virtualMachineScaleSets"]
    assert vmss["cryptward"]["instances"] == [
        {"instanceId": "0", "name": "vrfvmss_0", "latestModelApplied": True, "encryptionAtHost": None},
        {"instanceId": "1", "name": "vrfvmss_1", "latestModelApplied": True, "encryptionAtHost": None},
    ]
    assert not _changes(report, "vmss-encryption-at-host")
    assert any(s["policyId"] == "vmss-encryption-at-host" for s in report.plan.to_dict()["skipped"])


def test_nothing_is_planned_on_what_was_not_recorded(certs):
    # Locks and diagnostic settings were never recorded: the bot plans no lock and no diagnostic setting.
    for estate in ("c7n-vaults", "cli-vaults", "cli-des-granted"):
        report = run(estate, "as recorded", certs)
        assert not _changes(report, "kv-delete-lock") and not _changes(report, "kv-diagnostic-setting"), estate
        skipped = {(s["policyId"], s["reason"]) for s in report.plan.to_dict()["skipped"]}
        assert ("kv-delete-lock", "cannot-read") in skipped, estate


# -- (c) casing variants ------------------------------------------------------------------------------------------

# Enum-valued keys (their values are Azure enums: ARM compares them case-insensitively) and `type`.
ENUM_KEYS = {
    "type",
    "encryptiontype",
    "publicnetworkaccess",
    "networkaccesspolicy",
    "defaultaction",
    "bypass",
    "createoption",
    "ostype",
    "caching",
    "storageaccounttype",
    "principaltype",
    "createmode",
    "provisioningstate",
    "level",
    "kty",
    "securitytype",
}
_GROUP = re.compile(r"(?i)(/resourcegroups/)([^/]+)")


def _walk(node: Any, on_str: Callable[[str, str], str], key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, on_str, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, on_str, key) for v in node]
    return on_str(key, node) if isinstance(node, str) else node


def _lower_enums(key: str, value: str) -> str:
    return value.lower() if key.lower() in ENUM_KEYS else value


def _recase_groups(key: str, value: str) -> str:
    def recase(m: re.Match[str]) -> str:
        group = m.group(2)
        return m.group(1) + (group.lower() if group.isupper() else group.upper())

    return _GROUP.sub(recase, value)


VARIANTS: dict[str, Callable[[Any], Any]] = {
    "as recorded": lambda body: body,
    "enums lower-cased": lambda body: _walk(body, _lower_enums),
    "resource groups re-cased": lambda body: _walk(body, _recase_groups),
}


def _plan_text(report: Report) -> str:
    plan = report.plan.to_dict()
    for change in plan["changes"]:
        change.pop("id", None)
    return json.dumps(plan, sort_keys=True).lower()


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "as recorded"])
@pytest.mark.parametrize("estate", list(ESTATES))
def test_casing_variant_gives_the_same_verdicts_and_plan(certs, estate, variant):
    assert any(VARIANTS[variant](r["body"]) != r["body"] for r in recordings(estate)), "the variant changes nothing"
    want, got = run(estate, "as recorded", certs), run(estate, variant, certs)
    assert verdicts(got) == verdicts(want)
    assert _plan_text(got) == _plan_text(want)


def test_every_estate_names_recordings_that_exist():
    for estate, names in ESTATES.items():
        for name in names:
            assert (ROOT / name).exists(), (estate, name)
