"""The compliance report: a read-only scan with the ledger's history, per policy and per resource.

| module | what it does |
|---|---|
| `compliance` | `generate(scope, policies, ...)` builds a `ComplianceReport` |
| `history` | what the ledger holds for the resources in scope |
| `text` | Markdown and rich tables |
| `html` | one self-contained HTML page |
"""

from remediations.report.compliance import ComplianceReport, generate

__all__ = ["ComplianceReport", "generate"]
