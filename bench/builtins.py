"""Microsoft's built-in definitions (tests/builtins/definitions) loaded per second: read, validated, compiled, with
their assignments; and evaluations per second of those that load over the harness's sample bodies.

Run: .venv/bin/python bench/builtins.py
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.policy.loader import load_policies  # noqa: E402
from tests.builtins.test_builtins import DEFINITIONS, SAMPLES, resolve  # noqa: E402


def main(seconds: float = 2.0) -> None:
    rounds, definitions, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        loaded = load_policies(DEFINITIONS, fixes=[])
        definitions += len(loaded) + len(loaded.refused)
        rounds += 1
    elapsed = time.perf_counter() - start
    print(
        f"load: {definitions / elapsed:,.0f} definitions/s ({len(loaded)} load, {len(loaded.refused)} refused, "
        f"{elapsed / rounds * 1000:,.1f} ms for the whole set)"
    )
    bodies = [resolve(s) for s in SAMPLES]
    related = [json.loads(s.read_text()).get("$related", []) for s in SAMPLES]  # what an existence check finds
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for policy in loaded:
            for body, around in zip(bodies, related, strict=True):
                policy.noncompliant(body, related=around if policy.existence else None)
        done += len(loaded) * len(bodies)
    rate = done / (time.perf_counter() - start)
    print(f"evaluate: {rate:,.0f} (definition, body) pairs/s over {len(bodies)} sample bodies")


if __name__ == "__main__":
    main()
