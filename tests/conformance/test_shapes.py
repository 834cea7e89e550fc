"""Part (a) of "Real Azure I/II": for every recorded Azure answer under recordings/, the sandbox's answer to the same
request (same path shape, same api-version) has the same shape: keys present and absent, value types, null vs
absent, casing of keys and of enum-like values (shapes.py).

How a recording is replayed (`observe`, in observe.py):
1. its resources are made in the sandbox through ARM as the admin (in-process `sandbox.scenarios.arm`, the same
   handler HTTP uses) from the recorded bodies themselves: read-only fields dropped, the recorded subscription and
   tenant replaced by the sandbox's, a DES's key made in the sandbox first (its versioned URL replaces the recorded
   one). Creation uses the sandbox's default api-version for the type (the write is not under test);
2. the recorded request is sent over HTTPS with a bearer token at the RECORDED api-version;
3. the two bodies' shapes are compared.

`KNOWN` is the worklist: every difference the sandbox shows today, each with a one-line reason. A recording's test
fails on any difference not listed there; each listed difference is also its own strict xfail, so fixing the
sandbox turns it into an XPASS that asks for the line to be removed.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest

from tests.conformance.observe import RECORDINGS, ROOT, NotServed, load, observe

__all__ = ["HARNESS", "KNOWN", "RECORDINGS", "ROOT", "load"]  # test_verdicts.py and summary.py import these here


@functools.cache
def _observed(name: str) -> tuple[str, ...]:
    sandbox = _SESSION["sandbox"]
    sandbox.reset()
    try:
        return tuple(observe(sandbox, name))
    except NotServed as e:
        return (f"resource type {e} -> not served",)


_SESSION: dict[str, Any] = {}


@pytest.fixture
def observed(sandbox_session: Any) -> Any:
    _SESSION["sandbox"] = sandbox_session
    return _observed


# -- the worklist ---------------------------------------------------------------------------------------------------

# recording -> {difference line: reason}. Every line in KNOWN is a sandbox behaviour that differs from recorded
# Azure (the worklist of "Real Azure I/II"); every line in HARNESS comes from how this test builds the resource, not
# from the sandbox (allowed, not a bug).
# The same vault body at 2019-09-01, one GET with access policies and one without: the same differences.
_VAULT_2019_09_01 = [
    (
        "$.properties.sku.name: casing 'Standard' -> 'standard'",
        "recorded 2019-09-01 vault says sku.name 'Standard' (capitalised); sandbox always lower-cases",
    ),
]

# The Azure CLI's vault at 2021-10-01, read (GET) and updated (`az keyvault set-policy`, PUT): the same differences.
KNOWN: dict[str, list[tuple[str, str]]] = {
    "authorization/c7n-role-assignments-list-2018-09-01-preview.json": [
        (
            "$.value[*].properties.condition: absent -> null",
            "sandbox writes condition: null at 2018-09-01-preview; Azure's answer has no such key",
        ),
        (
            "$.value[*].properties.conditionVersion: absent -> null",
            "sandbox writes conditionVersion: null at 2018-09-01-preview; Azure's answer has no such key",
        ),
        (
            "$.value[*].properties.delegatedManagedIdentityResourceId: absent -> null",
            "sandbox writes delegatedManagedIdentityResourceId: null at 2018-09-01-preview; Azure has no such key",
        ),
        (
            "$.value[*].properties.description: absent -> null",
            "sandbox writes description: null at 2018-09-01-preview; Azure's answer has no such key",
        ),
    ],
    "authorization/cli-role-assignment-put-2022-04-01-condition.json": [
        (
            "status 201 -> 400 InvalidRoleAssignmentCondition",
            "sandbox refuses a condition on an attribute it does not model (containers:Name); Azure created it (201)",
        ),
    ],
    "authorization/cli-role-assignment-put-2020-04-01-preview.json": [
        (
            "$.properties.createdBy: null -> string",
            "a new role assignment's PUT answers createdBy: null (updatedBy is the caller); sandbox fills it",
        ),
    ],
    "des/cli-des-get-auto-rotation-2022-03-02.json": [
        (
            "$.properties.previousKeys: absent -> array",
            "sandbox writes properties.previousKeys: [] on a DES; recorded 2022-03-02 DES (auto-rotation on) omits it",
        ),
    ],
    "des/cli-des-get-updated-2022-03-02.json": [
        (
            "$.properties.previousKeys: absent -> array",
            "sandbox writes properties.previousKeys: [] on a DES; recorded 2022-03-02 DES moved to a new key omits it",
        ),
    ],
    "des/cli-des-get-system-and-user-assigned-2023-04-02.json": [
        (
            "$.identity.userAssignedIdentities.*.clientId: string -> absent",
            "sandbox leaves identity.userAssignedIdentities.<id> empty; Azure fills clientId",
        ),
        (
            "$.identity.userAssignedIdentities.*.principalId: string -> absent",
            "sandbox leaves identity.userAssignedIdentities.<id> empty; Azure fills principalId",
        ),
        (
            "$.properties.previousKeys: absent -> array",
            "sandbox writes properties.previousKeys: [] on a fresh DES; recorded 2023-04-02 DES omits it",
        ),
    ],
    "disks/c7n-disk-get-2020-09-30.json": [
        (
            "$.properties.publicNetworkAccess: absent -> string",
            "sandbox always writes properties.publicNetworkAccess; recorded 2020-09-30 body omits it",
        ),
    ],
    "disks/c7n-disk-get-os-2024-03-02.json": [
        (
            "$.properties.supportedCapabilities: object -> absent",
            "sandbox never writes supportedCapabilities; recorded 2024-03-02 OS disk (from an image) has it",
        ),
    ],
    "disks/c7n-disks-list-2018-09-30.json": [
        ("status 200 -> 400 NoRegisteredProviderFound", "sandbox refuses api-version 2018-09-30, which Azure answered"),
    ],
    "disks/c7n-disks-list-2024-03-02.json": [
        (
            "$.value[*].properties.supportedCapabilities: object -> absent",
            "sandbox never writes supportedCapabilities; recorded 2024-03-02 OS disk (from an image) has it",
        ),
    ],
    "keyvault/cli-key-rotate-7.5-preview.1.json": [
        (
            "status 200 -> 400 BadParameter",
            "sandbox refuses data-plane api-version 7.5-preview.1, which Key Vault answered (at 7.5 its rotate "
            "answer also lacks attributes.exportable and attributes.hsmPlatform)",
        ),
    ],
    "keyvault/cli-key-rotation-policy-get-7.5-preview.1.json": [
        (
            "status 200 -> 400 BadParameter",
            "sandbox refuses data-plane api-version 7.5-preview.1, which Key Vault answered (at 7.5 the shapes match)",
        ),
    ],
    "keyvault/c7n-vault-get-2019-09-01-no-policies.json": _VAULT_2019_09_01,
    "keyvault/c7n-vault-get-2019-09-01.json": _VAULT_2019_09_01,
    "keyvault/c7n-vaults-list-2019-09-01.json": [
        (
            "$.value[*].properties.sku.name: casing 'Standard' -> 'standard'",
            "recorded 2019-09-01 vault says sku.name 'Standard' (capitalised); sandbox always lower-cases",
        ),
    ],
    "monitor/c7n-diagnostic-settings-loadbalancer-2017-05-01-preview.json": [
        (
            "$.value[*].identity: null -> absent",
            "2017-05-01-preview resource-level diagnostic settings answer identity: null; sandbox omits the key",
        ),
        (
            "$.value[*].kind: null -> absent",
            "2017-05-01-preview resource-level diagnostic settings answer kind: null; sandbox omits the key",
        ),
        (
            "$.value[*].location: null -> absent",
            "2017-05-01-preview resource-level diagnostic settings answer location: null; sandbox omits the key",
        ),
        (
            "$.value[*].tags: null -> absent",
            "2017-05-01-preview resource-level diagnostic settings answer tags: null; sandbox omits the key",
        ),
        (
            "$.value[*].type: null -> string",
            "2017-05-01-preview resource-level diagnostic settings answer type: null; sandbox writes the type string",
        ),
    ],
    "monitor/cli-diagnostic-setting-put-nsg-2021-05-01-preview.json": [
        (
            "$.identity: null -> absent",
            "2021-05-01-preview resource-level diagnostic settings answer identity: null; sandbox omits the key",
        ),
        (
            "$.kind: null -> absent",
            "2021-05-01-preview resource-level diagnostic settings answer kind: null; sandbox omits the key",
        ),
        (
            "$.location: null -> absent",
            "2021-05-01-preview resource-level diagnostic settings answer location: null; sandbox omits the key",
        ),
        (
            "$.tags: null -> absent",
            "2021-05-01-preview resource-level diagnostic settings answer tags: null; sandbox omits the key",
        ),
    ],
    "monitor/c7n-diagnostic-settings-subscription-2017-05-01-preview.json": [
        (
            "$.value[*].location: string -> absent",
            "subscription diagnostic settings carry location 'global'; sandbox omits location",
        ),
        (
            "$.value[*].properties.logs[*].categoryGroup: null -> absent",
            "recorded 2017-05-01-preview logs carry categoryGroup: null; sandbox omits the key",
        ),
        (
            "$.value[*].properties.logs[*].retentionPolicy: absent -> object",
            "sandbox writes logs[].retentionPolicy on subscription diagnostic settings; Azure's have none",
        ),
        (
            "$.value[*].properties.metrics: absent -> array",
            "sandbox writes properties.metrics on subscription diagnostic settings; Azure's have none",
        ),
        (
            "$.value[*].properties.workspaceId: absent -> null",
            "sandbox writes properties.workspaceId: null when not set; recorded subscription setting omits it",
        ),
    ],
    "vms/cli-vm-get-ade-instanceview-2025-11-01.json": [
        (
            "$.properties.instanceView.disks[*].encryptionSettings: array -> absent",
            "an ADE VM's instanceView lists each disk's encryptionSettings (enabled, diskEncryptionKey); sandbox none",
        ),
        (
            "$.properties.instanceView.extensions: array -> absent",
            "sandbox instanceView ($expand=instanceView) lacks extensions (guest agent data)",
        ),
        (
            "$.properties.instanceView.osName: string -> absent",
            "sandbox instanceView ($expand=instanceView) lacks osName (guest agent data)",
        ),
        (
            "$.properties.instanceView.osVersion: string -> absent",
            "sandbox instanceView ($expand=instanceView) lacks osVersion (guest agent data)",
        ),
        (
            "$.properties.instanceView.vmAgent: object -> absent",
            "sandbox instanceView ($expand=instanceView) lacks vmAgent (guest agent data)",
        ),
    ],
    "vms/cli-vm-get-encryption-at-host-2021-03-01.json": [
        (
            "$.properties.timeCreated: absent -> string",
            "sandbox writes properties.timeCreated at 2021-03-01; not in that api-version's answer",
        ),
    ],
    "vms/c7n-vm-get-2019-07-01.json": [
        (
            "$.properties.osProfile.linuxConfiguration.provisionVMAgent: absent -> boolean",
            "sandbox adds osProfile.linuxConfiguration.provisionVMAgent; recorded VM body has none",
        ),
        (
            "$.properties.storageProfile.dataDisks[*].deleteOption: absent -> string",
            "sandbox writes storageProfile disks' deleteOption at 2019-07-01; not in that api-version's answer",
        ),
        (
            "$.properties.storageProfile.osDisk.deleteOption: absent -> string",
            "sandbox writes storageProfile disks' deleteOption at 2019-07-01; not in that api-version's answer",
        ),
        (
            "$.properties.timeCreated: absent -> string",
            "sandbox writes properties.timeCreated at 2019-07-01; not in that api-version's answer",
        ),
    ],
    "vms/c7n-vm-get-2022-11-01.json": [
        (
            "$.properties.osProfile.linuxConfiguration.provisionVMAgent: absent -> boolean",
            "sandbox adds osProfile.linuxConfiguration.provisionVMAgent; recorded VM body has none",
        ),
    ],
    "vms/c7n-vm-get-instanceview-2020-12-01.json": [
        (
            "$.properties.instanceView.bootDiagnostics: object -> absent",
            "sandbox instanceView ($expand=instanceView) lacks bootDiagnostics (guest agent data)",
        ),
        (
            "$.properties.instanceView.extensions: array -> absent",
            "sandbox instanceView ($expand=instanceView) lacks extensions (guest agent data)",
        ),
        (
            "$.properties.instanceView.osName: string -> absent",
            "sandbox instanceView ($expand=instanceView) lacks osName (guest agent data)",
        ),
        (
            "$.properties.instanceView.osVersion: string -> absent",
            "sandbox instanceView ($expand=instanceView) lacks osVersion (guest agent data)",
        ),
        (
            "$.properties.instanceView.vmAgent: object -> absent",
            "sandbox instanceView ($expand=instanceView) lacks vmAgent (guest agent data)",
        ),
        (
            "$.properties.osProfile.linuxConfiguration.provisionVMAgent: absent -> boolean",
            "sandbox adds osProfile.linuxConfiguration.provisionVMAgent; recorded VM body has none",
        ),
        (
            "$.properties.storageProfile.dataDisks[*].deleteOption: absent -> string",
            "sandbox writes storageProfile disks' deleteOption at 2020-12-01; not in that api-version's answer",
        ),
        (
            "$.properties.storageProfile.osDisk.deleteOption: absent -> string",
            "sandbox writes storageProfile disks' deleteOption at 2020-12-01; not in that api-version's answer",
        ),
        (
            "$.properties.timeCreated: absent -> string",
            "sandbox writes properties.timeCreated at 2020-12-01; not in that api-version's answer",
        ),
    ],
    "vms/c7n-vms-list-2020-12-01.json": [
        (
            "$.value[*].properties.osProfile.linuxConfiguration.provisionVMAgent: absent -> boolean",
            "sandbox adds osProfile.linuxConfiguration.provisionVMAgent; recorded VM body has none",
        ),
        (
            "$.value[*].properties.storageProfile.dataDisks[*].deleteOption: absent -> string",
            "sandbox writes storageProfile disks' deleteOption at 2020-12-01; not in that api-version's answer",
        ),
        (
            "$.value[*].properties.storageProfile.osDisk.deleteOption: absent -> string",
            "sandbox writes storageProfile disks' deleteOption at 2020-12-01; not in that api-version's answer",
        ),
        (
            "$.value[*].properties.timeCreated: absent -> string",
            "sandbox writes properties.timeCreated at 2020-12-01; not in that api-version's answer",
        ),
    ],
    "vms/c7n-vms-list-2024-11-01.json": [
        (
            "$.value[*].properties.osProfile.linuxConfiguration.provisionVMAgent: absent -> boolean",
            "sandbox adds osProfile.linuxConfiguration.provisionVMAgent; recorded VM body has none",
        ),
    ],
}
HARNESS: dict[str, list[tuple[str, str]]] = {
    "des/cli-des-get-updated-2022-03-02.json": [
        (
            "$.properties.lastKeyRotationTimestamp: string -> absent",
            "the harness creates this DES with its key; Azure set the timestamp when the recorded one changed key",
        ),
    ],
    "disks/c7n-disk-get-data-2024-03-02.json": [
        (
            "$.managedBy: string -> absent",
            "the harness makes this disk unattached; the recorded one is attached to a VM",
        ),
        (
            "$.properties.LastOwnershipUpdateTime: string -> absent",
            "the harness makes this disk unattached; the recorded one is attached to a VM",
        ),
    ],
    "disks/c7n-disk-get-os-2024-03-02.json": [
        (
            "$.managedBy: string -> absent",
            "the harness makes this disk unattached; the recorded one is attached to a VM",
        ),
        (
            "$.properties.LastOwnershipUpdateTime: string -> absent",
            "the harness makes this disk unattached; the recorded one is attached to a VM",
        ),
    ],
    "disks/c7n-disks-list-2024-03-02.json": [
        (
            "$.value[*].managedBy: string -> absent",
            "the harness makes this disk unattached; the recorded one is attached to a VM",
        ),
        (
            "$.value[*].properties.LastOwnershipUpdateTime: string -> absent",
            "the harness makes this disk unattached; the recorded one is attached to a VM",
        ),
    ],
}


def _known_params() -> list[Any]:
    return [
        pytest.param(
            name,
            diff,
            id=f"{name}::{diff[:80]}",
            marks=pytest.mark.xfail(strict=True, reason=reason),
        )
        for name, diffs in KNOWN.items()
        for diff, reason in diffs
    ]


# -- the tests ----------------------------------------------------------------------------------------------------


def test_there_are_recordings_with_provenance():
    assert len(RECORDINGS) >= 30
    for name in RECORDINGS:
        rec = load(name)
        assert set(rec) == {"source", "request", "status", "body"}, name
        src = rec["source"]
        assert src["repository"] and src["path"] and re.fullmatch(r"[0-9a-f]{40}", src["commit"]), name
        assert src["interaction"] is not None, name
        assert rec["request"]["method"] and rec["request"]["path"].startswith("/"), name
        assert rec["request"]["apiVersion"], name


def test_every_known_difference_names_a_recording():
    assert sorted((set(KNOWN) | set(HARNESS)) - set(RECORDINGS)) == []


def test_harness_differences_are_still_seen(observed):
    stale = [(n, d) for n, diffs in HARNESS.items() for d, _ in diffs if d not in observed(n)]
    assert not stale, stale


@pytest.mark.parametrize("name", RECORDINGS)
def test_shape_matches_or_difference_is_known(observed, name):
    allowed = {d for d, _ in KNOWN.get(name, []) + HARNESS.get(name, [])}
    unexplained = [d for d in observed(name) if d not in allowed]
    assert not unexplained, f"{name}: differences not in KNOWN:\n" + "\n".join(unexplained)


@pytest.mark.parametrize(("name", "diff"), _known_params())
def test_known_difference(observed, name, diff):
    assert diff not in observed(name)
