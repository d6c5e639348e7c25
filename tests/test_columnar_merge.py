"""The compactor merges a day folder's small Parquet files into large ones: the rows stay
the same and in the same order, a query running across a merge still reads every row
once, deletes apply to merged files, and a merge interrupted at any step leaves every
row exactly once (and is finished or undone by the next start)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from query_fixtures import ChangingSource, MemoryStore
from test_query_layer import HOUR_NS, T0_NS, count_sql, reading

from capsync.export.parquet_export import export_query_parquet
from capsync.query import DataQuery
from capsync.query import columnar_merge as merging
from capsync.query.columnar import ColumnarStore

pytestmark = pytest.mark.wire_independent

N = 100  # readings, all on 2025-11-30 (one a minute)
STEP = 5  # readings per compaction step: 20 files before merging
MERGED = f"{STEP}-{N}.parquet"  # named by the marks of its first and last input
ROWS = "SELECT data.readings.i AS i, time_requested, component_name FROM readings"


@pytest.fixture(name="store")
def store_fixture() -> MemoryStore:
    store = MemoryStore()
    store.record_tabular([reading(i, at_ns=T0_NS + i * 60 * 10**9) for i in range(N)])
    return store


def open_query(store: MemoryStore, data_dir: Path, *, merging_on: bool = True) -> DataQuery:
    query = DataQuery(ChangingSource(store), data_dir)
    columnar = query.columnar
    assert columnar is not None
    columnar.merge_base, columnar.merge_fanout = STEP, 4
    columnar.merge_max_rows = 1000 if merging_on else 0  # 0: every file counts as full
    return query


@pytest.fixture(name="query")
def query_fixture(tmp_path: Path, store: MemoryStore) -> Iterator[DataQuery]:
    """Compacted in 20 files, none merged yet; merging on from here."""
    with open_query(store, tmp_path, merging_on=False) as query:
        assert cols(query).compact(batch=STEP) == N
        assert len(cols(query).snapshot()[0]) == N // STEP
        cols(query).merge_max_rows = 1000
        yield query


def cols(query: DataQuery) -> ColumnarStore:
    assert query.columnar is not None
    return query.columnar


def on_disk(query: DataQuery) -> list[str]:
    return sorted(p.name for p in cols(query).root.glob("*/*/*/*/*/*"))


def check_once(query: DataQuery, expected: list[dict[str, Any]]) -> None:
    assert query.sql(ROWS) == expected  # every row once, in the same order (no ORDER BY)


def test_small_files_merge_with_rows_and_order_unchanged(
    tmp_path: Path, store: MemoryStore
) -> None:
    with open_query(store, tmp_path / "flat", merging_on=False) as flat:
        cols(flat).compact(batch=STEP)
        expected = flat.sql(ROWS)
        paged = flat.sql(ROWS + " LIMIT 7 OFFSET 31")
        export_query_parquet(flat, None, tmp_path / "out-flat")
    with open_query(store, tmp_path / "merged") as query:
        cols(query).compact(batch=STEP)  # merged in tiers as it goes: 4 x 5 rows, 4 x 20
        files, _ = cols(query).snapshot()
        assert [pq.read_metadata(f).num_rows for f in files] == [80, 20]
        cols(query).compact()  # nothing new: the folder settles into one file
        (merged,) = cols(query).snapshot()[0]
        assert merged.name == MERGED and on_disk(query) == [merged.name]
        assert query.sql(ROWS) == expected
        assert query.sql(ROWS + " LIMIT 7 OFFSET 31") == paged
        assert count_sql(query) == N
        export_query_parquet(query, None, tmp_path / "out-merged")
    (flat_out,) = (tmp_path / "out-flat").rglob("*.parquet")
    (merged_out,) = (tmp_path / "out-merged").rglob("*.parquet")
    assert pq.read_table(flat_out).equals(pq.read_table(merged_out))


def test_a_query_running_across_a_merge_reads_every_row(
    query: DataQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = query.sql(ROWS)
    engine = query.sql_engine
    cursor = engine.cursor

    def merge_then_cursor(*args: Any, **kwargs: Any) -> Any:
        cols(query).compact()  # the files this query listed are merged now
        return cursor(*args, **kwargs)

    monkeypatch.setattr(engine, "cursor", merge_then_cursor)
    check_once(query, expected)  # read the replaced files, kept for it
    assert len(on_disk(query)) == N // STEP + 1  # kept until no query began before the swap
    monkeypatch.undo()
    check_once(query, expected)  # the merged file alone, though the old ones are there
    cols(query).compact()  # no query running: the replaced files go
    assert on_disk(query) == [MERGED]
    check_once(query, expected)


def _crash(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt("killed")


def _half_drop(root: Path, superseded: set[Path]) -> None:
    for path in sorted(superseded)[: len(superseded) // 2]:
        path.unlink()
    raise KeyboardInterrupt("killed")


CRASHES: dict[str, tuple[str, Callable[..., None]]] = {
    "before the swap": ("_fsync", _crash),  # the merged .tmp written, not renamed
    "after the swap": ("drop", _crash),  # renamed; no input deleted
    "while deleting the inputs": ("drop", _half_drop),
}


@pytest.mark.parametrize("point", list(CRASHES))
def test_a_merge_killed_midway_leaves_every_row_once(
    tmp_path: Path,
    store: MemoryStore,
    query: DataQuery,
    point: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = query.sql(ROWS)
    name, fault = CRASHES[point]
    monkeypatch.setattr(merging, name, fault)
    with pytest.raises(KeyboardInterrupt):
        cols(query).compact()
    monkeypatch.undo()
    check_once(query, expected)
    assert len(on_disk(query)) > 1
    with open_query(store, tmp_path) as restarted:  # the next start
        check_once(restarted, expected)
        cols(restarted).compact()  # finishes the merge, or redoes it
        check_once(restarted, expected)
        assert on_disk(restarted) == [MERGED]


def test_deletes_cut_merged_files_and_never_bring_replaced_ones_back(query: DataQuery) -> None:
    with cols(query).reading():  # a query keeps the replaced files on disk
        cols(query).compact()
    assert len(on_disk(query)) == N // STEP + 1
    assert query.delete_tabular(T0_NS + 30 * 60 * 10**9) == 30  # cuts the merged file
    assert count_sql(query) == N - 30
    assert [r["i"] for r in query.sql(ROWS)] == [float(i) for i in range(30, N)]
    assert query.delete_tabular(T0_NS + 12 * HOUR_NS) == N - 30  # all of it; the day stays
    assert count_sql(query) == 0
    cols(query).compact()
    assert count_sql(query) == 0 and on_disk(query) == []


def test_a_delete_waits_for_a_query_that_listed_its_files(
    query: DataQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete arriving after a query listed the files it removes waits for the query,
    which reads them whole; the next query sees the delete."""
    import threading

    expected = query.sql(ROWS)
    engine = query.sql_engine
    cursor = engine.cursor
    deleter = threading.Thread(target=query.delete_tabular, args=(None,))

    def delete_then_cursor(*args: Any, **kwargs: Any) -> Any:
        deleter.start()  # every file this query listed is to go
        deleter.join(1.0)  # it waits for the query (without the wait it is done by now)
        return cursor(*args, **kwargs)

    monkeypatch.setattr(engine, "cursor", delete_then_cursor)
    check_once(query, expected)
    monkeypatch.undo()
    deleter.join(30)
    assert not deleter.is_alive()
    assert on_disk(query) == []
    assert query.sql("SELECT count(*) AS n FROM readings") == [{"n": 0}]


def test_queries_that_keep_coming_do_not_hold_off_a_waiting_delete(query: DataQuery) -> None:
    """A query that starts while a delete waits for the running ones goes after the delete
    (and sees it), so back-to-back queries cannot starve deletes."""
    import fcntl
    import os
    import threading

    from sync_helpers import wait_for

    def gate_closed() -> bool:
        fd = os.open(cols(query).root / merging.GATE_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    counts: list[Any] = []
    deleter = threading.Thread(target=query.delete_tabular, args=(None,))
    later = threading.Thread(
        target=lambda: counts.append(query.sql("SELECT count(*) AS n FROM readings"))
    )
    with cols(query).reading():  # a query running
        deleter.start()
        assert wait_for(gate_closed, 30, 0.005)  # the delete waits for it
        later.start()  # and a query starts meanwhile
        later.join(0.5)
        assert counts == []  # it queues behind the delete
    deleter.join(30)
    later.join(30)
    assert counts == [[{"n": 0}]]
