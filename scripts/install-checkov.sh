#!/usr/bin/env bash
# Installs the pinned checkov (static analysis of infra/, offline) into its own venv, cached outside the repo: it
# pulls ~150 packages that the app and its tests do not need. Idempotent: when the venv is there and runs the pinned
# version, it only prints the path. The last line on stdout is the path of the `checkov` executable.
#   CRYPTWARD_CHECKOV_HOME  where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/checkov-VERSION)
#   PYTHON                  interpreter for the venv (default python3.11, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30 # keep in step with requirements-checkov.txt (checked below)
pinned=$(tr -d '[:space:]' < requirements-checkov.txt)
if [ "$pinned" != "checkov==$CHECKOV_VERSION" ]; then
  echo "install-checkov: requirements-checkov.txt says '$pinned' but this script pins checkov==$CHECKOV_VERSION" >&2
  exit 2
fi

home=${CRYPTWARD_CHECKOV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cryptward/checkov-$CHECKOV_VERSION}
stamp="$home/.cryptward-checkov"
check="import importlib.metadata as m, sys; sys.exit(m.version('checkov') != '$CHECKOV_VERSION')"

if [ "$(cat "$stamp" 2>/dev/null || true)" = "$CHECKOV_VERSION" ] && [ -x "$home/bin/checkov" ] &&
   "$home/bin/python" -c "$check" 2>/dev/null; then
  echo "$home/bin/checkov"
  exit 0
fi

py=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then py=$candidate; break; fi
done
[ -n "$py" ] || { echo "install-checkov: no python3 found; set PYTHON=/path/to/python3" >&2; exit 2; }

echo "install-checkov: installing checkov $CHECKOV_VERSION into $home" >&2
start=$SECONDS
rm -rf "$home"
mkdir -p "$(dirname "$home")"
fail() {
  echo "install-checkov: FAILED to install checkov $CHECKOV_VERSION into $home: $1" >&2
  rm -rf "$home"
  exit 1
}
"$py" -m venv "$home" || fail "could not create a venv with $py"
"$home/bin/python" -m pip install -q --disable-pip-version-check --no-input -r requirements-checkov.txt ||
  fail "pip install -r requirements-checkov.txt failed (see above)"
"$home/bin/python" -c "$check" || fail "the installed checkov is not version $CHECKOV_VERSION"
[ -x "$home/bin/checkov" ] || fail "$home/bin/checkov is missing after the install"
echo "$CHECKOV_VERSION" > "$stamp"
echo "install-checkov: done in $((SECONDS - start)) s, $(du -sh "$home" | cut -f1)" >&2
echo "$home/bin/checkov"
