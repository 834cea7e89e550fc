"""The operator's settings, read once: the environment (app settings, the same names as in local.settings.json and
infra/) and host.json's queue settings, into one frozen `Settings` with a section per package.

    settings = Settings.from_env()           # os.environ; Settings.from_env({"CRYPTWARD_SCOPES": "..."}) in tests
    settings.plan       # PlanSettings: what the fixes write (workspace, DES map, lock and setting names, exemption tag)
    settings.intake     # IntakeSettings: debounce, fights, work lock, the bot's identity, scopes, host.json's retry
    settings.host       # HostSettings: host.json's extensions.queues
    settings.azure      # AzureSettings: the cloud profile and the identity the bot acts as
    settings.storage    # StorageSettings: the function app's storage account, table prefix, work queue
    settings.notices    # NoticeSettings: routes, destinations, approval links
    settings.approvals  # ApprovalSettings: who may approve, and how approvers sign in

| variable | meaning | default |
|---|---|---|
| `CRYPTWARD_OWNER_TAG` | the tag naming a key vault's owner (kv-owner-tag's `tagName`) | `owner` |
| `CRYPTWARD_EXEMPTION_TAG` | the tag declaring exemptions (see exemptions.py) | `cryptward-exempt` |
| `CRYPTWARD_WORKSPACE_ID` | Log Analytics workspace id for key vault diagnostic settings | none: not fixed |
| `CRYPTWARD_ALERT_ACTION_GROUP` | action group the key vault alert rules Cryptward adds notify | none: not fixed |
| `CRYPTWARD_DES_MAP` | JSON `{"<sub>": {"<region>": {"<encryption type>": "<DES id>"}}}` (desmap.py) | `{}` |
| `CRYPTWARD_LOCK_NAME` | name of the CanNotDelete lock Cryptward adds | `cryptward-cannot-delete` |
| `CRYPTWARD_DIAGNOSTIC_SETTING_NAME` | name of the diagnostic setting Cryptward adds | `cryptward` |
| `CRYPTWARD_KEY_ACCESS_ALLOW` | JSON `{"<vault or its scope>": ["<scope of DES that may use it>"]}` | `{}` |
| `CRYPTWARD_ROTATE_VAULTS` | vaults (or their groups, subscriptions) whose keys rotate though no DES uses them | none |
| `CRYPTWARD_POLICY_MODES` | JSON `{"<policy id>": "<audit, approve or remediate>"}`: overrides modes | `{}` |
| `CRYPTWARD_POLICIES` | the policies folder | `policies/` beside the package |

The other sections' variables are listed where they are read below (and in the README's App settings). Empty values
count as unset (local.settings.json lists every name). What is parsed here fails here, naming the variable; the
storage settings and the destinations are checked when the ledger, the queue or a sender is first built from them.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediations import desmap
from remediations.changes import PlanSettings
from remediations.errors import SettingsError

if TYPE_CHECKING:
    from remediations.azure import CloudProfile
    from remediations.engine.reader import Scope
    from remediations.notices.compose import Routes

MODES = ("audit", "approve", "remediate")
DEFAULT_POLICIES = Path(__file__).resolve().parent.parent / "policies"
HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
STORAGE_PREFIX = "AzureWebJobsStorage"
STORAGE_NAMES = ("AZURE_CLIENT_ID", "CRYPTWARD_TABLE_PREFIX", "CRYPTWARD_WORK_QUEUE")
DESTINATION_PREFIX = "CRYPTWARD_DEST_"
SIGNIN_MODES = ("entra", "platform")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def host_settings(path: Path = HOST_JSON) -> dict[str, Any]:
    """host.json's queue settings: maxDequeueCount, visibilityTimeout (s), batchSize; defaults as the host's."""
    try:
        queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
    except (OSError, ValueError, AttributeError):
        queues = {}
    hms = str(queues.get("visibilityTimeout") or "00:00:00").split(":")
    try:
        retry = int(hms[0]) * 3600 + int(hms[1]) * 60 + float(hms[2])
    except (ValueError, IndexError):
        retry = 0.0
    return {
        "maxDequeueCount": int(queues.get("maxDequeueCount") or 5),
        "visibilityTimeout": retry,
        "batchSize": int(queues.get("batchSize") or 16),
    }


@dataclass(frozen=True)
class HostSettings:
    """host.json's `extensions.queues`, as the Functions host (and `cryptward serve`) applies them."""

    max_dequeue_count: int = 5
    retry_seconds: float = 0.0  # visibilityTimeout: how long a failed message waits before its next try
    batch_size: int = 16

    @classmethod
    def read(cls, path: Path = HOST_JSON) -> HostSettings:
        hs = host_settings(path)
        return cls(int(hs["maxDequeueCount"]), float(hs["visibilityTimeout"]), int(hs["batchSize"]))


