"""Columnar copies of the tabular readings, for SQL: Parquet files written by a compactor.

Layout under ``<data_dir>/capsync-query/parquet/``: one folder per source and
UTC day, ``<part>/<component_type>/<component_name>/<method>/<YYYY-MM-DD>/``
(each segment percent-encoded), holding ``<mark>.parquet`` files, and
``state.json`` with the compaction mark. Each compaction pass asks the store
for the readings stored after the mark (:meth:`DataSource.changes_since`),
writes them as one file per source and day named after the new mark (so a pass
interrupted before it saved the mark rewrites the same files), then saves the
mark. A query reads the files named at or below the mark it read first, plus
the tail (readings after that mark, straight from the store), so it sees
everything the server acknowledged, exactly once. Runs of a folder's files are
then merged into ``<lo>-<hi>.parquet`` files (:mod:`capsync.query.columnar_merge`:
the swap, which files, and why a query never sees a merge halfway).

Deletes and retention are applied to both the store and these files: a whole
day's folder goes at once; a day cut in two is rewritten without the older rows.
One process compacts a data dir at a time (an ``flock`` on ``state.json.lock``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capsync._time import DAY_NS, day_name, day_start_ns
from capsync.query import columnar_merge as merging
from capsync.query.catalog import META_DIR
from capsync.query.filters import DataFilter
from capsync.query.source import DataSource
from capsync.query.table import readings_table

if TYPE_CHECKING:
    from capsync.server.stores.base import TabularRecord

log = logging.getLogger(__name__)

PARQUET_DIR = "parquet"
STATE_FILE = "state.json"
ID_COLUMN = "_capsync_id"  # the reading's id: kept in the files, hidden from SQL
# The times to the nanosecond (SQL's columns hold microseconds), hidden from SQL too; for
# exports. Files compacted before they existed lack them.
REQUESTED_NS_COLUMN = "_capsync_time_requested_ns"
RECEIVED_NS_COLUMN = "_capsync_time_received_ns"
HIDDEN_COLUMNS = (ID_COLUMN, REQUESTED_NS_COLUMN, RECEIVED_NS_COLUMN)  # not in SQL's readings
# Readings decoded per compaction step (and per Parquet file at most): the step holds them
# as Python records, so this bounds the server's memory while a big backlog arrives (at
# 100k a 1 GiB sync pushed the server's peak RSS to 368 MB; at 20k, 192 MB).
DEFAULT_BATCH = 20_000
MERGE_FANOUT = 8  # files of one size tier merged into one of the next
MERGE_MAX_ROWS = 4_000_000  # rows of a merged file at most

SourceKey = tuple[str, str, str, str]  # part, component type, component name, method


def _segment(text: str) -> str:
    return quote(text, safe="") or "%00"  # never an empty folder name


def _unsegment(text: str) -> str:
    return "" if text == "%00" else unquote(text)


class ColumnarStore:
    """The Parquet copies of one data dir's readings (see the module docstring)."""

    def __init__(self, data_dir: str | os.PathLike[str], source: DataSource) -> None:
        self.root = Path(data_dir) / META_DIR / PARQUET_DIR
        self.source = source
        self._lock = threading.RLock()
        self.merge_base = DEFAULT_BATCH  # rows of the smallest tier's files (see merging)
        self.merge_fanout = MERGE_FANOUT
        self.merge_max_rows = MERGE_MAX_ROWS
        self._superseded: set[Path] | None = None  # None: not scanned since the start
        self._unsettled: set[Path] = set()  # folders added to since they were last merged

    # --- state -----------------------------------------------------------------------------

    def mark(self) -> int:
        """The store's change mark up to which readings are in files (0: none)."""
        try:
            return int(json.loads((self.root / STATE_FILE).read_text())["mark"])
        except (FileNotFoundError, KeyError, ValueError):
            return 0

    def _save_mark(self, mark: int) -> None:
        temporary = self.root / (STATE_FILE + ".tmp")
        with open(temporary, "w") as out:
            json.dump({"mark": mark}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.root / STATE_FILE)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold off compaction (in this process and others) while the store changes."""
        with self._lock:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.root / (STATE_FILE + ".lock"), "a") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # --- compaction ------------------------------------------------------------------------

    def compact(self, batch: int = DEFAULT_BATCH) -> int:
        """Move every reading stored after the mark into files, merging small files as it
        goes; return how many readings moved."""
        if not self.source.supports_changes:
            return 0
        moved = 0
        with self.exclusive():
            mark = self.mark()
            if self._superseded is None:  # the first pass since the start
                self._superseded = merging.scan(self.root, self._folders(), mark)
                self._unsettled.update(self._folders())
            added: set[Path] = set()
            while True:
                records, new_mark = self.source.changes_since(mark, batch)
                if not records:
                    break
                written = self._write(records, new_mark)
                self._save_mark(new_mark)
                mark = new_mark
                moved += len(records)
                added.update(written)
                for folder in written:
                    self._merge(folder, mark, settle=False)
            for folder in sorted(self._unsettled - added):  # no longer added to: settle
                self._merge(folder, mark, settle=True)
            self._unsettled = added
            merging.drop(self.root, self._superseded)
        if moved:
            log.debug("compacted %d readings into Parquet (mark %d)", moved, mark)
        return moved

    def _merge(self, folder: Path, mark: int, *, settle: bool) -> None:
        """Merge the folder's runs of files the policy picks (see :mod:`.columnar_merge`)."""
        assert self._superseded is not None
        while folder.is_dir():
            shown, _ = merging.visible(merging.spans(folder, mark))
            runs = merging.plan(
                shown, base=self.merge_base, fanout=self.merge_fanout,
                max_rows=self.merge_max_rows, settle=settle,
            )  # fmt: skip
            if not runs:
                return
            for run in runs:
                merging.merge(run)
                self._superseded.update(info.span.path for info in run)
            merging.drop(self.root, self._superseded)

    def _write(self, records: list[TabularRecord], mark: int) -> set[Path]:
        """Write the records as one file per source and day; return the folders."""
        groups: dict[tuple[SourceKey, str], list[TabularRecord]] = defaultdict(list)
        for r in records:
            key = (r.part_id, r.component_type, r.component_name, r.method_name)
            groups[(key, day_name(r.time_requested_ns))].append(r)
        for (key, day), members in groups.items():
            table = readings_table(members)
            table = table.append_column(ID_COLUMN, pa.array([r.id for r in members], pa.string()))
            table = table.append_column(
                REQUESTED_NS_COLUMN, pa.array([r.time_requested_ns for r in members], pa.int64())
            )
            table = table.append_column(
                RECEIVED_NS_COLUMN, pa.array([r.time_received_ns for r in members], pa.int64())
            )
            folder = self.root.joinpath(*(_segment(part) for part in key), day)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._replace(folder / f"{mark}.parquet", table)
        return {self.root.joinpath(*(_segment(p) for p in key), day) for key, day in groups}

    @staticmethod
    def _replace(path: Path, table: pa.Table) -> None:
        temporary = path.with_suffix(".tmp")
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)

    def lag(self, now_ns: int) -> tuple[int, float] | None:
        """How far compaction is behind the store: the readings stored but not compacted,
        and the age in seconds at ``now_ns`` of the earliest of them (0.0: none); None when
        the store cannot tell."""
        summary = self.source.changes_summary(self.mark())
        if summary is None:
            return None
        readings, oldest_ns = summary
        if oldest_ns is None:
            return readings, 0.0
        return readings, max(0.0, (now_ns - oldest_ns) / 1e9)

    # --- reading ---------------------------------------------------------------------------

    def snapshot(self) -> tuple[list[Path], int]:
        """The files to read and the mark whose tail completes them. Read them inside
        :meth:`reading` (or :meth:`exclusive`), or a merge may delete them first."""
        mark = self.mark()
        files: list[Path] = []
        for folder in sorted(self._folders()):
            files.extend(s.path for s in merging.visible(merging.spans(folder, mark))[0])
        return files, mark

    @contextmanager
    def reading(self) -> Iterator[tuple[list[Path], int]]:
        """:meth:`snapshot`, whose files stay on disk until the block ends (merges wait to
        delete the files they replaced; a delete still removes its readings' files)."""
        with merging.readers_lock(self.root, exclusive=False):
            yield self.snapshot()

    def _folders(self) -> Iterator[Path]:
        return (p for p in self.root.glob("*/*/*/*/*") if p.is_dir())

    @staticmethod
    def source_of(path: Path) -> tuple[SourceKey, str]:
        """The source and UTC day (``YYYY-MM-DD``) of a file :meth:`snapshot` listed."""
        part, ctype, name, method, day = path.parent.parts[-5:]
        return (_unsegment(part), _unsegment(ctype), _unsegment(name), _unsegment(method)), day

    def tail(self, mark: int, batch: int = DEFAULT_BATCH) -> Iterator[TabularRecord]:
        """The readings stored after ``mark``."""
        while True:
            records, mark = self.source.changes_since(mark, batch, settled=False)
            if not records:
                return
            yield from records

    # --- deletes ---------------------------------------------------------------------------

    def _day_folders(self) -> Iterator[tuple[SourceKey, str, Path]]:
        for folder in self._folders():
            part, ctype, name, method, day = folder.relative_to(self.root).parts
            key = (_unsegment(part), _unsegment(ctype), _unsegment(name), _unsegment(method))
            yield key, day, folder

    def delete_before(self, before_ns: int | None, data_filter: DataFilter | None = None) -> None:
        """Remove readings requested before ``before_ns`` (None: all) of the sources the
        filter's part, component type, name and method match (None: all sources).

        Call it inside :meth:`exclusive`, together with the store's delete. It waits for
        the queries running (:meth:`reading`) to end: one may have listed the files it
        removes or rewrites."""
        f = data_filter or DataFilter()
        wanted = (f.part_id, f.component_type, f.component_name, f.method_name)
        with merging.readers_lock(self.root, exclusive=True, wait=True):
            self._delete_before(before_ns, wanted)

    def _delete_before(self, before_ns: int | None, wanted: tuple[str | None, ...]) -> None:
        for key, day, folder in list(self._day_folders()):
            if any(w is not None and w != k for w, k in zip(wanted, key, strict=True)):
                continue
            start = day_start_ns(day)
            if before_ns is None or start + DAY_NS <= before_ns:
                shutil.rmtree(folder)
            elif start < before_ns:
                cutoff = pa.scalar(before_ns // 1000, pa.timestamp("us"))
                # superseded files too: one a merge replaced must not come back unfiltered
                # if the merged file goes (all its readings deleted)
                for path in folder.glob("*.parquet"):
                    self._cut(path, cutoff)

    def _cut(self, path: Path, cutoff: pa.Scalar) -> None:
        """Rewrite the file without its readings requested before ``cutoff``, a row group
        at a time (a merged file holds millions)."""
        with pq.ParquetFile(path) as f:
            kept = 0
            for index in range(f.num_row_groups):
                times = f.read_row_group(index, ["time_requested"], use_threads=False)
                kept += pc.sum(pc.greater_equal(times["time_requested"], cutoff)).as_py() or 0
            if kept == f.metadata.num_rows:
                return
            if kept == 0:
                path.unlink()
                return
            temporary = path.with_suffix(".tmp")
            with pq.ParquetWriter(temporary, f.schema_arrow, compression="zstd") as out:
                for index in range(f.num_row_groups):
                    table = f.read_row_group(index, use_threads=False)
                    table = table.filter(pc.greater_equal(table["time_requested"], cutoff))
                    if table.num_rows:
                        out.write_table(table)
        os.replace(temporary, path)

    def source_sizes(self) -> dict[SourceKey, list[tuple[str, int]]]:
        """Per source, its days (oldest first) with their bytes on disk."""
        sizes: dict[SourceKey, list[tuple[str, int]]] = defaultdict(list)
        for key, day, folder in self._day_folders():
            shown, _ = merging.visible(merging.spans(folder, self.mark()))
            sizes[key].append((day, sum(s.path.stat().st_size for s in shown)))
        return {key: sorted(days) for key, days in sizes.items()}
