"""Key versions: when one is due for replacement, and what rotation reports about keys and disk encryption sets.
Pure: no I/O.

    moment, why = due_moment(created, expires, parse_duration("P90D"), parse_duration("P30D"), timedelta(0))
    RotationResult(resource_id, action, status, reason, key_id, before_version, after_version, ...)

`RotationResult` is what the ledger records and the notices render: one per key rotated (or found due, or refused)
and one per disk encryption set followed through. `missing_permission` turns Azure's refusal into the action (or
data action) and the scope it names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from remediations.engine.applier import Status
from remediations.resources import get, name_of

MAX_AGE_TAG = "cryptward-max-key-age"
DEFAULT_MAX_AGE = "P90D"
DEFAULT_WARNING = "P30D"
MIN_VERSION_AGE = timedelta(days=1)  # never replace a version younger: a short expiry would rotate on every run


class Action(StrEnum):
    """RotationResult.action: what rotation did, or which of the rotation policies' fixes it applied."""

    ROTATE = "rotate"
    FOLLOW_THROUGH = "follow-through"
    UPDATE_DES = "update-des"
    ROTATION_POLICY = "rotation-policy"  # the key-rotation-policy fix
    AUTO_ROTATION = "auto-rotation"  # the des-auto-rotation fix


class RotationStatus(StrEnum):
    """RotationResult.status of rotation's own actions. A key due but not rotated because a person must approve it,
    and a failure, are the applier's PENDING_APPROVAL and FAILED; the policies' fixes carry the applier's Status."""

    ROTATED = "rotated"
    DUE = "due"
    VERIFIED = "verified"
    WAITING = "waiting"
    ESCALATED = "escalated"
    UPDATED = "updated"
    BEHIND = "behind"


ResultStatus = RotationStatus | Status  # RotationResult.status
ROTATE, FOLLOW_THROUGH, UPDATE_DES = Action.ROTATE, Action.FOLLOW_THROUGH, Action.UPDATE_DES
ROTATED, DUE, VERIFIED, WAITING = (
    RotationStatus.ROTATED,
    RotationStatus.DUE,
    RotationStatus.VERIFIED,
    RotationStatus.WAITING,
)
ESCALATED, UPDATED, BEHIND = RotationStatus.ESCALATED, RotationStatus.UPDATED, RotationStatus.BEHIND
PENDING_APPROVAL, FAILED = Status.PENDING_APPROVAL, Status.FAILED


@dataclass(frozen=True)
class RotationResult:
    """One thing rotation did or found, for the ledger and the notices. `missing` is the action or data action Azure
    refused and its scope; `overdue` how long a set has been behind the newest version."""

    resource_id: str  # the key (rotate, rotation-policy) or the disk encryption set
    action: str  # an Action (or the name of a fix rotation applied that has none)
    status: ResultStatus
    reason: str
    key_id: str
    before_version: str | None = None
    after_version: str | None = None
    code: str | None = None
    missing: str | None = None
    overdue: timedelta | None = None
    disks: tuple[str, ...] = ()

    @property
    def dedupe_key(self) -> str:
        """The same for the same outcome in every run: the ledger's key to record or notify it once."""
        return f"{self.action}:{self.resource_id.lower()}:{self.after_version or ''}:{self.status}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "resourceId": self.resource_id,
            "action": self.action,
            "status": self.status,
            "reason": self.reason,
            "keyId": self.key_id,
            "beforeVersion": self.before_version,
            "afterVersion": self.after_version,
            "code": self.code,
            "missing": self.missing,
            "overdueSeconds": None if self.overdue is None else int(self.overdue.total_seconds()),
            "disks": list(self.disks),
        }


@dataclass(frozen=True)
class KeyCheck:
    """A key's current version and when it is due."""

    key_id: str
    version: str
    created: datetime
    expires: datetime | None
    max_age: str
    due_at: datetime
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "version": self.version,
            "created": self.created.isoformat(),
            "expires": self.expires.isoformat() if self.expires else None,
            "maxAge": self.max_age,
            "dueAt": self.due_at.isoformat(),
            "why": self.why,
        }


@dataclass(frozen=True)
class RotationReport:
    results: tuple[RotationResult, ...]
    checked: tuple[KeyCheck, ...]
    notes: tuple[str, ...] = ()
    calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def of(self, action: str, status: str | None = None) -> list[RotationResult]:
        return [r for r in self.results if r.action == action and status in (None, r.status)]

    @property
    def rotated(self) -> list[RotationResult]:
        return self.of(ROTATE, ROTATED)

    @property
    def escalations(self) -> list[RotationResult]:
        return [r for r in self.results if r.status == ESCALATED]

    @property
    def failures(self) -> list[RotationResult]:
        return [r for r in self.results if r.status == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results],
            "checked": [c.to_dict() for c in self.checked],
            "notes": list(self.notes),
            "calls": dict(self.calls),
        }


