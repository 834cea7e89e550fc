#!/usr/bin/env bash
# Installs the pinned Azure CLI into its own venv, cached outside the repo (it is ~730 MB), for the `az` tests
# (tests/sandbox/test_az_cli.py). Idempotent: when the venv is there and imports the pinned version, it only prints
# the path. The last line on stdout is the path of the `az` executable; messages go to stderr.
#   CRYPTWARD_AZ_HOME   where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/azure-cli-VERSION)
#   PYTHON              interpreter for the venv (default python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

AZ_VERSION=2.91.0 # keep in step with requirements-az.txt (checked below)
pinned=$(tr -d '[:space:]' < requirements-az.txt)
if [ "$pinned" != "azure-cli==$AZ_VERSION" ]; then
  echo "install-az: requirements-az.txt says '$pinned' but this script pins azure-cli==$AZ_VERSION; make them agree" >&2
  exit 2
fi

home=${CRYPTWARD_AZ_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/azure-cli-$AZ_VERSION}
stamp="$home/.cryptward-az"
check="import azure.cli.core as c, sys; sys.exit(c.__version__ != '$AZ_VERSION')"

if [ "$(cat "$stamp" 2>/dev/null || true)" = "$AZ_VERSION" ] && [ -x "$home/bin/az" ] &&
   "$home/bin/python" -c "$check" 2>/dev/null; then
  echo "$home/bin/az"
  exit 0
fi

py=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then py=$candidate; break; fi
done
[ -n "$py" ] || { echo "install-az: no python3 found; set PYTHON=/path/to/python3" >&2; exit 2; }

echo "install-az: installing azure-cli $AZ_VERSION into $home (~730 MB, about a minute and a half)" >&2
start=$SECONDS
rm -rf "$home"
mkdir -p "$(dirname "$home")"
fail() {
  echo "install-az: FAILED to install azure-cli $AZ_VERSION into $home: $1" >&2
  rm -rf "$home"
  exit 1
}
"$py" -m venv "$home" || fail "could not create a venv with $py"
"$home/bin/python" -m pip install -q --disable-pip-version-check --no-input -r requirements-az.txt ||
  fail "pip install -r requirements-az.txt failed (see above)"
"$home/bin/python" -c "$check" || fail "the installed azure-cli is not version $AZ_VERSION"
[ -x "$home/bin/az" ] || fail "$home/bin/az is missing after the install"
echo "$AZ_VERSION" > "$stamp"
echo "install-az: done in $((SECONDS - start)) s, $(du -sh "$home" | cut -f1)" >&2
echo "$home/bin/az"
