"""The operator's settings, from the environment: the same names as in local.settings.json and the app settings.

| variable | meaning | default |
|---|---|---|
| `CRYPTWARD_OWNER_TAG` | the tag naming a key vault's owner (kv-owner-tag's `tagName`) | `owner` |
| `CRYPTWARD_EXEMPTION_TAG` | the tag declaring exemptions (see exemptions.py) | `cryptward-exempt` |
| `CRYPTWARD_WORKSPACE_ID` | Log Analytics workspace id for key vault diagnostic settings | none: not fixed |
| `CRYPTWARD_DES_MAP` | JSON `{"westeurope": {"EncryptionAtRestWithCustomerKey": "<DES id>"}}` | `{}`: disks not fixed |
| `CRYPTWARD_LOCK_NAME` | name of the CanNotDelete lock Cryptward adds | `cryptward-cannot-delete` |
| `CRYPTWARD_DIAGNOSTIC_SETTING_NAME` | name of the diagnostic setting Cryptward adds | `cryptward` |
| `CRYPTWARD_POLICY_MODES` | JSON `{"<policy id>": "<audit, approve or remediate>"}`: overrides modes | `{}` |
| `CRYPTWARD_POLICIES` | the policies folder | `policies/` beside the package |

Empty values count as unset (local.settings.json lists every name).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediations.changes import PlanSettings
from remediations.errors import SettingsError

MODES = ("audit", "approve", "remediate")
DEFAULT_POLICIES = Path(__file__).resolve().parent.parent / "policies"


@dataclass(frozen=True)
class Settings:
    """What the engine needs besides the policies: the planner's settings, the owner tag and mode overrides."""

    plan: PlanSettings = field(default_factory=PlanSettings)
    owner_tag: str = "owner"
    modes: Mapping[str, str] = field(default_factory=dict)
    policies: Path = DEFAULT_POLICIES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def value(name: str) -> str | None:
            raw = (env.get(name) or "").strip()
            return raw or None

        des_map = _json_object(value("CRYPTWARD_DES_MAP"), "CRYPTWARD_DES_MAP")
        for region, by_type in des_map.items():
            if not isinstance(by_type, dict) or not all(isinstance(v, str) for v in by_type.values()):
                raise SettingsError(
                    f"CRYPTWARD_DES_MAP: {region!r} must map encryption types to disk encryption set ids, e.g. "
                    '{"westeurope": {"EncryptionAtRestWithCustomerKey": "/subscriptions/.../diskEncryptionSets/x"}}'
                )
        modes = _json_object(value("CRYPTWARD_POLICY_MODES"), "CRYPTWARD_POLICY_MODES")
        for policy_id, mode in modes.items():
            if mode not in MODES:
                raise SettingsError(
                    f"CRYPTWARD_POLICY_MODES: {policy_id!r} has mode {mode!r}; valid modes: {', '.join(MODES)}"
                )
        plan = PlanSettings(
            workspace_id=value("CRYPTWARD_WORKSPACE_ID"),
            disk_encryption_sets=des_map,
            lock_name=value("CRYPTWARD_LOCK_NAME") or PlanSettings.lock_name,
            diagnostic_setting_name=value("CRYPTWARD_DIAGNOSTIC_SETTING_NAME") or PlanSettings.diagnostic_setting_name,
            exemption_tag=value("CRYPTWARD_EXEMPTION_TAG") or PlanSettings.exemption_tag,
        )
        policies = value("CRYPTWARD_POLICIES")
        return cls(
            plan=plan,
            owner_tag=value("CRYPTWARD_OWNER_TAG") or "owner",
            modes=modes,
            policies=Path(policies) if policies else DEFAULT_POLICIES,
        )


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


__all__ = ["MODES", "Settings"]
