"""`cryptward demo`: shows what exists so far and what is coming. A later issue fills it with the live demo."""

from __future__ import annotations

import typer

_STEPS = [
    ("function app", "function_app.py loads and lists its triggers", True),
    ("sandbox", "a local Azure over HTTPS that the real SDKs and `az` talk to", False),
    ("engine", "policies as data, plan and apply, `cryptward scan`", False),
    ("bot", "Event Grid / alert / timer triggers, queue worker, ledger, `cryptward serve`", False),
    ("notices", "Teams cards, signed webhooks, Event Grid, approvals", False),
    ("rotation", "key version rotation with disk-encryption-set follow-through", False),
    ("demo", "a non-compliant estate in two regions fixed live through events, then the compliance report", False),
]


def run() -> None:
    """Print what the demo can show today and what each coming step adds. Exits 0."""
    from remediations.functions import describe_functions

    typer.echo("Cryptward demo\n")
    typer.echo("The function app's triggers:")
    for line in describe_functions():
        typer.echo(f"  - {line}")
    typer.echo("\nWhat the full demo will show, step by step:")
    for name, what, ready in _STEPS:
        typer.echo(f"  [{'ready' if ready else 'coming'}] {name}: {what}")
