# The two commands a new user runs. The work is in scripts/; this file only names it.
.PHONY: setup demo test test-under-load lint az checkov browser

setup:
	@bash scripts/setup.sh

demo: setup
	@.venv/bin/cryptward demo

test: setup lint az checkov browser
	@bash scripts/test.sh

# The whole suite RUNS times in a row (default 3) beside two CPU-bound processes, stopping at the first failure: the
# proof that no test depends on the machine's speed. Not part of `make test` or CI.
test-under-load: setup az checkov browser
	@bash scripts/test-under-load.sh $(RUNS)

# The pinned Azure CLI (its own venv, cached outside the repo) for the tests that drive the sandbox with it.
az:
	@bash scripts/install-az.sh

# Debian's Chromium, for the test that screenshots the HTML compliance report (installs only when missing, as root).
browser:
	@bash scripts/install-chromium.sh

# The pinned checkov (its own cached venv) that tests/test_infra.py runs over infra/.
checkov:
	@bash scripts/install-checkov.sh >/dev/null

lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy remediations
