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


SCAN_HELP = """Read a subscription (or one resource group), evaluate the policies, print the findings and the plan.

Nothing is written unless --apply is given; then the changes the policies allow are made, each verified, while
changes that need approval or a deallocated VM are listed as pending. Exit code: 0 compliant, 1 findings,
2 error (no credentials, unknown subscription, bad policies folder, unknown policy id).

Examples:

\b
  cryptward scan                                   # AZURE_SUBSCRIPTION_ID, every policy, dry run
  cryptward scan -s 0b1f6471-... -g rg-app-prod    # one resource group
  cryptward scan -m corp                           # every subscription below management group corp
  cryptward scan --policy kv-purge-protection --policy kv-delete-lock --format json
  cryptward scan --apply                           # fix what the policies allow
  eval "$(python -m sandbox env)" && cryptward scan   # against the local sandbox

Credentials: DefaultAzureCredential (`az login` on a laptop, the managed identity in Azure; AZURE_CLIENT_ID picks a
user-assigned identity). Settings come from CRYPTWARD_* environment variables (see remediations/settings.py).
"""


@app.command(help=SCAN_HELP)
def scan(
    subscription: list[str] = typer.Option(
        [], "--subscription", "-s", help="Subscription id (repeatable). Default: AZURE_SUBSCRIPTION_ID."
    ),
    resource_group: str | None = typer.Option(None, "--resource-group", "-g", help="Only this resource group."),
    management_group: list[str] = typer.Option(
        [], "--management-group", "-m", help="A management group id (repeatable): its descendant subscriptions."
    ),
    policy: list[str] = typer.Option([], "--policy", "-p", help="Only this policy id (repeatable). Default: all."),
    apply: bool = typer.Option(False, "--apply", help="Write the changes the policies allow (default: dry run)."),
    output: str = typer.Option("table", "--format", "-f", help="table, json or markdown."),
    policies_dir: str | None = typer.Option(
        None, "--policies", help="The policies folder. Default: CRYPTWARD_POLICIES, else the bundled policies/."
    ),
) -> None:
    from remediations.cli.scan import run

    raise typer.Exit(
        run(
            subscription, resource_group, policy, apply=apply, output=output, policies_dir=policies_dir,
            management_groups=management_group,
        )
    )  # fmt: skip


SERVE_HELP = """Host the function app locally: the same function objects as in Azure (function_app.py), without
Functions Core Tools.

\b
  POST http://HOST:PORT/runtime/webhooks/EventGrid?functionName=eventgrid&code=KEY   Event Grid (handshake too)
  POST http://HOST:PORT/api/alerts?code=KEY          activity-log alerts (common alert schema)
  GET  http://HOST:PORT/api/health                   no key
  queue CRYPTWARD_WORK_QUEUE on AzureWebJobsStorage  the worker; retries, then <queue>-poison (host.json)
  timers SWEEP_SCHEDULE, ROTATION_SCHEDULE           NCRONTAB, 6 fields (seconds first)

Settings: local.settings.json's Values are loaded into the environment, except names already set (so `eval "$(python
-m sandbox env)"` wins). The key is --key, else CRYPTWARD_ALERT_KEY, else a random one printed at start; Azure's host
checks its function key the same way (`?code=` or the `x-functions-key` header). Storage: --storage, else
AzureWebJobsStorage (`UseDevelopmentStorage=true` is Azurite on its default ports). Ctrl-C stops after the running
functions finish.

Example, against the sandbox and Azurite:

\b
  node_modules/.bin/azurite --silent --location .azurite &
  python -m sandbox serve --port 8443 --state .sandbox &
  eval "$(python -m sandbox env --state .sandbox)"
  cryptward serve --port 7071 --key s3cret --run-timers-now
"""


@app.command(help=SERVE_HELP)
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(7071, "--port", help="HTTP port (Core Tools' default is 7071)."),
    settings_file: str = typer.Option(
        "local.settings.json", "--settings", help="Settings file whose Values fill the environment."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Storage connection string (queue, ledger). Default: AzureWebJobsStorage."
    ),
    key: str | None = typer.Option(None, "--key", help="Function key. Default: CRYPTWARD_ALERT_KEY, else random."),
    run_timers_now: bool = typer.Option(False, "--run-timers-now", help="Fire each timer once at start."),
    workers: int | None = typer.Option(None, "--workers", help="Queue messages worked at once (default: 8)."),
) -> None:
    from pathlib import Path

    from remediations.cli.serve import run
    from remediations.errors import SettingsError

    try:
        run(
            host=host,
            port=port,
            settings_file=Path(settings_file),
            storage=storage,
            key=key,
            run_timers_now=run_timers_now,
            workers=workers,
            echo=typer.echo,
        )
    except SettingsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None


