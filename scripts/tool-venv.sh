# Sourced by scripts/install-*.sh: install one pinned Python tool into its own venv, cached outside the repo.
# install_tool LABEL PACKAGE VERSION REQUIREMENTS HOME EXECUTABLE CHECK
#   Idempotent: when HOME's venv is there and CHECK (a Python snippet exiting 0) passes, it only prints the path of
#   EXECUTABLE. The last line on stdout is always that path; messages go to stderr. PYTHON picks the interpreter.
install_tool() {
  local label=$1 package=$2 version=$3 requirements=$4 home=$5 exe=$6 check=$7
  local pinned stamp="$home/.cryptward-$label" py="" start
  pinned=$(tr -d '[:space:]' < "$requirements")
  if [ "$pinned" != "$package==$version" ]; then
    echo "install-$label: $requirements says '$pinned' but the script pins $package==$version; make them agree" >&2
    exit 2
  fi
  if [ "$(cat "$stamp" 2>/dev/null || true)" = "$version" ] && [ -x "$home/bin/$exe" ] &&
     "$home/bin/python" -c "$check" 2>/dev/null; then
    echo "$home/bin/$exe"
    return 0
  fi
  for candidate in "${PYTHON:-}" python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then py=$candidate; break; fi
  done
  [ -n "$py" ] || { echo "install-$label: no python3 found; set PYTHON=/path/to/python3" >&2; exit 2; }
  echo "install-$label: installing $package $version into $home" >&2
  start=$SECONDS
  rm -rf "$home"
  mkdir -p "$(dirname "$home")"
  _tool_fail() {
    echo "install-$label: FAILED to install $package $version into $home: $1" >&2
    rm -rf "$home"
    exit 1
  }
  "$py" -m venv "$home" || _tool_fail "could not create a venv with $py"
  "$home/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$requirements" ||
    _tool_fail "pip install -r $requirements failed (see above)"
  "$home/bin/python" -c "$check" || _tool_fail "the installed $package is not version $version"
  [ -x "$home/bin/$exe" ] || _tool_fail "$home/bin/$exe is missing after the install"
  echo "$version" > "$stamp"
  echo "install-$label: done in $((SECONDS - start)) s, $(du -sh "$home" | cut -f1)" >&2
  echo "$home/bin/$exe"
}
