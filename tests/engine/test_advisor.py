"""The EAH-or-ADE advisor, row by row of the seed's comparison table."""

import copy
import json
from pathlib import Path

import pytest

from remediations.engine.advisor import ADE, EAH, Needs, advise, series

SAMPLES = Path(__file__).resolve().parents[2] / "policies" / "vm-encryption-at-host" / "samples"
BASE = json.loads((SAMPLES / "noncompliant" / "running-dsv5.json").read_text())  # Linux, Standard_D4s_v5, 16 GB


def vm(size: str = "Standard_D4s_v5", os_type: str = "Linux", **changes) -> dict:
    body = copy.deepcopy(BASE)
    body["properties"]["hardwareProfile"]["vmSize"] = size
    body["properties"]["storageProfile"]["osDisk"]["osType"] = os_type
    for path, value in changes.items():
        target = body
        *parents, last = path.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return body


@pytest.mark.parametrize(
    ("size", "name"),
    [
        ("Standard_D4s_v3", "Dsv3"),
        ("Standard_DS3_v2", "DSv2"),
        ("Standard_NC6", "NC"),
        ("Standard_NC6s_v3", "NCsv3"),
        ("Standard_E4-2s_v4", "Esv4"),
        ("Standard_A4m_v2", "Amv2"),
        ("Basic_A1", "A"),
    ],
)
def test_series(size, name):
    found = series(size)
    assert found is not None and found.name == name


@pytest.mark.parametrize(
    ("size", "eah"),
    [
        ("Standard_D4_v3", False),  # Dv3
        ("Standard_D2_v2", False),  # Dv2
        ("Standard_A2_v2", False),  # Av2
        ("Standard_E8_v3", False),  # Ev3
        ("Standard_NC6", False),  # NC
        ("Standard_NV12", False),  # NV
        ("Standard_H16r", False),  # H
        ("Standard_D4s_v5", True),  # latest generations
        ("Standard_D4_v4", True),
        ("Standard_E4s_v3", True),  # Esv3 is not in the seed's list
        ("Standard_NC6s_v3", True),  # NCv3 is not the NC series
    ],
)
def test_encryption_at_host_by_series(size, eah):
    advice = advise(vm(size))
    assert advice.eah.available is eah
    if not eah:
        assert "does not support encryption at host" in advice.eah.reasons[0]


@pytest.mark.parametrize("size", ["Standard_D4_v4", "Standard_D4s_v4", "Standard_E4_v4", "Standard_E4s_v4"])
def test_no_temporary_disk_no_ade(size):
    advice = advise(vm(size))
    assert not advice.ade.available and "no local temporary disk" in " ".join(advice.ade.reasons)
    assert advice.recommended == EAH


@pytest.mark.parametrize("size", ["Standard_D4ds_v4", "Standard_E4ds_v4", "Standard_D4s_v5"])
def test_with_temporary_disk_ade_is_possible(size):
    assert advise(vm(size, os_type="Windows")).ade.available


@pytest.mark.parametrize(
    ("size", "os_type", "ade", "data_only"),
    [
        ("Standard_B1s", "Windows", False, False),  # 1 GB: under 2 GB
        ("Standard_B1ms", "Windows", True, False),  # 2 GB
        ("Standard_B2s", "Linux", True, True),  # 4 GB Linux: data disks only
        ("Standard_B2ms", "Linux", True, False),  # 8 GB
    ],
)
def test_memory(size, os_type, ade, data_only):
    advice = advise(vm(size, os_type))
    assert advice.ade.available is ade
    assert any("data disks only" in r for r in advice.ade.reasons) is data_only


def test_memory_from_sku_capabilities_overrides_the_table():
    assert not advise(vm("Standard_B2ms"), capabilities={"MemoryGB": "1.5"}).ade.available


def test_capabilities_override_the_series_table():
    advice = advise(vm("Standard_D4_v3"), capabilities={"EncryptionAtHostSupported": "True"})
    assert advice.eah.available
    assert not advise(vm("Standard_D4s_v5"), capabilities={"EncryptionAtHostSupported": "False"}).eah.available


