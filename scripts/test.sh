#!/usr/bin/env bash
# The whole test suite. pytest's exit code 5 (nothing collected) is a failure here, as every non-zero code is.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "test: pytest collected no tests - that is a failure" >&2; fi
exit "$rc"
