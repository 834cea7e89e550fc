"""The health endpoint's answer: version and whether the settings the bot needs are present (names, never values)."""

from __future__ import annotations

import json
import os

from remediations import __version__

REQUIRED_SETTINGS = ("AzureWebJobsStorage",)


def report() -> str:
    missing = [name for name in REQUIRED_SETTINGS if not os.environ.get(name)]
    return json.dumps({"service": "cryptward", "version": __version__, "missingSettings": missing})
