"""snapshot-cmk: a full snapshot on a platform key is given its source disk's disk encryption set, once a person
approves it, through the real SDK against the sandbox; and what it never does (pure: the guards its samples cannot
reach, since the policy's condition holds only for a full platform-key snapshot)."""

import copy
import json
from pathlib import Path

import pytest
from azure.mgmt.compute import ComputeManagementClient

from remediations.changes import PlanContext
from remediations.engine.reader import Scope
from remediations.engine.run import scan
from remediations.errors import FixDeclined
from remediations.fixes.snapshot_cmk import plan
from tests.engine.test_run import POLICIES, ids, settings_for, sweep

SAMPLES = Path(__file__).resolve().parents[2] / "policies/snapshot-cmk/samples"
SAMPLE = json.loads((SAMPLES / "noncompliant/platform-key-of-a-cmk-disk.json").read_text())
CONTEXT = PlanContext.from_dict(json.loads((SAMPLES / "context.json").read_text()))
DOUBLE = "EncryptionAtRestWithPlatformAndCustomerKeys"


def snapshot(**props):
    body = copy.deepcopy(SAMPLE)
    body["properties"].update(props)
    return body


@pytest.mark.parametrize(
    ("props", "reason", "words"),
    [
        ({"incremental": True}, "unsupported", "is incremental"),
        ({"encryption": {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": "x"}}, "immutable", ""),
        ({"encryption": {"type": DOUBLE, "diskEncryptionSetId": "x"}}, "immutable", DOUBLE),
        ({"diskState": "ActiveSASFrozen"}, "blocked", "being exported"),
    ],
)
def test_what_the_fix_never_touches(props, reason, words):
    with pytest.raises(FixDeclined) as declined:
        plan(snapshot(**props), {}, CONTEXT)
    assert declined.value.reason == reason and words in declined.value.detail


def test_a_source_without_a_set_gives_nothing_to_use():
    body = snapshot()
    body["cryptward"]["sourceEncryption"] = {"type": "EncryptionAtRestWithPlatformKey"}
    with pytest.raises(FixDeclined, match="not a disk encryption set"):
        plan(body, {}, CONTEXT)


def test_a_double_encrypted_source_gives_the_snapshot_double_encryption():
    body = snapshot()
    body["cryptward"]["sourceEncryption"]["type"] = DOUBLE
    (change,) = plan(body, {}, CONTEXT)
    assert change.after["properties.encryption.type"] == DOUBLE
    assert change.operation.body["properties"]["encryption"]["type"] == DOUBLE


def test_nothing_in_the_snapshot_names_the_set():
    """Tags and the snapshot's own body name nothing: the set is the source's, as the reader read it."""
    body = snapshot()
    body["tags"] = {"diskEncryptionSetId": "/subscriptions/x/resourceGroups/evil/providers/Microsoft.Compute/"
                    "diskEncryptionSets/theirs"}  # fmt: skip
    (change,) = plan(body, {}, CONTEXT)
    assert (
        change.after["properties.encryption.diskEncryptionSetId"]
        == (SAMPLE["cryptward"]["sourceEncryption"]["diskEncryptionSetId"])
    )


# --- against the sandbox ---------------------------------------------------------------------------------------------

SNAP = "snap-weu-golden"  # sandbox/scenarios_compute.py: a platform-key full snapshot of a CMK disk


def approving(sandbox, azure, change_id):
    """A sweep that applies the one change a person approved."""
    return scan(
        Scope((sandbox.subscription_id,)), POLICIES, apply=True, azure=azure, approved=(change_id,),
        settings=settings_for(sandbox), ade_history=[ids(sandbox)["ade"]],
    )  # fmt: skip


def test_applied_once_approved_the_snapshot_uses_its_disks_set(sandbox, grant_custom_role, as_bot):
    sandbox.reset("estate")
    grant_custom_role("bot")
    first = sweep(sandbox, as_bot())
    (change,) = [c for c in first.plan.changes if c.policy_id == "snapshot-cmk"]
    assert change.resource_id.endswith(f"/snapshots/{SNAP}") and change.operation.method == "PATCH"
    # the set is in rg-keys-weu, the snapshot in rg-app-weu, and it is not CRYPTWARD_DES_MAP's: a person approves
    assert change.requires == ("approval",) and "rg-keys-weu" in change.summary
    assert {r.status for r in first.results if r.change.id == change.id} == {"pending-approval"}
    compute = sandbox.client(ComputeManagementClient)
    assert compute.snapshots.get("rg-app-weu", SNAP).encryption.type == "EncryptionAtRestWithPlatformKey"

    done = approving(sandbox, as_bot(), change.id)
    assert {r.status for r in done.results if r.change.id == change.id} == {"applied"}
    after = compute.snapshots.get("rg-app-weu", SNAP).encryption
    disk = compute.disks.get("rg-app-weu", "disk-weu-golden").encryption
    assert (after.type, after.disk_encryption_set_id.lower()) == (disk.type, disk.disk_encryption_set_id.lower())
    again = sweep(sandbox, as_bot())  # compliant now: nothing more to do
    assert not [c for c in again.plan.changes if c.policy_id == "snapshot-cmk"]


def test_a_snapshot_copy_in_another_region_is_left_alone(sandbox, grant_custom_role, as_bot):
    """Azure keeps a set and what uses it in one region: a platform-key snapshot in uksouth of the westeurope disk
    is reported, not given the disk's set."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    sub = sandbox.subscription_id
    disk = f"/subscriptions/{sub}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/disks/disk-weu-golden"
    body = {
        "location": "uksouth",
        "properties": {
            "creationData": {"createOption": "CopyStart", "sourceResourceId": disk},
            "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        },
    }
    sandbox.client(ComputeManagementClient).snapshots.begin_create_or_update("rg-app-weu", "snap-uks", body).result()
    report = sweep(sandbox, as_bot(), apply=False)
    (skip,) = [s for s in report.plan.skipped if s.policy_id == "snapshot-cmk" and s.resource_id.endswith("snap-uks")]
    assert skip.reason == "unsupported" and "same subscription and region" in skip.detail


def test_the_policy_asks_a_person_by_default():
    (policy,) = [p for p in POLICIES if p.id == "snapshot-cmk"]
    assert policy.mode == "approve" and policy.fix is not None


def test_an_event_on_the_snapshot_alone_plans_it(sandbox, grant_custom_role, as_bot):
    """A snapshot's write event reads that snapshot only: the reader brings its source's set along
    (remediations/engine/reader.py), so the change is planned then, not at the next sweep."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    snap = f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/snapshots/"
    snap += SNAP
    report = scan(
        Scope((sandbox.subscription_id,)), POLICIES, apply=False, azure=as_bot(), resource_id=snap,
        settings=settings_for(sandbox), ade_history=[ids(sandbox)["ade"]],
    )  # fmt: skip
    assert not [s for s in report.plan.skipped if s.policy_id == "snapshot-cmk"]
    (change,) = [c for c in report.plan.changes if c.policy_id == "snapshot-cmk"]
    assert change.resource_id == snap and change.requires == ("approval",)
