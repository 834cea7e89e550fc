"""read -> evaluate -> plan -> apply, for a scope (a sweep, a scan) or one resource (an event).

| module | what it does |
|---|---|
| `run` | the loop: `scan(scope, policies, ...)` gives a `Report` of findings, plans and results |
| `reader` | reads what the policies need with the fewest ARM calls: a scope (a sweep) or one resource (an event) |
| `found` | what the reader reads into: `Scope`, `Needs`, `Reading`, the lists' `Found` |
| `listing` | the sweep's paged lists per type and subscription (Resource Graph or ARM), locks, role assignments |
| `keysets` | disk encryption sets: the vault serving each key, role assignments over it, the keys, each vault's sets |
| `assemble` | the `cryptward` blocks of what was listed; what is in scope joins the reading |
| `planner` | findings in, an ordered and merged plan out (pure) |
| `applier` | writes each change through `remediations.azure`, re-reads and verifies it |
| `dispatch` | which changes may be written at once: independent ones on a bounded pool, the rest in plan order |
| `stream` | evaluation per page of the Resource Graph inventory, each page's bodies dropped before the next |
| `streamed` | a scan streamed once read: each body evaluated, planned, dropped; findings and skips spooled |
| `spool` | rows written to a private temporary file as they come and read back in order |
| `scalesets` | what the reader reads for scale sets (their instances), snapshots and images (their source's key) |
| `inventory` | the policy types of many subscriptions through Resource Graph, in few paged queries within its quota |
| `rgroles` | their role assignments through Resource Graph (`authorizationresources`), to find, never to act on |
| `advisor` | which end-to-end encryption suits a VM or a scale set's model (pure) |
"""

from remediations.engine.reader import Scope
from remediations.engine.run import Report, scan

__all__ = ["Report", "Scope", "scan"]