def _value(env: Mapping[str, str]) -> Callable[[str], str | None]:
    def value(name: str) -> str | None:
        return (env.get(name) or "").strip() or None

    return value


@dataclass(frozen=True)
class IntakeSettings:
    """What the intake and the worker need: debounce, fights, the work lock, the bot's identity, the scopes."""

    debounce_seconds: float = 30.0
    fight_threshold: int = 3
    fight_window_seconds: float = 3600.0
    work_lock_seconds: float = 300.0
    bot_ids: frozenset[str] = frozenset()
    scopes: tuple[Scope, ...] = ()  # as configured: a management group's is expanded by remediations.scopes
    not_scopes: tuple[Scope, ...] = ()  # CRYPTWARD_NOT_SCOPES: nothing under these is in scope
    max_dequeue_count: int = 5
    retry_seconds: float = 0.0  # host.json's visibilityTimeout: how long a failed item waits before its next try

    @classmethod
    def from_env(cls, env: Mapping[str, str], host: HostSettings | None = None) -> IntakeSettings:
        from remediations import scopes

        def number(name: str, default: float, *, minimum: float = 0) -> float:
            raw = (env.get(name) or "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise SettingsError(f"{name} must be a number, not {raw!r}") from None
            if not math.isfinite(value) or value < minimum:
                raise SettingsError(f"{name} must be a number of at least {minimum:g}, not {raw!r}")
            return value

        bot = [env.get("CRYPTWARD_BOT_CLIENT_ID"), env.get("CRYPTWARD_BOT_OBJECT_ID")]
        if not any((b or "").strip() for b in bot):
            bot = [env.get("AZURE_CLIENT_ID")]
        host = host or HostSettings.read()
        raw_scopes = (env.get("CRYPTWARD_SCOPES") or "").strip() or (env.get("AZURE_SUBSCRIPTION_ID") or "").strip()
        return cls(
            debounce_seconds=number("CRYPTWARD_DEBOUNCE_SECONDS", 30.0),
            fight_threshold=int(number("CRYPTWARD_FIGHT_THRESHOLD", 3, minimum=1)),
            fight_window_seconds=number("CRYPTWARD_FIGHT_WINDOW_SECONDS", 3600.0),
            work_lock_seconds=number("CRYPTWARD_WORK_LOCK_SECONDS", 300.0, minimum=1),
            bot_ids=frozenset(b.strip().lower() for b in bot if b and b.strip()),
            scopes=scopes.parse_all(raw_scopes, "CRYPTWARD_SCOPES"),
            not_scopes=scopes.parse_all(env.get("CRYPTWARD_NOT_SCOPES"), "CRYPTWARD_NOT_SCOPES"),
            max_dequeue_count=host.max_dequeue_count,
            retry_seconds=host.retry_seconds,
        )

    def scope_of(self, resource_id: str) -> Scope | None:
        """The configured scope holding `resource_id`, or None: subscriptions and resource groups only (a management
        group's subscriptions and the not-scopes are known after expansion: use the runtime's `scopes.scope_of`)."""
        return next((s for s in self.scopes if s.contains(resource_id)), None)


def _seconds(raw: str | None, default: float, name: str = "CRYPTWARD_ROLE_PROPAGATION_SECONDS") -> float:
    """A number of seconds (at least 0) from a setting; SettingsError naming it when it is not one."""
    text = (raw or "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise SettingsError(f"{name} must be a number of seconds of at least 0, not {text!r}")
    return value


@dataclass(frozen=True)
class AzureSettings:
    """Where ARM is (AZURE_RESOURCE_MANAGER_ENDPOINT, REQUESTS_CA_BUNDLE, CRYPTWARD_POLLING_INTERVAL,
    CRYPTWARD_ARM_SCOPE: azure.CloudProfile) and who the bot is (AZURE_CLIENT_ID selects a user-assigned identity)."""

    profile: CloudProfile | None = None  # None: public Azure
    client_id: str | None = None
    tenant_id: str = ""
    subscription_id: str | None = None
    # CRYPTWARD_READ_CONCURRENCY, CRYPTWARD_WRITE_CONCURRENCY, CRYPTWARD_INVENTORY(_THRESHOLD): Azure's fields
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AzureSettings:
        from remediations.azure import CloudProfile, client_options

        value = _value(env)
        return cls(CloudProfile.from_env(env), value("AZURE_CLIENT_ID"), env.get("AZURE_TENANT_ID", ""),
                   value("AZURE_SUBSCRIPTION_ID"), client_options(env))  # fmt: skip


@dataclass(frozen=True)
class StorageSettings:
    """The function app's own storage account, as the Functions host reads it (`AzureWebJobsStorage`, or its
    identity-based `AzureWebJobsStorage__*` settings: store/storage.py), CRYPTWARD_TABLE_PREFIX and
    CRYPTWARD_WORK_QUEUE. Kept as given: the store checks them when it first builds a client."""

    values: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold the account key

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StorageSettings:
        return cls({k: v for k, v in env.items() if k.startswith(STORAGE_PREFIX) or k in STORAGE_NAMES})

    @property
    def configured(self) -> bool:
        """A connection string or identity-based settings are present (the health endpoint's question)."""
        return bool(self.values.get(STORAGE_PREFIX)) or any(
            k.startswith(f"{STORAGE_PREFIX}__") and v for k, v in self.values.items()
        )


@dataclass(frozen=True)
class NoticeSettings:
    """CRYPTWARD_ROUTES (who is told where), the destinations (CRYPTWARD_DEST_<NAME>_URL / _SECRET / _KEY), the
    approval links (CRYPTWARD_PUBLIC_URL, CRYPTWARD_APPROVAL_KEY), the tenant the portal links name. Routes are
    parsed when notices are built, so that settings that are wrong for notices never block a fix."""

    routes_setting: str = ""
    destinations: Mapping[str, str] = field(default_factory=dict, repr=False)  # CRYPTWARD_DEST_*: URLs, secrets
    public_url: str = ""
    approval_key: str = field(default="", repr=False)
    tenant_id: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NoticeSettings:
        return cls(
            routes_setting=(env.get("CRYPTWARD_ROUTES") or "").strip(),
            destinations={k: v for k, v in env.items() if k.startswith(DESTINATION_PREFIX)},
            public_url=(env.get("CRYPTWARD_PUBLIC_URL") or "").strip().rstrip("/"),
            approval_key=(env.get("CRYPTWARD_APPROVAL_KEY") or "").strip(),
            tenant_id=env.get("AZURE_TENANT_ID", ""),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.routes_setting)

    @property
    def routes(self) -> Routes:
        from remediations.notices.compose import Routes

        return Routes.parse(self.routes_setting)

    def problems(self) -> list[str]:
        """What is wrong with the notice settings, each naming the setting and never a value: routes that do not
        parse, and destinations a route names that are not configured (a typo sends every notice nowhere)."""
        from remediations.notices.delivery import Destinations

        try:
            routes = self.routes
        except SettingsError as e:
            return [str(e)]
        destinations = Destinations(self.destinations)
        out = []
        for ref in sorted({ref for refs in routes.table.values() for ref in refs}):
            try:
                destinations.of(ref)
            except SettingsError as e:
                out.append(f"CRYPTWARD_ROUTES names {ref}, which is not configured: {e}")
        return out


@dataclass(frozen=True)
class ApprovalSettings:
    """Who may decide a change waiting for approval, and how they sign in (remediations/triggers/signin.py).

    | variable | meaning | default |
    |---|---|---|
    | `CRYPTWARD_APPROVERS` | object ids of the users or groups who may approve (commas or spaces) | none: nobody |
    | `CRYPTWARD_SIGNIN` | `entra` (this page signs people in) or `platform` (App Service Authentication) | `entra` |
    | `CRYPTWARD_SIGNIN_AUTHORITY` | `https://login.microsoftonline.com/<tenant id>` | none |
    | `CRYPTWARD_SIGNIN_CLIENT_ID` | the application (client) id of the approval page's app registration | none |
    | `CRYPTWARD_SIGNIN_CLIENT_SECRET` | its client secret (a Key Vault reference in infra/) | none |

    The tenant approvers must belong to is the authority's tenant id, else AZURE_TENANT_ID. REQUESTS_CA_BUNDLE (the
    sandbox's CA) is trusted for the authority as for ARM."""

    approvers: frozenset[str] = frozenset()
    mode: str = "entra"
    authority: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    tenant_id: str = ""
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApprovalSettings:
        value = _value(env)
        raw = value("CRYPTWARD_APPROVERS") or ""
        approvers = [a for a in re.split(r"[\s,;]+", raw) if a]
        bad = [a for a in approvers if not _GUID.match(a)]
        if bad:
            raise SettingsError(
                f"CRYPTWARD_APPROVERS: {bad[0]!r} is not an object id; expected the object ids (GUIDs) of users or "
                "groups, separated by commas or spaces"
            )
        mode = (value("CRYPTWARD_SIGNIN") or "entra").lower()
        if mode not in SIGNIN_MODES:
            raise SettingsError(f"CRYPTWARD_SIGNIN is {mode!r}; valid: {', '.join(SIGNIN_MODES)}")
        authority = (value("CRYPTWARD_SIGNIN_AUTHORITY") or "").rstrip("/")
        if authority and (not re.match(r"^https://[^/\s]+/[^/\s]+$", authority)):
            raise SettingsError(
                f"CRYPTWARD_SIGNIN_AUTHORITY is {authority!r}; expected https://login.microsoftonline.com/<tenant id>"
            )
        client_id = value("CRYPTWARD_SIGNIN_CLIENT_ID") or ""
        if client_id and not _GUID.match(client_id):
            raise SettingsError(f"CRYPTWARD_SIGNIN_CLIENT_ID is {client_id!r}; expected an application (client) id")
        segment = authority.rsplit("/", 1)[-1] if authority else ""
        tenant = segment if _GUID.match(segment) else (value("AZURE_TENANT_ID") or "")
        return cls(
            approvers=frozenset(a.lower() for a in approvers),
            mode=mode,
            authority=authority,
            client_id=client_id.lower(),
            client_secret=value("CRYPTWARD_SIGNIN_CLIENT_SECRET") or "",
            tenant_id=tenant.lower(),
            ca_bundle=value("REQUESTS_CA_BUNDLE"),
        )

    @property
    def why_not(self) -> str:
        """Why nobody can decide a change now ("" when approvers can sign in and decide): the notices and the
        approval page say it."""
        if not self.approvers:
            return (
                "Nobody may approve it yet: CRYPTWARD_APPROVERS is empty. Whoever runs Cryptward sets it to the object "
                "ids of the users or groups who may approve (README, Approvals); until then the change waits."
            )
        if self.mode == "entra":
            missing = [
                name
                for name, v in (
                    ("CRYPTWARD_SIGNIN_AUTHORITY", self.authority),
                    ("CRYPTWARD_SIGNIN_CLIENT_ID", self.client_id),
                    ("CRYPTWARD_SIGNIN_CLIENT_SECRET", self.client_secret),
                )
                if not v
            ]
            if missing:
                return (
                    f"Approvers cannot sign in yet: {', '.join(missing)} not set (README, Approvals); until then "
                    "the change waits."
                )
        if not self.tenant_id:
            return (
                "Approvers cannot sign in yet: the tenant is not known (CRYPTWARD_SIGNIN_AUTHORITY names no tenant id "
                "and AZURE_TENANT_ID is not set); until then the change waits."
            )
        return ""


@dataclass(frozen=True)
class Settings:
    """Every setting the bot reads, by section. The engine's own (plan, owner tag, mode overrides, the policies
    folder) sit at the top: `scan(..., settings=...)` is given the whole object."""

    plan: PlanSettings = field(default_factory=PlanSettings)
    owner_tag: str = "owner"
    modes: Mapping[str, str] = field(default_factory=dict)
    policies: Path = DEFAULT_POLICIES
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    host: HostSettings = field(default_factory=HostSettings)
    azure: AzureSettings = field(default_factory=AzureSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    notices: NoticeSettings = field(default_factory=NoticeSettings)
    approvals: ApprovalSettings = field(default_factory=ApprovalSettings)
    # Vaults (or the resource groups or subscriptions holding them) whose keys the rotation timer rotates although
    # no disk encryption set uses them: the operator's choice (CRYPTWARD_ROTATE_VAULTS), never a tag's.
    rotate_vaults: tuple[str, ...] = ()

    def rotates_vault(self, vault_id: str) -> bool:
        """Whether the operator opted this vault's keys into rotation."""
        wanted = vault_id.lower().rstrip("/")
        return any(wanted == s.lower().rstrip("/") or wanted.startswith(s.lower().rstrip("/") + "/")
                   for s in self.rotate_vaults)  # fmt: skip

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, host_json: Path = HOST_JSON) -> Settings:
        """The settings from `env` (the process environment unless given) and host.json; SettingsError naming the
        variable that is wrong."""
        env = dict(os.environ if env is None else env)
        value = _value(env)
        des_map = _json_object(value("CRYPTWARD_DES_MAP"), "CRYPTWARD_DES_MAP")
        problem = desmap.check(des_map)
        if problem:
            raise SettingsError(f"CRYPTWARD_DES_MAP {problem}")
        allow = _json_object(value("CRYPTWARD_KEY_ACCESS_ALLOW"), "CRYPTWARD_KEY_ACCESS_ALLOW")
        for vaults, users in allow.items():
            if not _is_scope(vaults) or not isinstance(users, list) or not all(_is_scope(u) for u in users):
                raise SettingsError(
                    f"CRYPTWARD_KEY_ACCESS_ALLOW: {vaults!r} must map a key vault, resource group or subscription id "
                    "to a list of resource group or subscription ids whose disk encryption sets may use its keys, "
                    'e.g. {"/subscriptions/<id>/resourceGroups/rg-keys": ["/subscriptions/<id>/resourceGroups/rg-app"]}'
                )
        modes = _json_object(value("CRYPTWARD_POLICY_MODES"), "CRYPTWARD_POLICY_MODES")
        for policy_id, mode in modes.items():
            if mode not in MODES:
                raise SettingsError(
                    f"CRYPTWARD_POLICY_MODES: {policy_id!r} has mode {mode!r}; valid modes: {', '.join(MODES)}"
                )
        plan = PlanSettings(
            workspace_id=value("CRYPTWARD_WORKSPACE_ID"),
            alert_action_group=value("CRYPTWARD_ALERT_ACTION_GROUP"),
            disk_encryption_sets=des_map,
            lock_name=value("CRYPTWARD_LOCK_NAME") or PlanSettings.lock_name,
            diagnostic_setting_name=value("CRYPTWARD_DIAGNOSTIC_SETTING_NAME") or PlanSettings.diagnostic_setting_name,
            exemption_tag=value("CRYPTWARD_EXEMPTION_TAG") or PlanSettings.exemption_tag,
            key_access_allow={k: tuple(v) for k, v in allow.items()},
            role_propagation_seconds=_seconds(value("CRYPTWARD_ROLE_PROPAGATION_SECONDS"), 600.0),
        )
        rotate_vaults = tuple((value("CRYPTWARD_ROTATE_VAULTS") or "").replace(",", " ").split())
        for scope in rotate_vaults:
            if not _is_scope(scope):
                raise SettingsError(
                    f"CRYPTWARD_ROTATE_VAULTS: {scope!r} is not a key vault, resource group or subscription id; "
                    "expected ids separated by commas or spaces, e.g. /subscriptions/<id>/resourceGroups/rg-keys"
                )
        policies = value("CRYPTWARD_POLICIES")
        host = HostSettings.read(host_json)
        return cls(
            plan=plan,
            owner_tag=value("CRYPTWARD_OWNER_TAG") or "owner",
            modes=modes,
            policies=Path(policies) if policies else DEFAULT_POLICIES,
            intake=IntakeSettings.from_env(env, host),
            host=host,
            azure=AzureSettings.from_env(env),
            storage=StorageSettings.from_env(env),
            notices=NoticeSettings.from_env(env),
            approvals=ApprovalSettings.from_env(env),
            rotate_vaults=rotate_vaults,
        )


def _is_scope(value: object) -> bool:
    """An ARM id from `/subscriptions/<id>` down (a subscription, resource group or resource)."""
    parts = str(value).strip().strip("/").split("/") if isinstance(value, str) else []
    return len(parts) >= 2 and parts[0].lower() == "subscriptions" and all(parts) and ".." not in parts


def _json_object(raw: str | None, name: str) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SettingsError(f"{name} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{name} must be a JSON object")
    return doc


__all__ = [
    "MODES",
    "ApprovalSettings",
    "AzureSettings",
    "HostSettings",
    "IntakeSettings",
    "NoticeSettings",
    "PlanSettings",
    "Settings",
    "StorageSettings",
    "host_settings",
]
