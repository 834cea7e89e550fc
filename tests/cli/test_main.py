"""The `cryptward` command answers --help and names every command."""

import subprocess
import sys

from typer.testing import CliRunner

from remediations.cli.main import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("scan", "report", "serve", "demo"):
        assert command in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("cryptward ")


def test_console_script_is_installed():
    # The console script is what a user types; run it through the venv's interpreter entry point.
    out = subprocess.run([sys.executable, "-m", "remediations.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "scan" in out.stdout
