"""What the doors of function_app.py call.

| module | what it does |
|---|---|
| `events` | Event Grid events and activity-log alerts into work items, or refused with the reason (pure) |
| `intake` | between the doors and the queue: scope, own changes, dedupe and debounce; the sweep timers |
| `worker` | behind the queue: one resource through the engine, results into the ledger, notices out |
| `decisions` | the approval endpoint behind approve / deny links |
| `health` | the health endpoint's answer |
"""

from remediations.triggers.decisions import respond
from remediations.triggers.health import report as health
from remediations.triggers.intake import on_alert, on_event, rotation_sweep, sweep
from remediations.triggers.worker import handle_message, retry_notices

__all__ = ["handle_message", "health", "on_alert", "on_event", "respond", "retry_notices", "rotation_sweep", "sweep"]
