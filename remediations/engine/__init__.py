"""read -> evaluate -> plan -> apply, for a scope (a sweep, a scan) or one resource (an event).

| module | what it does |
|---|---|
| `run` | the loop: `scan(scope, policies, ...)` gives a `Report` of findings, plans and results |
| `reader` | reads what the policies need with the fewest ARM calls; `Scope` |
| `planner` | findings in, an ordered and merged plan out (pure) |
| `applier` | writes each change through `remediations.azure`, re-reads and verifies it |
| `dispatch` | which changes may be written at once: independent ones on a bounded pool, the rest in plan order |
| `scalesets` | what the reader reads for scale sets (their instances), snapshots and images (their source's key) |
| `advisor` | which end-to-end encryption suits a VM or a scale set's model (pure) |
"""

from remediations.engine.reader import Scope
from remediations.engine.run import Report, scan

__all__ = ["Report", "Scope", "scan"]
