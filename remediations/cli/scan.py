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
    management_groups: Sequence[str] = (),
) -> int:
    from remediations.cli import output as out

    def produce(scope: Any, policies: Any, settings: Any, azure: Any, step: Callable[[str], None], **_: Any) -> Any:
        from remediations.engine.run import scan

        # Streamed: findings and skips spooled to a private temporary file, removed when `command` closes the report.
        return scan(scope, policies, apply=apply, settings=settings, azure=azure, progress=step, stream=True)

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
        produce=produce, write=write, management_groups=management_groups,
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
    management_groups: Sequence[str] = (),
) -> int:
    """The shape `scan` and `report` share: check the inputs, load settings and policies, expand the management
    groups (less CRYPTWARD_NOT_SCOPES), run `produce(scope, policies, settings, azure, step, groups=...)` under a
    progress bar (`groups`: subscription -> its management group, as given), turn every expected failure into one
    clear message, then `write` the result and close it (a streamed scan's spool). Returns the exit code."""
    from rich.console import Console

    err = Console(stderr=True)

    def fail(message: str) -> int:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        return ERROR

    if output not in formats:
        return fail(f"unknown format {output!r}{options_text(formats)}")
    subs = tuple(subscriptions)
    if not subs and not management_groups:
        subs = tuple(s for s in [os.environ.get("AZURE_SUBSCRIPTION_ID", "").strip()] if s)
    if not subs and not management_groups:
        return fail("no subscription: pass --subscription ID or --management-group ID, or set AZURE_SUBSCRIPTION_ID")
    try:
        from remediations import scopes
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
        groups = [scopes.parse(scopes.GROUP_PREFIX + g, "--management-group") for g in management_groups]
        azure = Azure.from_env()
        try:
            expanded = scopes.expand(azure, [Scope(subs), *groups], settings.intake.not_scopes)
            of_group = {s.lower(): e.management_group for e in expanded if e.management_group for s in e.subscriptions}
            every = tuple(dict.fromkeys(s for e in expanded for s in e.subscriptions))
            if not every:
                return fail("no subscription in scope: the management groups hold none outside CRYPTWARD_NOT_SCOPES")
            scope = Scope(every, resource_group, excluded=expanded[0].excluded)
            with _progress(err) as step:
                result = produce(scope, policies, settings, azure, step, groups=of_group)
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
        return COMPLIANT if result.compliant else FINDINGS
    except OSError as e:
        return fail(f"cannot write the output: {e}")
    finally:
        close = getattr(result, "close", None)
        if close is not None:  # a streamed scan's spooled findings and skips: removed, written or not
            close()


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
