"""Key version rotation on a timer, and the disk encryption sets' follow-through.

    report = rotate(Scope((sub,)), azure=azure, settings=settings, now=now, policies=policies, ledger=ledger)
    report = on_key_event("Microsoft.KeyVault.KeyNearExpiry", key_id, azure=azure, settings=settings, now=now)
    report.results                      # RotationResult per key rotated and per disk encryption set followed up

Which keys: every key a disk encryption set (DES) uses, and every key of a vault the operator opted in
(CRYPTWARD_ROTATE_VAULTS). Nothing else: a tag can opt nothing in, since anyone with tag rights can write one.
A key is *due* when its current version is older than the maximum age (the tag `cryptward-max-key-age` on the key,
else on its vault, else the key-rotation-policy's `maximumAge`, else P90D; an ISO 8601 duration such as P60D; a tag
shortens it to TAG_FLOOR at the least) or
expires within the warning window (P30D). A key whose own rotation policy rotates it gets a day's grace for Key
Vault to do so; a version is never replaced within a day of its creation. A due key gets a new version
(`KeyClient.rotate_key`) when the key-rotation-policy runs in remediate mode (or is not loaded); in audit mode it is
reported `due`, in approve mode `pending-approval`. The policies' own fixes run first through the planner and the
applier: a key without a rotation policy gets one (key-rotation-policy), and a DES starts following its key
(des-auto-rotation, remediate mode, vault with purge protection).

Follow-through, every run, for every DES using a key in scope: a DES on the newest version is `verified` (reported
while that version is under two days old); a DES with automatic rotation behind it is `waiting` for up to an hour
after the version's creation, then `escalated` with how long it has been (at once when Azure reports an
`autoKeyRotationError`); a DES with a fixed version is PATCHed to the newest through the applier (`updated`).

Idempotent without state of its own: right before rotating, the key is re-read on the data plane, and a current
version that is no longer due (someone rotated meanwhile) is left alone, so duplicate timer runs and events make no
second version. Key Vault has no compare-and-swap for rotate: two workers between that re-read and their rotate
would both rotate. `ledger.claim("rotate:{key id}:{version replaced}")` closes that window: of concurrent claimers
exactly one proceeds (the claim lasts CLAIM_SECONDS, long enough for one rotation, short enough for a retry).

Order, so that a refused permission leaves a consistent state: re-read the key (keys/read), then an idempotent
PATCH of every fixed-version DES with its current key (proves diskEncryptionSets/write, and that no lock or policy
blocks the update), then rotate (keys/rotate/action), then update the sets. A failure before the rotation leaves
everything as it was; a set whose update fails after it keeps its old version (still enabled) and is retried by the
follow-through of the next run. Results name the missing action and scope when Azure says which.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from remediations.azure import Azure, as_body, translated
from remediations.changes import PlanContext, SkipReason
from remediations.engine import applier, planner
from remediations.engine.planner import Finding
from remediations.engine.reader import Needs, Reading, Scope, read_resource, read_scope
from remediations.errors import AzureAccessError
from remediations.policy import aliases
from remediations.policy.loader import Policy, load_policies
from remediations.resources import DES_API, get, name_of, parent_of, subscription_of, versionless
from remediations.rotation.followthrough import FollowThrough, des_key
from remediations.rotation.keyversions import (
    DEFAULT_MAX_AGE,
    DEFAULT_WARNING,
    FAILED,
    MAX_AGE_TAG,
    ROTATE,
    ROTATED,
    Action,
    KeyCheck,
    KeyVersion,
    RotationReport,
    RotationResult,
    due_moment,
    key_version,
    missing_permission,
    moment_of,
    parse_duration,
    tag_value,
)
from remediations.rotation.results import ROTATION_POLICY, due_text, held_back, proofs, rotation
from remediations.settings import Settings

POLICY_GRACE = timedelta(days=1)  # a key whose rotation policy rotates it: Key Vault's turn first
# The shortest maximum age a tag may set: whoever can write tags must not make the bot rotate keys every day.
TAG_FLOOR = timedelta(days=30)
CLAIM_SECONDS = 900.0
DES_AUTO_ROTATION = "des-auto-rotation"
FIX_ACTIONS = {ROTATION_POLICY: Action.ROTATION_POLICY, DES_AUTO_ROTATION: Action.AUTO_ROTATION}
EVENTS = ("KeyNearExpiry", "KeyNewVersionCreated", "KeyExpired")


class Claims(Protocol):
    """What rotation needs of the ledger (`remediations.store.ledger.Ledger` has it)."""

    def claim(self, resource_key: str, window_seconds: float, now: datetime | None = None) -> bool: ...


# --- the run ---------------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    azure: Azure
    settings: Settings
    now: datetime
    scope: Scope
    policies: dict[str, Policy]
    ledger: Claims | None
    results: list[RotationResult] = field(default_factory=list)
    checked: list[KeyCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    follow: FollowThrough = field(init=False)

    def __post_init__(self) -> None:
        mode = self.mode(ROTATION_POLICY)
        self.follow = FollowThrough(self.azure, self.scope, self.now, mode, self.results, self.notes)

    def mode(self, policy_id: str) -> str:
        policy = self.policies.get(policy_id)
        if policy is None:
            return "remediate" if policy_id == ROTATION_POLICY else "audit"
        return str(self.settings.modes.get(policy_id) or policy.mode)

    # -- the policies' own fixes, through the planner and the applier --------------------------------------------

    def fixes(self, reading: Reading, keys: list[KeyVersion], sets: list[dict[str, Any]]) -> set[str]:
        """Apply key-rotation-policy to the keys and des-auto-rotation to the sets; the ids of the sets changed."""
        findings = []
        for policy_id, bodies in ((ROTATION_POLICY, [k.body for k in keys]), (DES_AUTO_ROTATION, sets)):
            policy = self.policies.get(policy_id)
            if policy is None or policy.fix is None:
                continue
            for body in bodies:
                if self.scope.contains(str(body["id"])) and policy.noncompliant(body, now=self.now):
                    findings.append(Finding(policy, body, self.settings.modes.get(policy_id)))
        if not findings:
            return set()
        ctx = PlanContext(
            now=self.now, resources=reading.related, settings=self.settings.plan, policy_ids=tuple(self.policies)
        )
        plan = planner.plan(findings, ctx)
        for skip in plan.skipped:
            if skip.reason != SkipReason.AUDIT_ONLY:
                self.notes.append(
                    f"{name_of(skip.resource_id)}: {skip.policy_id} not applied ({skip.reason}): {skip.detail}"
                )
        changed = set()
        for result in applier.apply(plan, self.azure, scope=self.scope, fresh=True, known=reading.related):
            change = result.change
            des = ctx.related(change.resource_id) or {}
            key_id = change.resource_id if change.fix == ROTATION_POLICY else (des_key(des) or "")
            self.results.append(
                RotationResult(
                    change.resource_id,
                    FIX_ACTIONS.get(change.fix, change.fix),
                    result.status,
                    f"{change.summary} {result.detail}".strip(),
                    key_id,
                    code=result.code,
                    missing=None if result.code is None else missing_permission(result.detail),
                )
            )
            if result.status == applier.APPLIED and change.fix == DES_AUTO_ROTATION:
                changed.add(change.resource_id.lower())
        return changed

    # -- one key ------------------------------------------------------------------------------------------------

    def check(self, key: KeyVersion) -> KeyCheck:
        max_age_text = self.max_age(key)
        policy = self.policies.get(ROTATION_POLICY)
        warning_text = str((policy.parameters if policy else {}).get("expiryWarning") or DEFAULT_WARNING)
        rotates_itself = any(
            str(get(a, "action.type")).lower() == "rotate" and get(a, "trigger.timeAfterCreate")
            for a in get(key.body, "properties.rotationPolicy.lifetimeActions") or []
        )
        moment, why = due_moment(
            key.created,
            key.expires,
            parse_duration(max_age_text),
            parse_duration(warning_text),
            POLICY_GRACE if rotates_itself else timedelta(0),
        )
        check = KeyCheck(key.key_id, key.version, key.created, key.expires, max_age_text, moment, why)
        return check

    def max_age(self, key: KeyVersion) -> str:
        policy = self.policies.get(ROTATION_POLICY)
        candidates = [
            (f"tag {MAX_AGE_TAG} of key {key.name}", tag_value(key.body, MAX_AGE_TAG)),
            (f"tag {MAX_AGE_TAG} of vault {name_of(str(key.vault.get('id', '')))}", tag_value(key.vault, MAX_AGE_TAG)),
            (f"{ROTATION_POLICY} parameter maximumAge", (policy.parameters if policy else {}).get("maximumAge")),
        ]
        for where, value in candidates:
            if value is None:
                continue
            try:
                age = parse_duration(str(value))
            except ValueError as e:
                self.notes.append(f"{where}: {e}; ignored")
                continue
            if where.startswith("tag") and age < TAG_FLOOR:
                self.notes.append(f"{where}: {value} is shorter than a tag may set; {TAG_FLOOR.days} days apply")
                return f"P{TAG_FLOOR.days}D"
            return str(value).strip().upper()
        return DEFAULT_MAX_AGE

    def rotate_key(self, key: KeyVersion, check: KeyCheck, users: list[dict[str, Any]]) -> KeyVersion:
        """Rotate `key` when it is due and everything after the rotation can be done; the key as it is afterwards."""
        held = held_back(key, check, self.mode(ROTATION_POLICY))
        if held is not None:
            self.results.append(held)
            return key
        due = due_text(key, check)
        client = self.azure.key_client(key.vault_url)
        try:
            with translated():
                current = client.get_key(key.name)
        except AzureAccessError as e:
            return self._failed(key, f"{due}. Not rotated: the key could not be re-read first ({e.code}).", e)
        fresh = _as_read(key, current, key.created)
        if fresh.version != key.version or self.now < self.check(fresh).due_at:
            self.notes.append(f"{key.name}: version {fresh.version} is current and not due; nothing rotated")
            return fresh
        if not self._claimed(key, due) or not self._proved(key, due, users):
            return key
        try:
            with translated():
                made = client.rotate_key(key.name)  # a 429 is retried by the client's WriteRetries (azure.py)
        except AzureAccessError as e:
            return self._failed(key, f"{due}. Not rotated ({e.code}).", e)
        new = _as_read(key, made, self.now)
        self.results.append(rotation(key, ROTATED, f"{due}. Version {new.version} created.", new.version))
        return new

    def _claimed(self, key: KeyVersion, due: str) -> bool:
        """Whether this worker holds the claim on replacing the key's current version (always, without a ledger)."""
        # The version being replaced names the due cycle exactly; the due date would not do: it depends on inputs a
        # concurrent worker may read differently (a rotation policy another worker has just given the key, a tag).
        claim_key = f"rotate:{key.key_id.lower()}:{key.version}"
        try:
            if self.ledger is not None and not self.ledger.claim(claim_key, CLAIM_SECONDS, self.now):
                self.notes.append(f"{key.name}: another worker holds the claim {claim_key}; nothing rotated")
                return False
        except AzureAccessError as e:
            self._failed(key, f"{due}. Not rotated: the ledger claim failed ({e.code}: {e.message}).", e)
            return False
        return True

    def _proved(self, key: KeyVersion, due: str, users: list[dict[str, Any]]) -> bool:
        """Whether every fixed-version set using the key can be moved to a new version: an idempotent PATCH of each
        with its current key proves it; a set outside the scope cannot be."""
        writes, outside = proofs(users, self.scope.contains)
        for des in writes:
            try:
                self.azure.write(
                    "PATCH", str(des["id"]), DES_API, {"properties": {"activeKey": get(des, "properties.activeKey")}}
                )
            except AzureAccessError as e:
                first = e.message.splitlines()[0] if e.message else ""
                self._failed(
                    key,
                    f"{due}. Not rotated: disk encryption set {name_of(str(des['id']))} uses a fixed version and could "
                    f"not be updated to a new one ({e.code}: {first}).",
                    e,
                )
                return False
        if outside is not None:
            self._failed(
                key,
                f"{due}. Not rotated: disk encryption set {outside} uses a fixed version and is "
                "outside the scope, so it could not be moved to the new version.",
            )
            return False
        return True

    def _failed(self, key: KeyVersion, reason: str, error: AzureAccessError | None = None) -> KeyVersion:
        self.results.append(rotation(key, FAILED, reason, error=error))
        return key

    # -- the whole --------------------------------------------------------------------------------------------------

    def run(self, reading: Reading, keys: list[KeyVersion], *, rotate: bool) -> None:
        sets = [b for b in reading.related.values() if str(b.get("type", "")).lower() == aliases.DES.lower()]
        users = _users(sets)
        ids = {k.key_id.lower() for k in keys}
        changed = self.fixes(reading, keys, [s for s in sets if des_key(s) in ids])
        refreshed: dict[str, dict[str, Any]] = {}
        for des_id in changed:
            try:
                refreshed[des_id] = dict(self.azure.get(des_id, DES_API))
            except AzureAccessError as e:
                self.notes.append(f"{name_of(des_id)} could not be read again after its change ({e.code})")
        for key in keys:
            using = [refreshed.get(str(d["id"]).lower(), d) for d in users.get(key.key_id.lower(), [])]
            check = self.check(key)
            self.checked.append(check)
            if rotate and self.now >= check.due_at:
                key = self.rotate_key(key, check, using)
            if any(r.action == ROTATE and r.key_id == key.key_id and r.status == FAILED for r in self.results):
                continue  # nothing rotated: the sets stay as they are
            if using and key.version != check.version:
                using = [self._reread(d) for d in using]
            for des in using:
                self.follow.follow(key, des)

    def _reread(self, des: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self.azure.get(str(des["id"]), DES_API))
        except AzureAccessError:
            return des


