"""`cryptward scan`: settings and policies in, a progress bar on stderr, the report on stdout, an exit code out.

Exit codes: 0 compliant, 1 findings, 2 error (the message says which, and what to do).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    from rich.console import Console

    from remediations import output as out

    err = Console(stderr=True)

    def fail(message: str) -> int:
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        return ERROR

    if output not in out.FORMATS:
        return fail(f"unknown format {output!r}{options_text(out.FORMATS)}")
    subs = tuple(subscriptions) or tuple(s for s in [os.environ.get("AZURE_SUBSCRIPTION_ID", "").strip()] if s)
    if not subs:
        return fail("no subscription: pass --subscription ID or set AZURE_SUBSCRIPTION_ID")
    try:
        from remediations.azure import Azure
        from remediations.engine import scan, select
        from remediations.policy import load_policies
        from remediations.reader import Scope
        from remediations.settings import Settings

        settings = Settings.from_env()
        folder = Path(policies_dir) if policies_dir else settings.policies
        policies = select(load_policies(folder), policy_ids)
        azure = Azure.from_env()
        with _progress(err) as step:
            report = scan(
                Scope(subs, resource_group), policies, apply=apply, settings=settings, azure=azure, progress=step
            )
    except PolicyLoadError as e:
        return fail(f"the policies folder is not valid:\n{e}")
    except UnknownPolicyError as e:
        return fail(str(e))
    except SettingsError as e:
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
    if output == "json":
        sys.stdout.write(out.to_json(report) + "\n")
    elif output == "markdown":
        sys.stdout.write(out.to_markdown(report))
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)
        out.print_table(report, console)
    return COMPLIANT if report.compliant else FINDINGS


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


__all__ = ["COMPLIANT", "ERROR", "FINDINGS", "run"]
