"""The `cryptward` command line: thin over the same engine and function objects the bot uses."""

from __future__ import annotations

import typer

from remediations import __version__

app = typer.Typer(
    name="cryptward",
    help=(
        "Cryptward finds and fixes encryption-hygiene gaps in Azure: key vaults (purge protection, locks, owner "
        "tags, diagnostics), keys (rotation), disk encryption sets (auto-rotation, key access) and managed disks "
        "(customer-managed keys). It runs as an Azure Functions app; this command runs the same engine from a "
        "laptop, against Azure or against the local sandbox (`python -m sandbox serve`)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMING = "Not available yet in {version}: {what}"


def _not_yet(what: str) -> None:
    typer.echo(_COMING.format(version=__version__, what=what), err=True)
    raise typer.Exit(code=2)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        typer.echo(f"cryptward {__version__}")
        raise typer.Exit()


@app.command()
def scan() -> None:
    """Read a subscription or resource group, evaluate every policy, print findings and the plan (read-only unless
    --apply). [coming: the engine issue]"""
    _not_yet("`scan` will evaluate policies/ against a subscription and print findings and a dry-run plan.")


@app.command()
def serve() -> None:
    """Host the function app locally (Event Grid and alert endpoints, queue worker, timers) against Azurite and the
    sandbox. [coming: the function app issue]"""
    _not_yet("`serve` will host function_app.py's triggers locally against Azurite and the sandbox.")


@app.command()
def demo() -> None:
    """Run the guided demo: a local Azure with a non-compliant estate, fixed live by the bot."""
    from remediations.demo import run

    run()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
