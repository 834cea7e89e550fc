"""The health endpoint's answer: version and whether the settings the bot needs are present (names, never values)."""

from __future__ import annotations

import json

from remediations import __version__
from remediations.errors import SettingsError
from remediations.runtime import Runtime, current

REQUIRED_SETTINGS = ("AzureWebJobsStorage",)


def report(rt: Runtime | None = None) -> str:
    """Identity-based connections (what infra/ deploys) are settings named AzureWebJobsStorage__accountName, ...
    Settings that do not parse are reported as such (`settingsValid`), never their values (the endpoint is
    anonymous)."""
    answer: dict[str, object] = {"service": "cryptward", "version": __version__}
    try:
        storage = (rt or current()).settings.storage
    except SettingsError:
        return json.dumps({**answer, "missingSettings": [], "settingsValid": False})
    missing = [] if storage.configured else list(REQUIRED_SETTINGS)
    return json.dumps({**answer, "missingSettings": missing})
