"""What spooling costs a streamed scan (remediations/engine/spool.py): CPU seconds to write and read back N finding
rows, as batched lines (what the spool does) against one JSON line a row.

    .venv/bin/python bench/spool.py --rows 172600
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remediations.engine import spool  # noqa: E402


def cost(rows: int, batch: int) -> float:
    spool.BATCH = batch
    row = ("/subscriptions/s/resourceGroups/rg-1/providers/Microsoft.KeyVault/vaults/kv-s-{:05}", "kv-delete-lock")
    c0 = time.process_time()
    with spool.Spool() as s:
        spooled = s.rows(lambda i: (row[0].format(i), row[1], None, None, None), tuple)
        for i in range(rows):
            spooled.append(i)
        read = sum(1 for _ in spooled)
    assert read == rows
    return time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=172_600)  # the findings of a 20,000-vault scan
    args = parser.parse_args()
    batched, single = cost(args.rows, 1024), cost(args.rows, 1)
    print(
        f"{args.rows:,} rows written and read back: {batched:.2f} s CPU in lines of 1,024, "
        f"{single:.2f} s CPU a line a row ({single / batched:.1f}x)"
    )


if __name__ == "__main__":
    main()
