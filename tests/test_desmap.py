"""CRYPTWARD_DES_MAP (remediations/desmap.py): keyed by subscription and region; the region-only form serves the
subscription of its sets; an ambiguous or malformed map is refused at load, naming the variable."""

import json

import pytest

from remediations.desmap import check, lookup
from remediations.errors import SettingsError
from remediations.settings import Settings

A, B = "0b1f6471-1bf0-4dda-aec3-cb9272f09590", "5f2c9d1e-7a43-4b8e-9c61-2d8e4a7b3f90"
CMK = "EncryptionAtRestWithCustomerKey"


def des(sub: str, name: str = "des") -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg-keys/providers/Microsoft.Compute/diskEncryptionSets/{name}"


def test_a_map_keyed_by_subscription_gives_each_subscription_its_own_set():
    des_map = {A: {"westeurope": {CMK: des(A)}}, B: {"West Europe": {CMK: des(B)}}}
    assert check(des_map) is None
    assert lookup(des_map, A, "westeurope", CMK) == des(A)
    assert lookup(des_map, B.upper(), "westeurope", CMK.lower()) == des(B)
    assert lookup(des_map, A, "northeurope", CMK) is None


def test_the_region_only_form_serves_the_subscription_of_its_sets_only():
    des_map = {"westeurope": {CMK: des(A)}}
    assert check(des_map) is None
    assert lookup(des_map, A, "West Europe", CMK) == des(A)
    assert lookup(des_map, B, "westeurope", CMK) is None  # Azure refuses a disk -> set across subscriptions


@pytest.mark.parametrize(
    ("des_map", "says"),
    [
        ({"westeurope": {CMK: des(A)}, "northeurope": {CMK: des(B)}}, "ambiguous: key it by subscription"),
        ({A: {"westeurope": {CMK: des(A)}}, "northeurope": {CMK: des(A)}}, "mixes subscription ids and regions"),
        ({A: {"westeurope": {CMK: des(B)}}}, f"it is in subscription {B}"),
        ({"westeurope": {CMK: "des-weu"}}, "is not a disk encryption set id"),
        ({"westeurope": [des(A)]}, "must map encryption types to disk encryption set ids"),
        ({A: [des(A)]}, "must map regions to encryption types"),
    ],
)
def test_an_ambiguous_or_malformed_map_is_refused_at_load(des_map, says):
    assert says in (check(des_map) or "")
    with pytest.raises(SettingsError) as e:
        Settings.from_env({"CRYPTWARD_DES_MAP": json.dumps(des_map)})
    assert str(e.value).startswith("CRYPTWARD_DES_MAP ") and says in str(e.value)
