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
from remediations.resources import DES_API, cryptward, get, name_of, same_subscription, subscription_of, versionless
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
    ResultStatus,
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
    """The id of the key a DES uses (`{vault id}/keys/{name}`, lower-cased): its vault as the reader found it from the
    key URL (`cryptward.keyVault`), else its `sourceVault` (absent when the vault is in another subscription)."""
    vault_id = str(cryptward(des, "keyVault.id") or get(des, "properties.activeKey.sourceVault.id") or "")
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
        if settled(key, des, self.now):
            return  # long in step: nothing to report (and no disk list to read)
        des_id = str(des["id"])
        disks = tuple(str(d["id"]) for d in self.disks_of(des_id))
        step = decide(key, des, disks, now=self.now, mode=self.mode, in_scope=self.scope.contains(des_id))
        if isinstance(step, Change):
            (outcome,) = applier.apply(Plan((step,)), self.azure, scope=self.scope)
            step = moved(key, des, disks, outcome, now=self.now)
        self.results.append(step)

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


# --- the verdict (pure) ----------------------------------------------------------------------------------------------


def settled(key: KeyVersion, des: Mapping[str, Any], now: datetime) -> bool:
    """The set has been on the newest version for longer than REPORT_WINDOW: nothing to report."""
    return _current(des) == key.version and now - key.created > REPORT_WINDOW


def decide(
    key: KeyVersion, des: Mapping[str, Any], disks: tuple[str, ...], *, now: datetime, mode: str, in_scope: bool
) -> RotationResult | Change:
    """What follow-through makes of one set and its disks: the result to report, or the change (PATCH to the newest
    version) to apply first, whose outcome `moved` reports."""
    age = now - key.created
    if _current(des) == key.version:
        moment = moment_of(get(des, "properties.lastKeyRotationTimestamp"))
        took = f", {span_text(moment - key.created)} after it was created" if moment and moment >= key.created else ""
        text = f"Disk encryption set {name_of(str(des['id']))}{_on(disks)} use version {key.version} of key {key.name}"
        return _result(key, des, disks, FOLLOW_THROUGH, VERIFIED, f"{text}{took}.")
    if get(des, AUTO) is True:
        return _automatic(key, des, disks, age)
    if mode != "remediate" or not in_scope:
        why = "it is outside the scope" if mode == "remediate" else f"rotation runs in {mode} mode"
        reason = f"{_behind(key, des, disks)}, not the newest {key.version}; not updated: {why}."
        return _result(key, des, disks, UPDATE_DES, BEHIND, reason, overdue=age)
    new_url = key.url(key.version)
    active: dict[str, Any] = {"keyUrl": new_url}
    if same_subscription(str(des["id"]), str(key.vault.get("id"))):
        # DiskRP: sourceVault "cannot be used if the KeyVault subscription is not the same as the Disk Encryption Set
        # subscription" (KeyForDiskEncryptionSet.sourceVault, DiskRP stable 2025-01-02 diskEncryptionSet.json).
        active["sourceVault"] = {"id": str(key.vault.get("id"))}
    return Change(
        resource_id=str(des["id"]),
        summary=f"Move disk encryption set {name_of(str(des['id']))} to version {key.version} of key {key.name}.",
        operation=Operation("PATCH", str(des["id"]), DES_API, {"properties": {"activeKey": active}}),
        before={KEY_URL: get(des, KEY_URL)},
        after={KEY_URL: new_url},
    )


def _automatic(key: KeyVersion, des: Mapping[str, Any], disks: tuple[str, ...], age: timedelta) -> RotationResult:
    """A set with automatic rotation behind the newest version: waiting up to FOLLOW_WITHIN, then escalated."""
    behind = _behind(key, des, disks)
    error = get(des, "properties.autoKeyRotationError")
    if error:
        why = f"{get(error, 'code')}: {get(error, 'message')}"
        reason = f"{behind}; Azure could not move it to version {key.version} ({why})."
        return _result(key, des, disks, FOLLOW_THROUGH, ESCALATED, reason, overdue=age, code=_code(error))
    if age <= FOLLOW_WITHIN:
        reason = (
            f"{behind}; Azure moves it to version {key.version} within an hour "
            "of its creation: checked again on a later run."
        )
        return _result(key, des, disks, FOLLOW_THROUGH, WAITING, reason)
    reason = f"{behind}, {span_text(age)} after version {key.version} was created; automatic rotation promises an hour."
    return _result(key, des, disks, FOLLOW_THROUGH, ESCALATED, reason, overdue=age)


def moved(
    key: KeyVersion, des: Mapping[str, Any], disks: tuple[str, ...], outcome: applier.Result, *, now: datetime
) -> RotationResult:
    """The result of moving a fixed-version set to the newest version: `updated`, or `failed` with what is missing."""
    if outcome.status in (applier.APPLIED, applier.ALREADY):
        reason = (
            f"Disk encryption set {name_of(str(des['id']))}{_on(disks)} moved from version "
            f"{_current(des) or '?'} to {key.version} of key {key.name}."
        )
        return _result(key, des, disks, UPDATE_DES, UPDATED, reason)
    reason = (
        f"{_behind(key, des, disks)}: the update to version {key.version} failed ({outcome.code}: "
        f"{outcome.detail.splitlines()[0] if outcome.detail else ''}); it keeps working "
        "on the old version and is retried on the next run."
    )
    missing = missing_permission(outcome.detail)
    return _result(
        key, des, disks, UPDATE_DES, FAILED, reason, code=outcome.code, missing=missing, overdue=now - key.created
    )


def _current(des: Mapping[str, Any]) -> str:
    return version_of(str(get(des, KEY_URL) or ""))


def _on(disks: tuple[str, ...]) -> str:
    return f" and its {len(disks)} disk(s)" if disks else ""


def _behind(key: KeyVersion, des: Mapping[str, Any], disks: tuple[str, ...]) -> str:
    name, current = name_of(str(des["id"])), _current(des)
    return f"Disk encryption set {name}{_on(disks)} still use version {current or '?'} of key {key.name}"


def _code(error: Any) -> str | None:
    return str(get(error, "code") or "") or None


def _result(
    key: KeyVersion,
    des: Mapping[str, Any],
    disks: tuple[str, ...],
    action: str,
    status: ResultStatus,
    reason: str,
    **extra: Any,
) -> RotationResult:
    return RotationResult(
        str(des["id"]), action, status, reason, key.key_id, _current(des), key.version, disks=disks, **extra
    )


__all__ = [
    "AUTO",
    "FOLLOW_WITHIN",
    "KEY_URL",
    "REPORT_WINDOW",
    "FollowThrough",
    "decide",
    "des_key",
    "moved",
    "settled",
]
