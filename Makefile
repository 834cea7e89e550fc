# The two commands a new user runs. The work is in scripts/; this file only names it.
.PHONY: setup demo test lint

setup:
	@bash scripts/setup.sh

demo: setup
	@.venv/bin/cryptward demo

test: setup lint
	@bash scripts/test.sh

lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy remediations
