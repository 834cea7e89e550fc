#!/usr/bin/env bash
# Installs the pinned checkov (static analysis of infra/, offline) into its own venv, cached outside the repo: it
# pulls ~150 packages that the app and its tests do not need. Idempotent; the last line on stdout is its path.
#   CRYPTWARD_CHECKOV_HOME  where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/checkov-VERSION)
#   PYTHON                  interpreter for the venv (default python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tool-venv.sh

CHECKOV_VERSION=3.3.30 # keep in step with requirements-checkov.txt (checked)
install_tool checkov checkov "$CHECKOV_VERSION" requirements-checkov.txt \
  "${CRYPTWARD_CHECKOV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/checkov-$CHECKOV_VERSION}" checkov \
  "import importlib.metadata as m, sys; sys.exit(m.version('checkov') != '$CHECKOV_VERSION')"
