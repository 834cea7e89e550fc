"""The health endpoint's answer: version, whether the settings the bot needs are present and make sense (names, never
values), and `healthy`: false (the door answers 503) when a setting would make the bot fail silently."""

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
        return json.dumps({**answer, "missingSettings": [], "settingsValid": False, "healthy": False})
    missing = [] if storage.configured else list(REQUIRED_SETTINGS)
    runtime = rt or current()
    problems = runtime.settings.notices.problems()
    # The definitions that did not load, once the policies are loaded (the health door does not load them itself).
    refused = list(runtime.refused_policies)
    body = {**answer, "missingSettings": missing, "problems": problems, "policiesNotLoaded": refused}
    return json.dumps({**body, "healthy": not problems})


def answer(rt: Runtime | None = None) -> tuple[int, str]:
    """(HTTP status, body) for the health endpoint: 503 when the bot is not healthy, so a probe turns red."""
    body = report(rt)
    return (200 if json.loads(body)["healthy"] else 503), body
