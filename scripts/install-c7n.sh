#!/usr/bin/env bash
# Installs Cloud Custodian's Azure provider (pinned) into its own venv, cached outside the repo, for bench/c7n.py (the
# side-by-side bench; never run by `make test`). Idempotent; the last line on stdout is the path of `custodian`.
#   CRYPTWARD_C7N_HOME  where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/c7n-azure-VERSION)
#   PYTHON              interpreter for the venv (default python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tool-venv.sh

C7N_VERSION=0.7.52 # keep in step with requirements-c7n.txt (checked)
install_tool c7n c7n-azure "$C7N_VERSION" requirements-c7n.txt \
  "${CRYPTWARD_C7N_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/c7n-azure-$C7N_VERSION}" custodian \
  "import importlib.metadata as m, sys; sys.exit(m.version('c7n-azure') != '$C7N_VERSION')"
