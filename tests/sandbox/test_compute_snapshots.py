"""Microsoft.Compute/snapshots through the real ComputeManagementClient: full and incremental snapshots, their
encryption, and "A disk and all of its associated incremental snapshots must have the same disk encryption set"
(https://learn.microsoft.com/azure/virtual-machines/disk-encryption#restrictions)."""

import pytest

from tests.sandbox.test_compute import CMK, LOC, PMK, RG, Env, _refused


@pytest.fixture
def env(sandbox):
    return Env(sandbox)


def _snapshot(env, name, disk, incremental, **props):
    body = {
        "location": LOC,
        "properties": {
            "creationData": {"createOption": "Copy", "sourceResourceId": disk.id},
            "incremental": incremental,
        }
        | props,
    }
    return env.compute.snapshots.begin_create_or_update(RG, name, body).result()


def test_snapshots_are_served_full_and_incremental_with_their_source_and_encryption(env):
    disk = env.disk("disk-snap", size=64, osType="Linux")
    full = _snapshot(env, "snap-full", disk, False, encryption={"type": PMK})
    inc = _snapshot(env, "snap-inc", disk, True)
    assert (full.incremental, inc.incremental) == (False, True)
    assert inc.creation_data.source_resource_id == disk.id and inc.creation_data.source_unique_id == disk.unique_id
    assert (inc.disk_size_gb, inc.os_type, inc.encryption.type, inc.disk_state) == (64, "Linux", PMK, "Unattached")
    assert inc.incremental_snapshot_family_id and full.incremental_snapshot_family_id is None
    assert sorted(s.name for s in env.compute.snapshots.list()) == ["snap-full", "snap-inc"]
    assert [s.name for s in env.compute.snapshots.list_by_resource_group(RG)] == ["snap-full", "snap-inc"]
    env.compute.snapshots.begin_delete(RG, "snap-full").result()
    assert [s.name for s in env.compute.snapshots.list()] == ["snap-inc"]


def test_a_disk_and_its_incremental_snapshots_keep_one_disk_encryption_set(env):
    vault, key = env.vault()
    des = env.des("des-snap", vault, key.properties.key_uri_with_version)
    cmk = {"type": CMK, "diskEncryptionSetId": des.id}
    disk = env.disk("disk-inc")
    _refused(lambda: _snapshot(env, "bad", disk, True, encryption=cmk), 400, "InvalidParameter")
    _snapshot(env, "snap-inc", disk, True)
    # the disk cannot move to a customer-managed key while it has incremental snapshots
    update = {"properties": {"encryption": cmk}}
    message = _refused(
        lambda: env.compute.disks.begin_update(RG, "disk-inc", update).result(), 409, "OperationNotAllowed"
    )
    assert "incremental snapshots" in message
    # a full snapshot may differ; a disk with only full snapshots changes freely
    other = env.disk("disk-full")
    assert _snapshot(env, "snap-full", other, False, encryption=cmk).encryption.disk_encryption_set_id == des.id
    assert env.compute.disks.begin_update(RG, "disk-full", update).result().encryption.type == CMK
    # and a CMK disk with incremental snapshots cannot go back to a platform key
    _snapshot(env, "snap-cmk-inc", other, True)
    back = {"properties": {"encryption": {"type": PMK}}}
    _refused(lambda: env.compute.disks.begin_update(RG, "disk-full", back).result(), 409, "OperationNotAllowed")
    _refused(lambda: env.compute.snapshots.begin_update(RG, "snap-cmk-inc", back).result(), 409, "OperationNotAllowed")


def test_a_full_snapshot_moves_to_a_customer_managed_key_with_a_full_put(env):
    """Recorded (the Azure CLI's test_disk_encryption_set_snapshot.yaml, 2021-12-01): `az snapshot update
    --encryption-type EncryptionAtRestWithCustomerKey --disk-encryption-set des2` on an empty platform-key snapshot
    sends the whole body back with the new encryption (a PUT); Azure accepted it (202) and the snapshot then named
    des2."""
    vault, key = env.vault()
    des = env.des("des-put", vault, key.properties.key_uri_with_version)
    body = {"location": LOC, "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 10}}
    made = env.compute.snapshots.begin_create_or_update(RG, "snap-put", body).result()
    assert (made.encryption.type, made.incremental) == (PMK, False)
    body["properties"] |= {"incremental": False, "encryption": {"type": CMK, "diskEncryptionSetId": des.id}}
    updated = env.compute.snapshots.begin_create_or_update(RG, "snap-put", body).result()
    assert (updated.encryption.type, updated.encryption.disk_encryption_set_id) == (CMK, des.id)
    assert updated.unique_id == made.unique_id


def test_a_full_snapshot_moves_to_a_customer_managed_key_with_a_patch_under_disk_rules(env):
    """DiskRP Snapshots_Update: SnapshotUpdateProperties carry `encryption` (snapshot.json; the SDK's
    SnapshotUpdate), as snapshot-cmk sends it. The set's rules are a disk's: same region (Learn
    disk-encryption#restrictions: "Most resources related to your customer-managed keys (disk encryption sets, VMs,
    disks, and snapshots) must be in the same subscription and region"), and a set whose identity cannot use its key
    is refused as for a disk."""
    vault, key = env.vault()
    url = key.properties.key_uri_with_version
    disk = env.disk("disk-patch")
    _snapshot(env, "snap-patch", disk, False, encryption={"type": PMK})
    far_vault, far_key = env.vault("kv-far", location="northeurope")
    far = env.des("des-far", far_vault, far_key.properties.key_uri_with_version, location="northeurope")
    message = _refused(
        lambda: env.compute.snapshots.begin_update(
            RG, "snap-patch", {"properties": {"encryption": {"type": CMK, "diskEncryptionSetId": far.id}}}
        ).result(),
        400,
        "InvalidParameter",
    )
    assert "same region" in message
    denied = env.des("des-denied", vault, url, grant=False)
    _refused(
        lambda: env.compute.snapshots.begin_update(
            RG, "snap-patch", {"properties": {"encryption": {"type": CMK, "diskEncryptionSetId": denied.id}}}
        ).result(),
        400,
        "KeyVaultAccessForbidden",
    )
    near = env.des("des-near", vault, url)
    update = {"properties": {"encryption": {"type": CMK, "diskEncryptionSetId": near.id}}}
    done = env.compute.snapshots.begin_update(RG, "snap-patch", update).result()
    assert (done.encryption.type, done.encryption.disk_encryption_set_id) == (CMK, near.id)
