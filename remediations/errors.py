"""Every error Cryptward raises on purpose. Catch `CryptwardError` to catch them all.

    CryptwardError
     ├── PolicyLoadError     the policies/ folder is invalid; lists every problem found, file by file
     ├── ConditionError      an Azure Policy condition cannot be compiled, or fails while being evaluated
     ├── FixRegistryError    a fix name is unknown, or registered twice
     ├── FixDeclined         a fix leaves a finding alone on purpose (ADE history, no caller, ...); carries the reason
     ├── PlanError           changes depend on each other in a cycle
     ├── UnknownPolicyError  a policy id asked for is not loaded; lists the valid ids
     ├── SettingsError       an environment setting (CRYPTWARD_*) is malformed; names it and what is expected
     ├── EventRejected       an Event Grid event or alert payload is malformed or too big; names the field and why
     ├── QueueRefused        a work item cannot be queued (over the 64 KB message limit); says why
     └── AzureAccessError    Azure answered with an error, or could not be reached; carries status, code, message
          └── CredentialError  no credential could get a token (not logged in, no managed identity)

Load-time errors name where the problem is and list the valid options. Add new errors here, under the base.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SECRET_QUERY = re.compile(r"(?i)([?&;](?:code|sig|signature|token|access_token|key|secret|password)=)[^&;#\s\"']*")


def redact(text: str) -> str:
    """`text` with the values of `code=`, `sig=`, `token=` (and similar) query parameters replaced."""
    return _SECRET_QUERY.sub(r"\1REDACTED", text)


class CryptwardError(Exception):
    """Base of every error Cryptward raises on purpose."""


def options_text(options: Iterable[str]) -> str:
    """`valid options: a, b, c` (or an empty string when there are none)."""
    listed = ", ".join(options)
    return f"; valid options: {listed}" if listed else ""


class ConditionError(CryptwardError):
    """A condition is malformed (at compile time) or cannot be evaluated (at run time).

    `path` is the JSON path inside the policy document (`if.allOf[1].field`), `options` the valid choices.
    """

    def __init__(self, path: str, message: str, options: Sequence[str] = ()) -> None:
        self.path = path
        self.message = message
        self.options = tuple(options)
        super().__init__(f"{path}: {message}{options_text(self.options)}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one policy file."""

    file: Path
    field: str
    message: str
    options: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}: {self.field or '(document)'}: {self.message}{options_text(self.options)}"


class PolicyLoadError(CryptwardError):
    """The policies folder holds at least one invalid policy. `problems` lists all of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the policies, nothing was loaded:\n{lines}")


class FixRegistryError(CryptwardError):
    """A fix name is not registered, or the same name is registered twice."""


class FixDeclined(CryptwardError):
    """A fix will not change this resource. `reason` is a `changes.SkipReason`; `detail` is a sentence. `changes`:
    what must happen first, planned all the same (a grant the declined change waits for)."""

    def __init__(self, reason: str, detail: str, changes: Sequence[Any] = ()) -> None:
        self.reason = reason
        self.detail = detail
        self.changes = tuple(changes)
        super().__init__(f"{reason}: {detail}")


class PlanError(CryptwardError):
    """The planned changes cannot be ordered (their dependencies form a cycle)."""


class SettingsError(CryptwardError):
    """A setting from the environment is malformed."""


class AzureAccessError(CryptwardError):
    """Azure answered an error (`status`, ARM `code` such as AuthorizationFailed, `message`) or was unreachable
    (`status` 0, `code` "ServiceRequestError")."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")

    @property
    def absent(self) -> bool:
        """Azure says the resource does not exist: a 404, except ARM's answers for a route it does not know
        (InvalidResourceType, InvalidResourceNamespace, InvalidRequestUri), which say nothing about the resource."""
        return self.status == 404 and self.code not in UNKNOWN_ROUTE_CODES


# ARM's codes for a request no resource provider serves (sandbox/arm.py cites the public answers they come from).
UNKNOWN_ROUTE_CODES = frozenset({"InvalidResourceType", "InvalidResourceNamespace", "InvalidRequestUri"})


class CredentialError(AzureAccessError):
    """No credential in the chain could get a token."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "CredentialUnavailable", message)


class UnknownPolicyError(CryptwardError):
    """Policy ids were asked for that no loaded policy has."""

    def __init__(self, unknown: Sequence[str], valid: Sequence[str]) -> None:
        self.unknown = tuple(unknown)
        self.valid = tuple(valid)
        super().__init__(f"unknown policy id(s): {', '.join(self.unknown)}{options_text(self.valid)}")


class EventRejected(CryptwardError):
    """An Event Grid event, an alert payload or a queued work item is malformed or too big.

    `field` says where (`[2].data.resourceUri`, `data.essentials.alertTargetIDs[0]`, `body`), `reason` what was
    expected there. Neither ever quotes a value from the payload: values may carry tokens or signed URLs.
    `index` is the event's position in its batch, when it came in one.
    """

    def __init__(self, field: str, reason: str, index: int | None = None) -> None:
        self.field = field
        self.reason = reason
        self.index = index
        super().__init__(f"{field}: {reason}")


class QueueRefused(CryptwardError):
    """A work item was not queued; `reason` says why (the message would exceed the queue's 64 KB limit)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
