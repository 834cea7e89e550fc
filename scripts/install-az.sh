#!/usr/bin/env bash
# Installs the pinned Azure CLI into its own venv, cached outside the repo (it is ~730 MB, about a minute and a half),
# for the `az` tests (tests/sandbox/test_az_cli.py). Idempotent; the last line on stdout is the path of `az`.
#   CRYPTWARD_AZ_HOME   where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/azure-cli-VERSION)
#   PYTHON              interpreter for the venv (default python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/tool-venv.sh

AZ_VERSION=2.91.0 # keep in step with requirements-az.txt (checked)
install_tool az azure-cli "$AZ_VERSION" requirements-az.txt \
  "${CRYPTWARD_AZ_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/azure-cli-$AZ_VERSION}" az \
  "import azure.cli.core as c, sys; sys.exit(c.__version__ != '$AZ_VERSION')"
