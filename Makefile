# The two commands a new user runs. The work is in scripts/; this file only names it.
.PHONY: setup demo test lint az

setup:
	@bash scripts/setup.sh

demo: setup
	@.venv/bin/cryptward demo

test: setup lint az
	@bash scripts/test.sh

# The pinned Azure CLI (its own venv, cached outside the repo) for the tests that drive the sandbox with it.
az:
	@bash scripts/install-az.sh

lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy remediations