def _as_read(key: KeyVersion, sdk_key: Any, created: datetime) -> KeyVersion:
    """`key` at the version a Key Vault SDK key (`get_key`, `rotate_key`) holds; `created` when it gives no time."""
    props = sdk_key.properties
    return KeyVersion(
        key.key_id,
        key.vault,
        key.body,
        str(props.version).lower(),
        moment_of(props.created_on) or created,
        moment_of(props.expires_on),
    )


def _users(sets: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for des in sets:
        key_id = des_key(des)
        if key_id:
            out.setdefault(key_id, []).append(des)
    return out


def _keys_of(azure: Azure, reading: Reading, run: _Run) -> list[KeyVersion]:
    """The keys a set uses (read by the reader), and every key of an in-scope vault the operator opted in."""
    found: dict[str, KeyVersion] = {}
    key_type = aliases.KEY.lower()
    sets = [b for b in reading.related.values() if str(b.get("type", "")).lower() == aliases.DES.lower()]
    used = set(_users(sets))
    for rid, body in reading.resources.items():
        if str(body.get("type", "")).lower() != key_type or not run.scope.contains(rid):
            continue
        if rid.lower() in used or run.settings.rotates_vault(parent_of(rid)):
            vault = reading.related.get(parent_of(rid).lower()) or {}
            found[rid.lower()] = key_version(body, vault)
    for rid, reasons in reading.unreadable.items():
        if "/keys/" in rid and reasons:
            why = "; ".join(reasons.values())
            run.results.append(
                RotationResult(
                    rid,
                    ROTATE,
                    FAILED,
                    f"Not rotated: the key could not be read ({why}).",
                    rid,
                    missing=missing_permission(why),
                )
            )
    vault_type = aliases.VAULT.lower()
    for rid, vault in reading.resources.items():
        if str(vault.get("type", "")).lower() != vault_type or not run.settings.rotates_vault(rid):
            continue
        if not run.scope.contains(rid):
            continue
        parts = rid.split("/")
        try:
            with translated():
                listed = [as_body(k) for k in azure.keyvault(parts[2]).keys.list(parts[4], parts[8])]
        except AzureAccessError as e:
            run.notes.append(f"the keys of vault {parts[8]} could not be listed ({e.code}: {e.message})")
            continue
        for body in listed:
            found.setdefault(str(body["id"]).lower(), key_version(body, vault))
    return sorted(found.values(), key=lambda k: k.key_id.lower())


def _policies(policies: Sequence[Policy] | None, settings: Settings) -> dict[str, Policy]:
    loaded = load_policies(settings.policies) if policies is None else policies
    return {p.id: p for p in loaded if p.id in (ROTATION_POLICY, DES_AUTO_ROTATION)}


def _report(run: _Run, azure: Azure, before: Mapping[str, int], started: float) -> RotationReport:
    calls = {m: n - before.get(m, 0) for m, n in azure.calls.items() if n - before.get(m, 0)}
    return RotationReport(
        tuple(run.results), tuple(run.checked), tuple(dict.fromkeys(run.notes)), calls, time.perf_counter() - started
    )


NEEDS = Needs(frozenset({aliases.VAULT, aliases.KEY, aliases.DES}), frozenset())


def rotate(
    scope: Scope,
    *,
    azure: Azure,
    settings: Settings,
    now: datetime,
    policies: Sequence[Policy] | None = None,
    ledger: Claims | None = None,
) -> RotationReport:
    """The rotation timer: rotate every due key in `scope` and follow every disk encryption set using one through.
    `policies` None loads them from `settings.policies`; `ledger` (its `claim`) guards against concurrent workers.
    Raises `AzureAccessError` only when the scope itself cannot be listed."""
    started, before = time.perf_counter(), dict(azure.calls)
    run = _Run(azure, settings, now, scope, _policies(policies, settings), ledger)
    reading = read_scope(azure, scope, NEEDS)
    run.run(reading, _keys_of(azure, reading, run), rotate=True)
    return _report(run, azure, before, started)


def on_key_event(
    event_type: str,
    key_id: str,
    *,
    azure: Azure,
    settings: Settings,
    now: datetime,
    policies: Sequence[Policy] | None = None,
    ledger: Claims | None = None,
    scope: Scope | None = None,
) -> RotationReport:
    """A Key Vault event for one key (its ARM id `.../vaults/kv/keys/name`, or its URL `https://kv.vault.azure.net/
    keys/name[/version]`): KeyNearExpiry and KeyExpired rotate it now when it is due (the same rules as the timer);
    KeyNewVersionCreated follows the sets using it through. `scope` is where the bot may work (the configured scope
    holding the key: nothing outside it is written); without one, the key's subscription. A key URL is looked up
    among the vaults of `scope` (when given, else of every subscription the credential can list)."""
    kind = event_type.rsplit(".", 1)[-1]
    if kind not in EVENTS:
        raise ValueError(f"unknown Key Vault event type {event_type!r}; valid: {', '.join(EVENTS)}")
    started, before = time.perf_counter(), dict(azure.calls)
    key_id = key_id if key_id.startswith("/") else _key_id_of_url(azure, key_id, scope)
    scope = scope or Scope((subscription_of(key_id),))
    run = _Run(azure, settings, now, scope, _policies(policies, settings), ledger)
    reading = read_resource(azure, key_id, NEEDS)
    reasons = reading.reasons(key_id)
    if "" in reasons:
        why = reasons[""]
        run.results.append(
            RotationResult(
                key_id,
                ROTATE,
                FAILED,
                f"Not rotated: the key could not be read ({why}).",
                key_id,
                missing=missing_permission(why),
            )
        )
        return _report(run, azure, before, started)
    run.run(reading, _keys_of(azure, reading, run), rotate=kind != "KeyNewVersionCreated")
    return _report(run, azure, before, started)


def _key_id_of_url(azure: Azure, key_url: str, scope: Scope | None) -> str:
    """The ARM id of a key named by its data-plane URL: the vault whose vaultUri it starts with."""
    origin = versionless(key_url).partition("/keys/")[0].replace(".net:443", ".net").rstrip("/").lower()
    subs = scope.subscriptions if scope else [s["subscriptionId"] for s in azure.list("/subscriptions", "2022-12-01")]
    for sub in subs:
        path = f"/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults"
        for vault in azure.list(path, aliases.API_VERSIONS[aliases.VAULT]):
            if str(get(vault, "properties.vaultUri") or "").rstrip("/").lower() == origin:
                return f"{vault['id']}/keys/{name_of(versionless(key_url))}"
    raise ValueError(f"no key vault Cryptward can see serves {origin}")


__all__ = [
    "CLAIM_SECONDS",
    "EVENTS",
    "MAX_AGE_TAG",
    "Claims",
    "KeyCheck",
    "RotationReport",
    "RotationResult",
    "on_key_event",
    "rotate",
]
