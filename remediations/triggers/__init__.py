"""What the doors of function_app.py call.

| module | what it does |
|---|---|
| `events` | Event Grid events and activity-log alerts into work items, or refused with the reason (pure) |
| `intake` | between the doors and the queue: scope, own changes, dedupe and debounce; the sweep timers |
| `worker` | behind the queue: one resource through the engine, results into the ledger, notices out |
| `decisions` | the approval endpoint behind approve / deny links |
| `health` | the health endpoint's answer |

Each door imports only the module it needs (`remediations.triggers.health` does not load the engine); the names
below are loaded from their module on first use. The health door calls `remediations.triggers.health.answer`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from remediations.triggers.decisions import respond
    from remediations.triggers.intake import on_alert, on_event, rotation_sweep, sweep
    from remediations.triggers.worker import handle_message, retry_notices

_WHERE = {
    "respond": ("decisions", "respond"),
    "on_alert": ("intake", "on_alert"),
    "on_event": ("intake", "on_event"),
    "rotation_sweep": ("intake", "rotation_sweep"),
    "sweep": ("intake", "sweep"),
    "handle_message": ("worker", "handle_message"),
    "retry_notices": ("worker", "retry_notices"),
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


__all__ = ["handle_message", "on_alert", "on_event", "respond", "retry_notices", "rotation_sweep", "sweep"]
