"""Follow-through: once a key has a new version, every disk encryption set (DES) using it, and so its disks, must
move to it, or rotating the key protects nothing.

    FollowThrough(azure, scope, now, mode="remediate").follow(key_version, des_body)   # appends RotationResults

A DES on the newest version is `verified` (reported while that version is under REPORT_WINDOW old, so a daily timer
reports it once, twice at worst; `dedupe_key` lets the ledger keep one). A DES with automatic rotation behind the
newest version is `waiting` up to FOLLOW_WITHIN after the version's creation (Azure: "within one hour"), then
`escalated` with how long it has been, at once when Azure reports an `autoKeyRotationError`. A DES with a fixed
version is PATCHed to the newest through the applier (`updated`, or `failed` with the missing permission; it keeps
working on the old version meanwhile), or reported `behind` when rotation does not remediate or it is out of scope.
ARM shows no key version on a disk: its DES's `activeKey` is the disks' key, and the disks are listed by set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from remediations.azure import Azure, as_body, translated
from remediations.changes import Change, Operation, Plan
from remediations.engine import applier
from remediations.engine.reader import Scope
from remediations.errors import AzureAccessError
from remediations.resources import DES_API, get, name_of, subscription_of, versionless
from remediations.rotation.keyversions import (
    BEHIND,
    ESCALATED,
    FAILED,
    FOLLOW_THROUGH,
    UPDATE_DES,
    UPDATED,
    VERIFIED,
    WAITING,
    KeyVersion,
    RotationResult,
    missing_permission,
    moment_of,
    span_text,
    version_of,
)

FOLLOW_WITHIN = timedelta(hours=1)
REPORT_WINDOW = timedelta(days=2)
KEY_URL = "properties.activeKey.keyUrl"
AUTO = "properties.rotationToLatestKeyVersionEnabled"


def des_key(des: Mapping[str, Any]) -> str | None:
    """The id of the key a DES uses (`{vault id}/keys/{name}`, lower-cased)."""
    vault_id = str(get(des, "properties.activeKey.sourceVault.id") or "")
    url = str(get(des, KEY_URL) or "")
    return f"{vault_id}/keys/{name_of(versionless(url))}".lower() if vault_id and "/keys/" in url else None


@dataclass
class FollowThrough:
    """Checks sets against their key's newest version; `results` and `notes` collect what it found and did."""

    azure: Azure
    scope: Scope
    now: datetime
    mode: str = "remediate"  # the rotation's mode: only remediate moves fixed-version sets
    results: list[RotationResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _disks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    # -- follow-through -----------------------------------------------------------------------------------------

    def follow(self, key: KeyVersion, des: Mapping[str, Any]) -> None:
        des_id, des_name = str(des["id"]), name_of(str(des["id"]))
        current = version_of(str(get(des, KEY_URL) or ""))
        age = self.now - key.created
        if current == key.version and age > REPORT_WINDOW:
            return  # long in step: nothing to report (and no disk list to read)
        disks = tuple(str(d["id"]) for d in self.disks_of(des_id))
        on_disks = f" and its {len(disks)} disk(s)" if disks else ""

        def result(action: str, status: str, reason: str, **extra: Any) -> None:
            self.results.append(
                RotationResult(des_id, action, status, reason, key.key_id, current, key.version, disks=disks, **extra)
            )

        if current == key.version:
            moved = moment_of(get(des, "properties.lastKeyRotationTimestamp"))
            took = f", {span_text(moved - key.created)} after it was created" if moved and moved >= key.created else ""
            text = f"Disk encryption set {des_name}{on_disks} use version {key.version} of key {key.name}{took}."
            result(FOLLOW_THROUGH, VERIFIED, text)
            return
        behind = f"Disk encryption set {des_name}{on_disks} still use version {current or '?'} of key {key.name}"
        if get(des, AUTO) is True:
            error = get(des, "properties.autoKeyRotationError")
            if error:
                why = f"{get(error, 'code')}: {get(error, 'message')}"
                result(
                    FOLLOW_THROUGH,
                    ESCALATED,
                    f"{behind}; Azure could not move it to version {key.version} ({why}).",
                    overdue=age,
                    code=str(get(error, "code") or "") or None,
                )
            elif age <= FOLLOW_WITHIN:
                result(
                    FOLLOW_THROUGH,
                    WAITING,
                    f"{behind}; Azure moves it to version {key.version} within an hour "
                    "of its creation: checked again on a later run.",
                )
            else:
                result(
                    FOLLOW_THROUGH,
                    ESCALATED,
                    f"{behind}, {span_text(age)} after version {key.version} was created; "
                    "automatic rotation promises an hour.",
                    overdue=age,
                )
            return
        if self.mode != "remediate" or not self.scope.contains(des_id):
            why = "it is outside the scope" if self.mode == "remediate" else f"rotation runs in {self.mode} mode"
            result(UPDATE_DES, BEHIND, f"{behind}, not the newest {key.version}; not updated: {why}.", overdue=age)
            return
        new_url = key.url(key.version)
        active = {"keyUrl": new_url, "sourceVault": {"id": str(key.vault.get("id"))}}
        change = Change(
            resource_id=des_id,
            summary=f"Move disk encryption set {des_name} to version {key.version} of key {key.name}.",
            operation=Operation("PATCH", des_id, DES_API, {"properties": {"activeKey": active}}),
            before={KEY_URL: get(des, KEY_URL)},
            after={KEY_URL: new_url},
        )
        (outcome,) = applier.apply(Plan((change,)), self.azure, scope=self.scope)
        if outcome.status in (applier.APPLIED, applier.ALREADY):
            result(
                UPDATE_DES,
                UPDATED,
                f"Disk encryption set {des_name}{on_disks} moved from version "
                f"{current or '?'} to {key.version} of key {key.name}.",
            )
        else:
            result(
                UPDATE_DES,
                FAILED,
                f"{behind}: the update to version {key.version} failed ({outcome.code}: "
                f"{outcome.detail.splitlines()[0] if outcome.detail else ''}); it keeps working "
                "on the old version and is retried on the next run.",
                code=outcome.code,
                missing=missing_permission(outcome.detail),
                overdue=age,
            )

    def disks_of(self, des_id: str) -> list[dict[str, Any]]:
        sub = subscription_of(des_id).lower()
        if sub not in self._disks:
            try:
                with translated():
                    self._disks[sub] = [as_body(d) for d in self.azure.compute(sub).disks.list()]
            except AzureAccessError as e:
                self.notes.append(f"the disks of subscription {sub} could not be listed ({e.code})")
                self._disks[sub] = []
        wanted = des_id.lower()
        return [
            d
            for d in self._disks[sub]
            if str(get(d, "properties.encryption.diskEncryptionSetId") or "").lower() == wanted
        ]


__all__ = ["AUTO", "FOLLOW_WITHIN", "KEY_URL", "REPORT_WINDOW", "FollowThrough", "des_key"]
