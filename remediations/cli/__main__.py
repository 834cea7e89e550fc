"""`python -m remediations.cli ...` is the `cryptward` command."""

from remediations.cli.main import main

main()
