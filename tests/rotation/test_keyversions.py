"""keyversions.py: ISO 8601 durations, when a key version is due, version ids from key URLs, missing permissions."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from remediations.rotation.keyversions import (
    Action,
    RotationResult,
    RotationStatus,
    due_moment,
    missing_permission,
    parse_duration,
    version_of,
)


@pytest.mark.parametrize(
    ("text", "days"), [("P90D", 90), ("p60d", 60), ("P1Y", 365), ("P3M", 90), ("P2W", 14), ("P1DT12H", 1.5)]
)
def test_durations_count_as_key_vault_counts_them(text, days):
    assert parse_duration(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["90", "P", "90D", "PT", "P1.5D", ""])
def test_a_malformed_duration_is_refused(text):
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def test_due_by_age_or_by_expiry_whichever_comes_first_never_within_a_day_of_creation():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    age, warn, none = timedelta(days=90), timedelta(days=30), timedelta(0)
    assert due_moment(t, None, age, warn, none)[0] == t + age
    assert due_moment(t, None, age, warn, timedelta(days=1))[0] == t + age + timedelta(days=1)
    moment, why = due_moment(t, t + timedelta(days=100), age, warn, none)
    assert moment == t + timedelta(days=70) and "expires on 2026-04-11" in why
    assert due_moment(t, t + timedelta(days=28), age, warn, none)[0] == t + timedelta(days=1)


def test_version_of_a_key_url():
    assert version_of("https://kv.vault.azure.net/keys/k/ABC123") == "abc123"
    assert version_of("https://kv.vault.azure.net/keys/k") == ""


def test_the_missing_permission_is_read_from_arm_and_key_vault_refusals():
    arm = (
        "The client 'x' with object id 'y' does not have authorization to perform action "
        "'Microsoft.Compute/diskEncryptionSets/write' over scope '/subscriptions/s/rg/des' or the scope is invalid."
    )
    kv = "Caller is not authorized.\r\nAction: 'Microsoft.KeyVault/vaults/keys/rotate/action'\r\nResource: '/s/k'\r\n"
    policy = "The user, group or application 'a' does not have keys rotate permission on key vault 'kv1;location=x'."
    assert missing_permission(arm) == "Microsoft.Compute/diskEncryptionSets/write on /subscriptions/s/rg/des"
    assert missing_permission(kv) == "Microsoft.KeyVault/vaults/keys/rotate/action on /s/k"
    assert missing_permission(policy) == "the access policy permission keys/rotate on key vault kv1"
    assert missing_permission("Throttled") is None


def test_a_result_is_plain_strings_in_json():
    result = RotationResult("/k", Action.ROTATE, RotationStatus.ROTATED, "due", "/k", "v1", "v2")
    assert json.loads(json.dumps(result.to_dict()))["action"] == "rotate"
    assert json.dumps(result.to_dict()).count('"rotated"') == 1
    assert result.dedupe_key == "rotate:/k:v2:rotated"
