"""Key version rotation on a timer, and the follow-through of the disk encryption sets that use a rotated key.

| module | what it does |
|---|---|
| `run` | `rotate(azure, scope)` for the timer, `on_key_event(...)` for one Key Vault event |
| `followthrough` | every DES using a rotated key, and so its disks, moves to the new version |
| `keyversions` | when a version is due, and what rotation reports (pure) |
"""

from remediations.rotation.run import RotationReport, on_key_event, rotate

__all__ = ["RotationReport", "on_key_event", "rotate"]
