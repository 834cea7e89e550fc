"""`cryptward scan`: settings and policies in, a progress bar on stderr, the report on stdout, an exit code out.

Exit codes: 0 compliant, 1 findings, 2 error (the message says which, and what to do).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from remediations.errors import (
    AzureAccessError,
    CredentialError,
    PolicyLoadError,
    SettingsError,
    UnknownPolicyError,
    options_text,
)

COMPLIANT, FINDINGS, ERROR = 0, 1, 2
_UNKNOWN_SUBSCRIPTION = ("SubscriptionNotFound", "InvalidSubscriptionId")


def run(
    subscriptions: Sequence[str],
    resource_group: str | None,
    policy_ids: Sequence[str],
    *,
    apply: bool = False,
    output: str = "table",
    policies_dir: str | None = None,
) -> int:
    from remediations.cli import output as out

    def produce(scope: Any, policies: Any, settings: Any, azure: Any, step: Callable[[str], None]) -> Any:
        from remediations.engine.run import scan

        return scan(scope, policies, apply=apply, settings=settings, azure=azure, progress=step)

    def write(report: Any) -> None:
        from rich.console import Console

        if output == "json":
            out.write_json(report, sys.stdout)
        elif output == "markdown":
            sys.stdout.write(out.to_markdown(report))
        else:
            out.print_table(report, Console(width=None if sys.stdout.isatty() else 160))

    return command(
        subscriptions, resource_group, policy_ids, output=output, formats=out.FORMATS, policies_dir=policies_dir,
        produce=produce, write=write,
    )  # fmt: skip


def command(
    subscriptions: Sequence[str],
    resource_group: str | None,
    policy_ids: Sequence[str],
    *,
    output: str,
    formats: Sequence[str],
    policies_dir: str | None,
    produce: Callable[..., Any],
    write: Callable[[Any], None],
) -> int:
    """The shape `scan` and `report` share: check the inputs, load settings and policies, run `produce(scope,
    policies, settings, azure, step)` under a progress bar, turn every expected failure into one clear message, then
    `write` the result. Returns the exit code."""
    from rich.console import Console

    err = Console(stderr=True)

    def fail(message: str) -> int:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        return ERROR

    if output not in formats:
        return fail(f"unknown format {output!r}{options_text(formats)}")
    subs = tuple(subscriptions) or tuple(s for s in [os.environ.get("AZURE_SUBSCRIPTION_ID", "").strip()] if s)
    if not subs:
        return fail("no subscription: pass --subscription ID or set AZURE_SUBSCRIPTION_ID")
    try:
        from remediations.azure import Azure
        from remediations.engine.reader import Scope
        from remediations.engine.run import select
        from remediations.policy.loader import load_policies
        from remediations.settings import Settings

        settings = Settings.from_env()
        folder = Path(policies_dir) if policies_dir else settings.policies
        loaded = load_policies(folder)
        for refused in loaded.refused:
            err.print(f"[bold yellow]warning:[/] not loaded (the others run): {refused}", highlight=False)
        policies = select(loaded, policy_ids)
        azure = Azure.from_env()
        try:
            with _progress(err) as step:
                result = produce(Scope(subs, resource_group), policies, settings, azure, step)
        finally:
            azure.close()
    except PolicyLoadError as e:
        return fail(f"the policies folder is not valid:\n{e}")
    except (UnknownPolicyError, SettingsError) as e:
        return fail(str(e))
    except CredentialError as e:
        return fail(
            'no credentials: run `az login` (or `eval "$(python -m sandbox env)"` for the sandbox), or run where a '
            f"managed identity is available.\n{e.message}"
        )
    except AzureAccessError as e:
        if e.code in _UNKNOWN_SUBSCRIPTION:
            return fail(f"unknown subscription among {', '.join(subs)}: {e.message}")
        return fail(f"Azure refused the scan: {e}")
    try:
        write(result)
    except OSError as e:
        return fail(f"cannot write the output: {e}")
    return COMPLIANT if result.compliant else FINDINGS


class _progress:
    """A rich progress bar on stderr, advanced by the reader's messages."""

    def __init__(self, console: object) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            TextColumn("{task.completed} read(s)"),
            TimeElapsedColumn(),
            console=console,  # type: ignore[arg-type]
            transient=True,
        )
        self._task = self._bar.add_task("reading", total=None)

    def __enter__(self) -> Callable[[str], None]:
        self._bar.start()
        return self.advance

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def advance(self, message: str) -> None:
        self._bar.update(self._task, description=f"reading {message}", advance=1)


__all__ = ["COMPLIANT", "ERROR", "FINDINGS", "command", "run"]
