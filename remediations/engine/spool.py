"""Rows a scan must list but need not hold: written to a private temporary file as they come, read back in order.

    with Spool() as spool:
        skipped = spool.rows(encode, decode)     # encode(item) -> JSON values; decode(values) -> item
        skipped.append(skip)              # into the file (a batch of BATCH rows a line), not held
        for skip in skipped: ...          # read back in the order written, as often as asked
        len(skipped)

The file is `tempfile.TemporaryFile`: created 0600 (mkstemp's mode) and unlinked as it is made, so no other user can
open it and nothing is left behind if the process dies; `close` (the `with` block's end, on success or error)
closes it and the space is returned. What the engine spools (engine/run.py, `scan(..., stream=True)`): the findings
as `(resource id, policy id, mode, unreadable, fix unreadable)` and the plan's skips, the two lists that grow with
every resource a scan evaluates.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, Generic, TypeVar, overload

T = TypeVar("T")
BATCH = 1024  # rows a line


class Spool:
    """The files of one scan's spooled lists: closed together."""

    def __init__(self) -> None:
        self._lists: list[Spooled[Any]] = []

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, encode: Callable[[T], Sequence[Any]], decode: Callable[[list[Any]], T]) -> Spooled[T]:
        spooled: Spooled[T] = Spooled(encode, decode)
        self._lists.append(spooled)
        return spooled

    def close(self) -> None:
        for spooled in self._lists:
            spooled.close()

    @property
    def closed(self) -> bool:
        return all(s.closed for s in self._lists)


class Spooled(Sequence[T], Generic[T]):
    """A list kept in a temporary file, as JSON lines of `BATCH` rows (`encode` gives a row's values, `decode` makes
    the item again from them). Appending writes; iterating reads back from the start, in order, and may be done any
    number of times (appending may go on between two readings, not during one)."""

    def __init__(self, encode: Callable[[T], Sequence[Any]], decode: Callable[[list[Any]], T]) -> None:
        self._file: IO[bytes] | None = tempfile.TemporaryFile("w+b")  # noqa: SIM115 (closed by close())
        self._encode, self._decode = encode, decode
        self._count = 0
        self._batch: list[Sequence[Any]] = []  # encoded, not yet written: one line per BATCH items

    def append(self, item: T) -> None:
        self._open()
        self._batch.append(self._encode(item))
        self._count += 1
        if len(self._batch) >= BATCH:
            self._write()

    def _write(self) -> None:
        """The batch as one JSON line (a list of rows): one call of json's encoder and decoder per batch, not per row
        (bench/spool.py: a third of the CPU of a line a row)."""
        if self._batch:
            self._open().write(json.dumps(self._batch).encode() + b"\n")
            self._batch = []

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[T]:
        file = self._open()
        self._write()
        file.flush()
        file.seek(0)
        try:
            for line in file:
                yield from map(self._decode, json.loads(line))
        finally:
            if not file.closed:
                file.seek(0, 2)  # appending goes on at the end

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        """By reading the file (no caller indexes a spooled list in a loop; this keeps it a true Sequence)."""
        items = list(self)
        return items[index]

    def fileno(self) -> int:
        return self._open().fileno()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._batch = []

    @property
    def closed(self) -> bool:
        return self._file is None

    def _open(self) -> IO[bytes]:
        if self._file is None:
            raise ValueError("the spooled rows were closed: read them before the scan's report is closed")
        return self._file


__all__ = ["Spool", "Spooled"]