@dataclass
class KeyVersion:
    """A key's current version, with the ARM bodies of the key and its vault."""

    key_id: str
    vault: Mapping[str, Any]
    body: Mapping[str, Any]
    version: str
    created: datetime
    expires: datetime | None

    @property
    def name(self) -> str:
        return name_of(self.key_id)

    @property
    def vault_url(self) -> str:
        uri = (
            get(self.vault, "properties.vaultUri")
            or str(get(self.body, "properties.keyUri") or "").partition("/keys/")[0]
        )
        return str(uri).rstrip("/") + "/"

    def url(self, version: str) -> str:
        return f"{self.vault_url}keys/{self.name}/{version}"


def key_version(body: Mapping[str, Any], vault: Mapping[str, Any]) -> KeyVersion:
    """The current version of a key from its management-plane GET body."""
    url = str(get(body, "properties.keyUriWithVersion") or "")
    return KeyVersion(
        str(body["id"]),
        vault,
        body,
        version_of(url),
        moment_of(get(body, "properties.attributes.created")) or datetime.fromtimestamp(0, UTC),
        moment_of(get(body, "properties.attributes.exp")),
    )


# --- durations and due dates (pure) ----------------------------------------------------------------------------------

_DURATION = re.compile(
    r"P(?!$)(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+)S)?)?"
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (a year is 365 days, a month 30, as Key Vault counts them); ValueError otherwise."""
    m = _DURATION.fullmatch(text.strip().upper())
    if m is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P90D, P3M or P1Y")
    g = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
    days = g["y"] * 365 + g["mo"] * 30 + g["w"] * 7 + g["d"]
    return timedelta(days=days, hours=g["h"], minutes=g["mi"], seconds=g["s"])


def due_moment(
    created: datetime, expires: datetime | None, max_age: timedelta, warning: timedelta, grace: timedelta
) -> tuple[datetime, str]:
    """When a version created at `created` must be replaced, and why."""
    moment, why = created + max_age + grace, f"its current version is older than {span_text(max_age)}"
    if expires is not None:
        by_expiry = max(expires - warning, created + MIN_VERSION_AGE)
        if by_expiry < moment:
            moment = by_expiry
            why = f"its current version expires on {expires:%Y-%m-%d} (within {span_text(warning)})"
    return moment, why


def span_text(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours // 24} days" if hours >= 48 else f"{hours} h {int(span.total_seconds() % 3600 // 60)} min"


def moment_of(value: Any) -> datetime | None:
    """Epoch seconds, an ISO 8601 string or a datetime as an aware datetime; None for anything else."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def version_of(key_url: str) -> str:
    """`https://kv/keys/name/abc` -> `abc`; '' for a versionless URL."""
    tail = key_url.partition("/keys/")[2].strip("/").split("/")
    return tail[1].lower() if len(tail) > 1 else ""


def tag_value(body: Mapping[str, Any] | None, name: str) -> str | None:
    tags = (body or {}).get("tags") or {}
    return next((str(v) for k, v in tags.items() if str(k).lower() == name.lower() and str(v).strip()), None)


def missing_permission(text: str) -> str | None:
    """`<action> on <scope>` from an ARM AuthorizationFailed or Key Vault ForbiddenByRbac / AccessDenied message."""
    action = re.search(r"perform action '([^']+)'|Action: '([^']+)'", text)
    scope = re.search(r"over scope '([^']+)'|Resource: '([^']+)'", text)
    if action:
        found = action.group(1) or action.group(2)
        return f"{found} on {scope.group(1) or scope.group(2)}" if scope else found
    policy = re.search(r"does not have keys (\w+) permission on key vault '([^';]+)", text)
    return f"the access policy permission keys/{policy.group(1)} on key vault {policy.group(2)}" if policy else None


__all__ = [
    "BEHIND",
    "DEFAULT_MAX_AGE",
    "DEFAULT_WARNING",
    "DUE",
    "ESCALATED",
    "FAILED",
    "FOLLOW_THROUGH",
    "MAX_AGE_TAG",
    "MIN_VERSION_AGE",
    "PENDING_APPROVAL",
    "ROTATE",
    "ROTATED",
    "UPDATED",
    "UPDATE_DES",
    "VERIFIED",
    "WAITING",
    "Action",
    "KeyCheck",
    "KeyVersion",
    "ResultStatus",
    "RotationReport",
    "RotationResult",
    "RotationStatus",
    "due_moment",
    "key_version",
    "missing_permission",
    "moment_of",
    "parse_duration",
    "span_text",
    "tag_value",
    "version_of",
]