REPORT_HELP = """Write a compliance report of a subscription (or one resource group): per policy and per resource,
what complies, what the bot would fix, what waits for approval or a deallocated VM, what is left alone and why, and
what failed; which of encryption at host and Azure Disk Encryption suits each VM; the CIS Azure and Azure Policy
built-in ids of each policy.

Read-only: it scans without writing (there is no --apply). When AzureWebJobsStorage is set, the ledger's history is
added (what Cryptward changed earlier, what waits); otherwise the report says so. The HTML page is self-contained.
Exit code as scan: 0 compliant, 1 findings, 2 error.

Examples:

\b
  cryptward report                                        # AZURE_SUBSCRIPTION_ID, a table on the terminal
  cryptward report -g rg-app-prod --format markdown > compliance.md
  cryptward report -m corp -f html -o corp.html          # rolled up per management group and subscription
  cryptward report --format html --output compliance.html
  eval "$(python -m sandbox env)" && cryptward report -f html -o report.html   # against the local sandbox
"""


@app.command(help=REPORT_HELP)
def report(
    subscription: list[str] = typer.Option(
        [], "--subscription", "-s", help="Subscription id (repeatable). Default: AZURE_SUBSCRIPTION_ID."
    ),
    resource_group: str | None = typer.Option(None, "--resource-group", "-g", help="Only this resource group."),
    management_group: list[str] = typer.Option(
        [], "--management-group", "-m", help="A management group id (repeatable): its descendant subscriptions."
    ),
    policy: list[str] = typer.Option([], "--policy", "-p", help="Only this policy id (repeatable). Default: all."),
    output: str = typer.Option("table", "--format", "-f", help="table, markdown or html."),
    file: str | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    policies_dir: str | None = typer.Option(
        None, "--policies", help="The policies folder. Default: CRYPTWARD_POLICIES, else the bundled policies/."
    ),
) -> None:
    from remediations.cli.report import run

    raise typer.Exit(
        run(
            subscription, resource_group, policy, output=output, file=file, policies_dir=policies_dir,
            management_groups=management_group,
        )
    )  # fmt: skip


DEMO_HELP = """Run the whole bot on this machine against a local Azure, live, and leave nothing running.

Starts, in a temporary directory on free ports: the sandbox (a local Azure over HTTPS), Azurite (the function app's
storage) and `cryptward serve` (function_app.py), acting as the sandbox's `bot` managed identity with exactly the
custom role infra/cryptward-role.json; subscribes the sandbox's Event Grid to serve's webhook and routes notices to
the sandbox's Teams-like and webhook receivers. Then:

\b
  1. the admin builds a non-compliant estate in two regions through ARM (vaults, keys, a disk encryption set,
     disks, VMs); the bot fixes it through the events, live: events received, changes applied, pending
  2. one change waiting for approval is approved (purge protection on the disk-encryption vault)
  3. the admin deallocates a VM; the deallocation event releases the disk changes waiting for it
  4. the sandbox clock moves 100 days and the rotation timer runs: keys rotated, disk encryption sets follow
  5. the compliance report (a table here, the HTML page written to --report) and where the notices went

Takes about a minute; prints the elapsed time. Every program is stopped by its PID at the end, also on Ctrl-C or
an error (--keep-running leaves them up for exploring, with the settings to reach them, until Ctrl-C).
Exit code: 0 when every step ran, 1 when one failed, 130 when interrupted.
"""


@app.command(help=DEMO_HELP)
def demo(
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Leave the sandbox, Azurite and serve running after the demo, until Ctrl-C."
    ),
    report_file: str = typer.Option(
        "cryptward-demo-report.html", "--report", "-o", help="Where to write the HTML compliance report."
    ),
) -> None:
    from pathlib import Path

    from remediations.cli.demo import run

    raise typer.Exit(run(keep_running=keep_running, report_path=Path(report_file)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
