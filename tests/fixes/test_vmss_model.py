"""vmss-encryption-at-host's notice names the running instances a model change does not encrypt at host: those not
allocated with it, until deallocated and started again (Learn), whatever their model."""

import json
from datetime import UTC, datetime
from pathlib import Path

from remediations.changes import PlanContext
from remediations.fixes.vmss_model import plan_eah

SAMPLE = Path(__file__).resolve().parents[2] / "policies/vmss-encryption-at-host/samples/noncompliant/manual-dsv5.json"
CTX = PlanContext(now=datetime(2026, 12, 3, tzinfo=UTC))


def summary(instances):
    body = json.loads(SAMPLE.read_text())
    body["cryptward"]["instances"] = instances
    return plan_eah(body, {}, CTX)[-1].summary


def test_only_the_instances_allocated_without_it_are_named():
    got = summary(
        [
            {"instanceId": "0", "name": "web_0", "latestModelApplied": True, "encryptionAtHost": True},
            {"instanceId": "1", "name": "web_1", "latestModelApplied": True, "encryptionAtHost": False},
            {"instanceId": "2", "name": "web_2", "latestModelApplied": False},  # not said: not known to have it
        ]
    )
    assert "the 2 running without it (web_1, web_2) get it only once deallocated and started again" in got
    assert "web_0" not in got


def test_with_every_instance_encrypted_nothing_waits_and_unlisted_instances_are_said_so():
    assert "no instance without encryption at host" in summary(
        [{"instanceId": "0", "name": "web_0", "encryptionAtHost": True}]
    )
    body = json.loads(SAMPLE.read_text())
    body["cryptward"].pop("instances", None)
    assert "could not be listed" in plan_eah(body, {}, CTX)[-1].summary
