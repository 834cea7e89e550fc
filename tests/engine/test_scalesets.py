"""The reader's scale sets, snapshots and images (remediations/engine/scalesets.py) against the sandbox's estate:
the `instances` block from the scale set's VM list, the size's capabilities and the EncryptionAtHost feature as for
VMs, a snapshot's or image's `sourceEncryption`, one resource for an event, and what cannot be read recorded."""

from pathlib import Path

from azure.mgmt.compute import ComputeManagementClient

from remediations.engine.reader import Needs, Scope, read_resource, read_scope, type_of
from remediations.policy.loader import load_policies

POLICIES = load_policies(Path(__file__).resolve().parents[2] / "policies")
ALL = Needs.of(POLICIES)
CMK = {"type": "EncryptionAtRestWithCustomerKey"}


def rid(sandbox, kind, name):
    return (
        f"/subscriptions/{sandbox.subscription_id}/resourceGroups/rg-app-weu/providers/Microsoft.Compute/{kind}/{name}"
    )


def test_a_sweep_reads_scale_sets_snapshots_and_images_with_their_blocks(sandbox, azure_as):
    sandbox.reset("estate")
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id,)), ALL)
    found = {b["name"]: b for b in reading.resources.values()}
    web = found["vmss-weu-web"]["cryptward"]
    # its model names no securityProfile, so neither do its instances (as Azure lists them: recordings/scalesets/
    # cli-vmss-instances-list-2021-11-01.json): not known to be encrypted at host
    assert web["instances"] == [
        {"instanceId": "0", "name": "vmss-weu-web_0", "latestModelApplied": True, "encryptionAtHost": None},
        {"instanceId": "1", "name": "vmss-weu-web_1", "latestModelApplied": True, "encryptionAtHost": None},
    ]
    assert web["skuCapabilities"]["EncryptionAtHostSupported"] == "True"
    assert web["encryptionAtHostFeature"]["state"] == "Registered"
    snapshot, image = found["snap-weu-golden"]["cryptward"], found["img-weu-golden"]["cryptward"]
    assert snapshot["sourceEncryption"]["type"] == image["sourceEncryption"]["type"] == CMK["type"]
    assert reading.unreadable.get(found["vmss-weu-web"]["id"].lower()) is None


def test_one_scale_set_snapshot_or_image_for_an_event(sandbox, azure_as):
    sandbox.reset("estate")
    azure = azure_as("reader")
    for kind, name, block in (
        ("virtualMachineScaleSets", "vmss-weu-ade", "instances"),
        ("snapshots", "snap-weu-golden", "sourceEncryption"),
        ("images", "img-weu-golden", "sourceEncryption"),
    ):
        resource_id = rid(sandbox, kind, name)
        assert type_of(resource_id) == f"Microsoft.Compute/{kind}"
        one = read_resource(azure, resource_id, ALL)
        assert list(one.resources) == [resource_id] and block in one.resources[resource_id]["cryptward"]
    gone = read_resource(azure, rid(sandbox, "images", "img-nowhere"), ALL)
    assert gone.gone == {rid(sandbox, "images", "img-nowhere").lower()}


def test_instances_that_cannot_be_listed_are_recorded_not_guessed(sandbox, azure_as, grant_custom_role):
    sandbox.reset("estate")
    grant_custom_role("bot", without=["Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read"])
    reading = read_scope(azure_as("bot"), Scope((sandbox.subscription_id,)), ALL)
    web = next(b for b in reading.resources.values() if b["name"] == "vmss-weu-web")
    assert "instances" not in web["cryptward"]
    assert reading.unreadable[web["id"].lower()]["instances"].startswith("AuthorizationFailed")


def test_a_snapshot_whose_source_is_gone_is_not_judged(sandbox, azure_as):
    sandbox.reset("estate")
    compute = sandbox.client(ComputeManagementClient)
    disk = rid(sandbox, "disks", "disk-weu-data")
    body = {
        "location": "westeurope",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": disk}},
    }
    compute.snapshots.begin_create_or_update("rg-app-weu", "snap-orphan", body).result()
    compute.disks.begin_delete("rg-app-weu", "disk-weu-data").result()
    reading = read_scope(azure_as("reader"), Scope((sandbox.subscription_id,)), ALL)
    orphan = next(b for b in reading.resources.values() if b["name"] == "snap-orphan")
    assert "sourceEncryption" not in orphan.get("cryptward", {})  # snapshot-cmk then has nothing to compare with
    assert orphan["id"].lower() not in reading.unreadable


def test_a_snapshot_event_reads_its_sources_set_with_its_key_access(sandbox, azure_as):
    """snapshot-cmk plans from the set of the snapshot's source (remediations/fixes/snapshot_cmk.py): for one snapshot
    the reader reads that set too, with whether it can use its key, as context (not a resource to judge)."""
    sandbox.reset("estate")
    one = read_resource(azure_as("reader"), rid(sandbox, "snapshots", "snap-weu-golden"), ALL)
    des_id = one.resources[rid(sandbox, "snapshots", "snap-weu-golden")]["cryptward"]["sourceEncryption"]
    des = one.related[des_id["diskEncryptionSetId"].lower()]
    assert des["cryptward"]["keyAccess"]["missing"] == []
    assert list(one.resources) == [rid(sandbox, "snapshots", "snap-weu-golden")]
