#!/usr/bin/env bash
# One set-up for `make demo`, `make test` and CI: creates .venv if it is missing and installs what the
# project needs (pip, then npm for Azurite). Idempotent: the second run only compares a fingerprint.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(pick_python) || { echo "setup: Python 3.11 is required (the Functions host runs 3.11); set PYTHON=/path/to/python3.11" >&2; exit 2; }
  echo "setup: creating .venv with $("$py" --version)"
  "$py" -m venv .venv
fi

stamp=.venv/.cryptward-pip
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing Python packages (pinned in requirements*.txt)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi

if [ -f package.json ]; then
  command -v npm >/dev/null 2>&1 || { echo "setup: npm (Node 20) is required for Azurite" >&2; exit 2; }
  nstamp=node_modules/.cryptward-npm
  nwant=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat "$nstamp" 2>/dev/null || true)" != "$nwant" ]; then
    echo "setup: installing Node packages (Azurite)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$nwant" > "$nstamp"
  fi
fi
