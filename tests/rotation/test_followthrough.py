"""followthrough.py: what a disk encryption set's follow-through decides from the set and its key (pure)."""

from datetime import UTC, datetime, timedelta

import pytest

from remediations.changes import Change, Operation
from remediations.engine.applier import Result
from remediations.rotation.followthrough import decide, des_key, moved, settled
from remediations.rotation.keyversions import KeyVersion

VAULT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
DES = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/diskEncryptionSets/des"
CREATED = datetime(2026, 3, 1, tzinfo=UTC)
KEY = KeyVersion(
    f"{VAULT}/keys/k",
    {"id": VAULT, "properties": {"vaultUri": "https://kv.vault.azure.net/"}},
    {},
    "new",
    CREATED,
    None,
)
DISKS = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d1",)


def des(version: str, *, auto: bool = False, **properties):
    url = f"https://kv.vault.azure.net/keys/k/{version}"
    return {
        "id": DES,
        "properties": {"activeKey": {"keyUrl": url, "sourceVault": {"id": VAULT}}, **properties}
        | ({"rotationToLatestKeyVersionEnabled": True} if auto else {}),
    }


@pytest.mark.parametrize(
    ("version", "after", "quiet"),
    [("new", timedelta(days=3), True), ("new", timedelta(days=1), False), ("old", timedelta(days=30), False)],
)
def test_only_a_set_long_on_the_newest_version_is_settled(version, after, quiet):
    assert settled(KEY, des(version), CREATED + after) is quiet


@pytest.mark.parametrize(
    ("body", "after", "mode", "in_scope", "action", "status", "says"),
    [
        (des("new"), timedelta(hours=1), "remediate", True, "follow-through", "verified", "use version new of key k"),
        (
            des("old", auto=True),
            timedelta(minutes=30),
            "remediate",
            True,
            "follow-through",
            "waiting",
            "within an hour",
        ),
        (
            des("old", auto=True),
            timedelta(hours=3),
            "audit",
            True,
            "follow-through",
            "escalated",
            "3 h 0 min after version new",
        ),
        (
            des("old", auto=True, autoKeyRotationError={"code": "KeyVaultAccessForbidden", "message": "no"}),
            timedelta(minutes=5),
            "remediate",
            True,
            "follow-through",
            "escalated",
            "could not move it to version new (KeyVaultAccessForbidden: no)",
        ),
        (des("old"), timedelta(hours=3), "audit", True, "update-des", "behind", "rotation runs in audit mode"),
        (des("old"), timedelta(hours=3), "remediate", False, "update-des", "behind", "it is outside the scope"),
    ],
)
def test_the_verdict_on_a_set(body, after, mode, in_scope, action, status, says):
    verdict = decide(KEY, body, DISKS, now=CREATED + after, mode=mode, in_scope=in_scope)
    assert not isinstance(verdict, Change)
    assert (verdict.action, verdict.status, verdict.before_version, verdict.after_version) == (
        action,
        status,
        body["properties"]["activeKey"]["keyUrl"].rsplit("/", 1)[1],
        "new",
    )
    assert says in verdict.reason and verdict.disks == DISKS
    assert "and its 1 disk(s)" in verdict.reason


def test_a_fixed_version_set_in_scope_is_moved_by_a_change():
    verdict = decide(KEY, des("old"), (), now=CREATED + timedelta(hours=3), mode="remediate", in_scope=True)
    assert isinstance(verdict, Change)
    assert verdict.operation == Operation(
        "PATCH",
        DES,
        verdict.operation.api_version,
        {
            "properties": {
                "activeKey": {"keyUrl": "https://kv.vault.azure.net/keys/k/new", "sourceVault": {"id": VAULT}}
            }
        },
    )
    assert verdict.before == {"properties.activeKey.keyUrl": "https://kv.vault.azure.net/keys/k/old"}


def test_a_set_whose_vault_is_in_another_subscription_is_moved_by_its_key_url_alone():
    # DiskRP: sourceVault "cannot be used if the KeyVault subscription is not the same" (diskEncryptionSet.json).
    central = VAULT.replace("/subscriptions/s/", "/subscriptions/keys/")
    key = KeyVersion(f"{central}/keys/k", {**KEY.vault, "id": central}, {}, "new", CREATED, None)
    body = {"id": DES, "properties": {"activeKey": {"keyUrl": "https://kv.vault.azure.net/keys/k/old"}}}
    verdict = decide(key, body, (), now=CREATED + timedelta(hours=3), mode="remediate", in_scope=True)
    assert isinstance(verdict, Change)
    assert verdict.operation.body == {"properties": {"activeKey": {"keyUrl": "https://kv.vault.azure.net/keys/k/new"}}}
    body["cryptward"] = {"keyVault": {"id": central}}  # the reader found the vault from the key URL
    assert des_key(body) == f"{central}/keys/k".lower()


@pytest.mark.parametrize(
    ("status", "detail", "code", "verdict", "missing"),
    [
        ("applied", "written and verified", None, "updated", None),
        ("already-compliant", "already holds", None, "updated", None),
        (
            "failed",
            "The client 'x' does not have authorization to perform action 'Microsoft.Compute/diskEncryptionSets/write'"
            " over scope '/subscriptions/s'",
            "AuthorizationFailed",
            "failed",
            "Microsoft.Compute/diskEncryptionSets/write on /subscriptions/s",
        ),
    ],
)
def test_the_result_of_moving_a_set(status, detail, code, verdict, missing):
    change = decide(KEY, des("old"), DISKS, now=CREATED + timedelta(hours=3), mode="remediate", in_scope=True)
    assert isinstance(change, Change)
    result = moved(KEY, des("old"), DISKS, Result(change, status, detail, code), now=CREATED + timedelta(hours=3))
    assert (result.action, result.status, result.code, result.missing) == ("update-des", verdict, code, missing)
    assert result.overdue == (timedelta(hours=3) if verdict == "failed" else None)
