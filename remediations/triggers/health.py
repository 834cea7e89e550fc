"""The health endpoint's answer: version and whether the settings the bot needs are present (names, never values)."""

from __future__ import annotations

import json
import os

from remediations import __version__

REQUIRED_SETTINGS = ("AzureWebJobsStorage",)


def _present(name: str) -> bool:
    # Identity-based connections (what infra/ deploys) are settings named NAME__accountName, NAME__queueServiceUri...
    return bool(os.environ.get(name)) or any(k.startswith(f"{name}__") and v for k, v in os.environ.items())


def report() -> str:
    missing = [name for name in REQUIRED_SETTINGS if not _present(name)]
    return json.dumps({"service": "cryptward", "version": __version__, "missingSettings": missing})
