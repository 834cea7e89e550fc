"""snapshot-cmk does not let a snapshot's owner borrow another team's key on their own say-so.

A principal with Contributor on its own resource group only holds a full platform-key snapshot of another team's
disk, which uses that team's disk encryption set. It cannot put the set on its snapshot itself (ARM's linked-scope
check wants `diskEncryptionSets/read` on the set). Its tags name a set of its choosing. The bot, acting with exactly
infra/cryptward-role.json and the policy in `remediate` mode, plans the disk's own set (never the tagged one) and
waits for a signed-in approver, because the set lives in another resource group and is not CRYPTWARD_DES_MAP's.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient

from remediations.azure import Azure
from remediations.engine.reader import Scope
from remediations.engine.run import scan
from tests.engine.test_run import POLICIES, ids, settings_for
from tests.security.intruder import contributor_on_own_group

SNAP = "snap-intruder"


@pytest.fixture
def estate(sandbox, grant_custom_role, monkeypatch):
    """The estate, and rg-intruder: the intruder's own group (Contributor), holding a platform-key full snapshot of
    disk-weu-golden (whose set, des-weu-golden, is in rg-keys-weu), tagged with a set the intruder picked."""
    sandbox.reset("estate")
    grant_custom_role("bot")
    monkeypatch.setenv("AZURE_CLIENT_ID", sandbox.principal("bot").client_id)
    sub = sandbox.subscription_id
    contributor_on_own_group(sandbox)
    disk = f"/subscriptions/{sub}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/disks/disk-weu-golden"
    picked = f"/subscriptions/{sub}/resourceGroups/rg-intruder/providers/Microsoft.Compute/diskEncryptionSets/mine"
    body = {
        "location": "westeurope",
        "tags": {"diskEncryptionSetId": picked},
        "properties": {
            "creationData": {"createOption": "Copy", "sourceResourceId": disk},
            "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
        },
    }
    sandbox.client(ComputeManagementClient).snapshots.begin_create_or_update("rg-intruder", SNAP, body).result()
    azure = Azure.from_env()
    yield sandbox, azure
    azure.close()


def _golden_set(sandbox):
    disk = sandbox.client(ComputeManagementClient).disks.get("rg-app-weu", "disk-weu-golden")
    return disk.encryption.disk_encryption_set_id


def test_the_intruder_cannot_link_the_other_teams_set_itself(estate):
    sandbox, _ = estate
    compute = sandbox.client(ComputeManagementClient, "intruder")
    encryption = {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": _golden_set(sandbox)}
    with pytest.raises(HttpResponseError) as refused:
        compute.snapshots.begin_update("rg-intruder", SNAP, {"properties": {"encryption": encryption}}).result()
    assert refused.value.status_code == 403 and refused.value.error.code == "LinkedAuthorizationFailed"
    assert "'Microsoft.Compute/snapshots/write'" in refused.value.error.message


def test_the_bot_waits_for_an_approver_even_in_remediate_mode_and_never_uses_the_tagged_set(estate):
    sandbox, azure = estate
    report = scan(
        Scope((sandbox.subscription_id,)), POLICIES, apply=True, azure=azure,
        settings=settings_for(sandbox, **{"snapshot-cmk": "remediate"}), ade_history=[ids(sandbox)["ade"]],
    )  # fmt: skip
    (result,) = [r for r in report.results if r.change.resource_id.endswith(f"/snapshots/{SNAP}")]
    assert result.status == "pending-approval"
    change = result.change
    assert change.after["properties.encryption.diskEncryptionSetId"].lower() == _golden_set(sandbox).lower()
    assert "rg-intruder" in change.summary and "rg-keys-weu" in change.summary
    mine = sandbox.client(ComputeManagementClient).snapshots.get("rg-intruder", SNAP)
    assert mine.encryption.type == "EncryptionAtRestWithPlatformKey"  # nothing written before a person agrees
