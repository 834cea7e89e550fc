"""Who is told what, and how it reaches them. A notice never blocks or undoes a fix.

| module | what it does |
|---|---|
| `compose` | change notices from a run: owners, lines, routes (pure) |
| `cards` | a notice as a Teams Adaptive Card (pure) |
| `digest` | a sweep's notices grouped per owner across subscriptions: one card per owner per sweep (pure) |
| `delivery` | sending to a Teams Workflows webhook, a signed webhook, an Event Grid topic |
| `outbox` | delivering a run's notices, keeping the failed ones for a later try |
| `signing` | HMAC signing for webhooks and approval links (pure) |
| `approvals` | approve / deny links and what following one does (pure) |
"""

from remediations.notices.compose import Notice, Routes, build
from remediations.notices.outbox import notify, retry_due

__all__ = ["Notice", "Routes", "build", "notify", "retry_due"]
