#!/usr/bin/env bash
# The whole test suite RUNS times in a row (default 3) with two CPU-bound processes running beside it, as on a CI
# machine shared with other work. Stops at the first failing run. Prints each run's time and pytest's result line;
# the full logs stay in a temporary folder (printed). Not part of `make test` or CI: it is the proof that no test
# depends on the machine's speed.
#
#   bash scripts/test-under-load.sh                 # 3 runs
#   bash scripts/test-under-load.sh 1 tests/test_e2e.py   # 1 run of some tests (further arguments go to pytest)
#   BURNERS=4 bash scripts/test-under-load.sh       # more load
set -uo pipefail
cd "$(dirname "$0")/.."

runs="${1:-${RUNS:-3}}"
[ $# -gt 0 ] && shift
burners="${BURNERS:-2}"
case "$runs" in '' | *[!0-9]*) echo "test-under-load: RUNS must be a number, not '$runs'" >&2; exit 2 ;; esac

logs=$(mktemp -d "${TMPDIR:-/tmp}/cryptward-under-load.XXXXXX")
pids=()
stop_burners() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  pids=()
}
trap stop_burners EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each burner spins on one core. It also ends by itself when this script is gone (even killed with SIGKILL, when
# the trap cannot run): it checks every million turns that its parent is still this script.
for _ in $(seq "$burners"); do
  .venv/bin/python -c '
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
' &
  pids+=("$!")
done
echo "test-under-load: $burners CPU-bound processes (pids ${pids[*]}) on $(nproc) cores; $runs run(s); logs in $logs"

for run in $(seq "$runs"); do
  log="$logs/run-$run.log"
  started=$(date +%s)
  bash scripts/test.sh -p no:cacheprovider --durations=15 "$@" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - started))
  result=$(grep -E '^=+ .+ in [0-9.]+s( \([0-9:]+\))? =+$' "$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
  echo "run $run/$runs: ${took} s, exit $rc: ${result:-no result line (see $log)}"
  if [ "$rc" -ne 0 ]; then
    grep -E '^(FAILED|ERROR) ' "$log" || tail -n 40 "$log"
    echo "test-under-load: run $run failed; its log: $log" >&2
    exit "$rc"
  fi
done
echo "test-under-load: $runs run(s) in a row passed"
