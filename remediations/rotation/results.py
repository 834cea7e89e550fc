"""What the rotation answers for one key, decided without I/O: the result it records (`rotation`), what a due key gets
instead of a new version under the policy's mode (`held_back`), and which fixed-version sets must be moved first
(`proofs`). Used by remediations/rotation/run.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from remediations.errors import AzureAccessError
from remediations.resources import get, name_of
from remediations.rotation.followthrough import AUTO
from remediations.rotation.keyversions import (
    DUE,
    PENDING_APPROVAL,
    ROTATE,
    KeyCheck,
    KeyVersion,
    ResultStatus,
    RotationResult,
    missing_permission,
)

ROTATION_POLICY = "key-rotation-policy"


def due_text(key: KeyVersion, check: KeyCheck) -> str:
    return f"Key {key.name} is due for a new version: {check.why}"


def held_back(key: KeyVersion, check: KeyCheck, mode: str) -> RotationResult | None:
    """What a due key gets instead of a new version: `due` in audit mode, `pending-approval` in approve mode; None
    when it is rotated (remediate mode)."""
    if mode == "audit":
        return rotation(key, DUE, f"{due_text(key, check)}. {ROTATION_POLICY} runs in audit mode: not rotated.")
    if mode == "approve":
        return rotation(key, PENDING_APPROVAL, f"{due_text(key, check)}. A person must approve the rotation first.")
    return None


def proofs(users: Sequence[dict[str, Any]], in_scope: Callable[[str], bool]) -> tuple[list[dict[str, Any]], str | None]:
    """The fixed-version sets to write (idempotently) before a rotation, in order up to the first one outside the
    scope, and that one's name: it stops the rotation, since it could not be moved to the new version."""
    writes: list[dict[str, Any]] = []
    for des in users:
        if get(des, AUTO) is True:
            continue
        if not in_scope(str(des["id"])):
            return writes, name_of(str(des["id"]))
        writes.append(des)
    return writes, None


def rotation(
    key: KeyVersion, status: ResultStatus, reason: str, after: str | None = None, error: AzureAccessError | None = None
) -> RotationResult:
    """A `rotate` result for `key`, naming the missing permission when Azure refused."""
    return RotationResult(
        key.key_id,
        ROTATE,
        status,
        reason,
        key.key_id,
        key.version,
        after,
        code=error.code if error else None,
        missing=missing_permission(error.message) if error else None,
    )


__all__ = ["ROTATION_POLICY", "due_text", "held_back", "proofs", "rotation"]
