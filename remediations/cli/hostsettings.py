"""How `cryptward serve` reads what the Functions host reads: local.settings.json's `Values`, `%NAME%` binding
expressions, NCRONTAB timer schedules (through croniter, a development tool imported only when serving)."""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from remediations.errors import SettingsError

_SETTING_REF = re.compile(r"%([A-Za-z0-9_]+)%")


class MissingDependency(SettingsError):
    """A development dependency of `cryptward serve` is not installed."""


def require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"`cryptward serve` needs {module} (a development tool, not installed by the Functions host): "
            "pip install -r requirements-dev.txt"
        ) from None


def load_settings(path: Path, env: dict[str, str] | None = None) -> list[str]:
    """Put local.settings.json's `Values` into the environment, except names already set; the names loaded."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    assert env is not None
    try:
        values = json.loads(path.read_text()).get("Values") or {}
    except FileNotFoundError:
        return []
    except ValueError as e:
        raise SettingsError(f"{path} is not valid JSON: {e}") from None
    loaded = []
    for name, value in values.items():
        if name not in env:
            env[name] = str(value)
            loaded.append(name)
    return loaded


def resolve(text: str, env: Mapping[str, str] | None = None) -> str:
    """`%NAME%` references replaced by app settings, as the host does for binding expressions."""
    env = os.environ if env is None else env

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in env:
            raise SettingsError(f"the binding expression %{m.group(1)}% names an app setting that is not set")
        return env[m.group(1)]

    return _SETTING_REF.sub(one, text)


def next_fire(schedule: str, after: datetime) -> datetime:
    """The next time an NCRONTAB schedule (`{second} {minute} {hour} {day} {month} {day-of-week}`) fires."""
    croniter = require("croniter").croniter
    fields = schedule.split()
    if len(fields) not in (5, 6):
        raise SettingsError(f"timer schedule {schedule!r}: expected 6 NCRONTAB fields (seconds first) or 5")
    try:
        it = croniter(schedule, after, second_at_beginning=len(fields) == 6)
        return it.get_next(datetime)
    except (ValueError, KeyError) as e:
        raise SettingsError(f"timer schedule {schedule!r} is not valid: {e}") from None


__all__ = ["MissingDependency", "load_settings", "next_fire", "require", "resolve"]