def test_the_seed_table_decides_only_when_azure_could_not_be_read_and_says_so():
    why = "AuthorizationFailed: no Microsoft.Compute/skus/read"
    refused = advise(vm("Standard_D4_v3", cryptward__skuUnreadable=why))
    assert not refused.eah.available and "the seed's table decided" in refused.eah.reasons[0] and why in refused.summary
    allowed = advise(vm("Standard_D4s_v5", cryptward__skuUnreadable=why))
    assert allowed.eah.available and any("seed's table" in n for n in allowed.eah.reasons)
    assert "Resource SKUs" in advise(vm(), capabilities={"EncryptionAtHostSupported": "False"}).eah.reasons[0]


def test_unknown_memory_is_said():
    advice = advise(vm("Standard_D4s_v5"))
    assert advice.ade.available and any("memory" in r and "unknown" in r for r in advice.ade.reasons)


def test_basic_sizes_no_ade():
    assert not advise(vm("Basic_A2", os_type="Windows")).ade.available


def test_custom_linux_image_no_ade():
    body = vm(
        properties__storageProfile__imageReference={"id": "/subscriptions/s/resourceGroups/g/providers/x/images/i"}
    )
    reasons = advise(body).ade.reasons
    assert "custom Linux image" in " ".join(reasons)


def test_customer_managed_key_disks_rule_out_ade():
    disk = {"properties": {"encryption": {"type": "EncryptionAtRestWithCustomerKey", "diskEncryptionSetId": "/d"}}}
    advice = advise(vm(os_type="Windows"), [disk], memory_gb=16)
    assert not advice.ade.available and "platform-managed keys" in advice.ade.reasons[0]
    assert advice.recommended == EAH


def test_a_disk_encryption_set_on_the_vm_disks_rules_out_ade():
    body = vm(os_type="Windows")
    body["properties"]["storageProfile"]["osDisk"]["managedDisk"]["diskEncryptionSet"] = {"id": "/d"}
    assert not advise(body, memory_gb=16).ade.available


@pytest.mark.parametrize(
    ("needs", "words"),
    [
        (Needs(file_restore=True), "single files"),
        (Needs(cross_region_restore=True), "another region"),
        (Needs(move=True), "moved"),
    ],
)
def test_backup_and_move_needs_rule_out_ade(needs, words):
    advice = advise(vm(os_type="Windows"), needs=needs, memory_gb=16)
    assert not advice.ade.available and words in advice.ade.reasons[0]
    assert advice.eah.available


def test_eah_and_ade_are_mutually_exclusive():
    with_eah = vm(os_type="Windows", properties__securityProfile__encryptionAtHost=True)
    assert not advise(with_eah, memory_gb=16).ade.available
    with_ade = json.loads((SAMPLES / "noncompliant" / "azure-disk-encryption.json").read_text())
    advice = advise(with_ade, memory_gb=16)
    assert not advice.eah.available and "mutually exclusive" in advice.eah.reasons[-1]
    assert advice.recommended == ADE and advice.summary.startswith("Keep Azure Disk Encryption")


def test_ade_when_eah_is_unsupported():
    advice = advise(vm("Standard_D4_v3", os_type="Windows"), memory_gb=16)
    assert advice.recommended == ADE
    assert "Dv3 series" in advice.summary


def test_neither():
    advice = advise(vm("Standard_D2_v2"), needs=Needs(file_restore=True), memory_gb=7)
    assert advice.recommended is None
    assert advice.summary.startswith("Neither")
    assert "Dv2 series" in advice.summary and "single files" in advice.summary


def test_eah_is_recommended_with_its_reasons():
    advice = advise(vm(os_type="Windows"), memory_gb=16)
    assert advice.recommended == EAH and advice.ade.available
    assert "temporary disks" in advice.summary and "deallocated" in advice.eah.reasons[0]
