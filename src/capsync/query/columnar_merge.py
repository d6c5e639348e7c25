"""Merging a day folder's small Parquet files into large ones, safely under queries and crashes.

The compactor writes one file per step (``<mark>.parquet``); at millions of readings a
day folder would hold hundreds, and DuckDB pays per file. So runs of files are merged
into one ``<lo>-<hi>.parquet`` (the marks of the first and last file merged), streamed
row group by row group (bounded memory), written to ``<lo>-<hi>.tmp``, fsynced and
renamed into place. That rename is the swap: a file whose mark range another file's
range contains is superseded, and :func:`visible` leaves it out, so every listing sees
each reading exactly once, before, during and after a merge, and after a crash at any
point (a ``.tmp`` left behind is not listed; inputs left beside their merged file are
superseded). Superseded files are deleted only when no reader holds the shared
``flock`` on ``readers.lock`` (see :meth:`ColumnarStore.reading`), so a query that
listed them before the swap can still read them; until then they wait (on the next
pass, or on the next start: :func:`scan`).

Which files merge: files of the same schema, next to each other in mark order, in size
tiers (a file of fewer than ``base`` rows is tier 0, then each tier ``fanout`` times the
rows of the one before): ``fanout`` files of one tier merge into one of the next, so a
reading is rewritten once per tier (a handful of times). A folder that the compactor
stopped adding to (``settle``) has its remaining runs merged whatever their tiers. No
merged file goes over ``max_rows``.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

READERS_FILE = "readers.lock"
# Taken by a waiting deleter so that queries starting meanwhile queue behind it.
GATE_FILE = "readers-gate.lock"
ROW_GROUP_ROWS = 20_000  # rows per row group of a merged file: ~16 MB more RSS while merging
# (65,536: 40 MB; 122,880: 78 MB), and DuckDB's aggregates ran as fast over either


@dataclass(frozen=True)
class Span:
    """A columnar file and the marks of the compaction steps whose readings it holds."""

    path: Path
    lo: int
    hi: int


def span_of(path: Path) -> Span | None:
    """The span a ``<mark>.parquet`` or ``<lo>-<hi>.parquet`` name says (None: not one)."""
    lo, _, hi = path.stem.partition("-")
    try:
        return Span(path, int(lo), int(hi or lo))
    except ValueError:
        return None


def spans(folder: Path, mark: int) -> list[Span]:
    """The folder's files up to ``mark``, by mark (superseded ones too)."""
    found = (span_of(p) for p in folder.glob("*.parquet"))
    return sorted((s for s in found if s is not None and s.hi <= mark), key=lambda s: (s.lo, -s.hi))


def visible(all_spans: list[Span]) -> tuple[list[Span], list[Span]]:
    """The files to read and the superseded ones, of :func:`spans`' list. Spans of one
    folder are nested or apart, so a file is superseded when an earlier one reaches past it."""
    shown: list[Span] = []
    hidden: list[Span] = []
    reach = -1
    for span in all_spans:
        if span.hi <= reach:
            hidden.append(span)
        else:
            shown.append(span)
            reach = span.hi
    return shown, hidden


@dataclass(frozen=True)
class _Info:
    span: Span
    rows: int
    schema: pa.Schema


def _info(span: Span) -> _Info:
    with pq.ParquetFile(span.path) as f:
        return _Info(span, f.metadata.num_rows, f.schema_arrow)


def _tier(rows: int, base: int, fanout: int) -> int:
    return 0 if rows < base else 1 + int(math.log(rows / base, fanout) + 1e-9)


def plan(
    shown: list[Span], *, base: int, fanout: int, max_rows: int, settle: bool
) -> list[list[_Info]]:
    """The runs of files to merge (each into one file), oldest first."""
    infos = [_info(s) for s in shown]
    runs: list[list[_Info]] = []
    run: list[_Info] = []
    rows = 0

    def close() -> None:
        if len(run) >= (2 if settle else fanout):
            runs.append(list(run))
        run.clear()

    for info in infos:
        same = bool(run) and info.schema.equals(run[0].schema)
        if same and not settle:
            same = _tier(info.rows, base, fanout) == _tier(run[0].rows, base, fanout)
        if not same or rows + info.rows > max_rows or (not settle and len(run) == fanout):
            close()
            rows = 0
        if info.rows >= max_rows:
            continue  # full already
        run.append(info)
        rows += info.rows
    close()
    return runs


def merge(run: list[_Info]) -> Path:
    """Write the run's rows, in order, as one file and swap it in; return its path.

    Nothing is deleted here: the inputs are superseded from the rename on."""
    lo, hi = run[0].span.lo, run[-1].span.hi
    folder = run[0].span.path.parent
    target = folder / f"{lo}-{hi}.parquet"
    temporary = target.with_suffix(".tmp")
    with pq.ParquetWriter(temporary, run[0].schema, compression="zstd") as writer:
        pending: list[pa.Table] = []
        count = 0
        for info in run:
            with pq.ParquetFile(info.span.path) as f:
                for index in range(f.num_row_groups):
                    # one thread: decoding columns in parallel took twice the memory
                    table = f.read_row_group(index, use_threads=False)
                    pending.append(table)
                    count += table.num_rows
                    if count >= ROW_GROUP_ROWS:
                        writer.write_table(pa.concat_tables(pending), row_group_size=count)
                        pending, count = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=count)
    _fsync(temporary)
    os.replace(temporary, target)
    _fsync(folder)  # the rename is durable before any input can be deleted
    return target


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def readers_lock(root: Path, *, exclusive: bool, wait: bool = False) -> Iterator[bool]:
    """The readers' shared ``flock`` (blocking), or the deleter's exclusive one (not
    blocking unless ``wait``: yields whether it was had).

    A waiting deleter first closes a gate that each reader passes on its way in, so
    queries that keep overlapping cannot hold it off for ever; a merge dropping the
    files it replaced does not wait and takes no gate."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not exclusive:
        way_in = _locked(root / GATE_FILE, fcntl.LOCK_SH)
        try:
            fd = _locked(root / READERS_FILE, fcntl.LOCK_SH)
        finally:
            os.close(way_in)  # the gate is only for the way in
        try:
            yield True
        finally:
            os.close(fd)  # releases the lock
        return
    gate = _locked(root / GATE_FILE, fcntl.LOCK_EX) if wait else None
    try:
        try:
            fd = _locked(
                root / READERS_FILE, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
            )
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            os.close(fd)
    finally:
        if gate is not None:
            os.close(gate)


def _locked(path: Path, operation: int) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, operation)
    except BaseException:
        os.close(fd)
        raise
    return fd


def drop(root: Path, superseded: set[Path]) -> None:
    """Delete superseded files if no reader is running (else leave them for later)."""
    if not superseded:
        return
    with readers_lock(root, exclusive=True) as had:
        if not had:
            return
        for path in sorted(superseded):
            path.unlink(missing_ok=True)
        superseded.clear()


def scan(root: Path, folders: Iterator[Path], mark: int) -> set[Path]:
    """After a start: remove what an interrupted pass left (merges' ``.tmp`` files, files
    of a compaction step whose mark was not saved); return the superseded files."""
    superseded: set[Path] = set()
    for folder in folders:
        for path in folder.glob("*.tmp"):
            path.unlink()
        for path in folder.glob("*.parquet"):
            span = span_of(path)
            if span is not None and span.hi > mark:
                path.unlink()  # the next pass writes its readings again
        superseded.update(s.path for s in visible(spans(folder, mark))[1])
    return superseded
