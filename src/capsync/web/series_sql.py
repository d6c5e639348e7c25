"""A plot's series computed by DuckDB in the data API's query layer: min/max per bucket.

The same downsampling as :func:`capsync.web.series.downsample` (equal time
buckets over ``[since, until)``, the data's own span when open; each bucket
keeps its lowest and its highest reading), run as one SQL aggregate over the
``readings`` table (:mod:`capsync.query.sql`), so 10M readings never leave
DuckDB: only ``2 * buckets`` rows come back. A series short enough to plot
whole comes back whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from capsync.query import DataQuery
from capsync.query.sql import run_sql
from capsync.web.series import MAX_BUCKETS, Series

_NUMERIC = ", ".join(
    f"'{name}'"
    for name in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT",
                 "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
)  # fmt: skip


def _field_sql(keys: Sequence[str]) -> str:
    """``data."a"."b"`` for the path a.b (quoted: any key is a valid struct field name)."""
    quoted = ('"' + key.replace('"', '""') + '"' for key in keys)
    return "data." + ".".join(quoted)


def sql_series(
    query: DataQuery,
    part_id: str | None,
    component: str,
    method: str,
    keys: Sequence[str],
    *,
    since_ns: int | None,
    until_ns: int | None,
    buckets: int,
) -> Series:
    """One numeric field's min/max series; QueryError when SQL cannot read the field
    (a field of mixed types is kept as JSON text, not a struct field)."""
    if not 1 <= buckets <= MAX_BUCKETS:
        raise ValueError(f"buckets must be 1 to {MAX_BUCKETS}, got {buckets}")
    clauses = ["component_name = ?", "method_name = ?"]
    params: list[Any] = [component, method]
    if part_id is not None:
        clauses.append("part_id = ?")
        params.append(part_id)
    if since_ns is not None:
        clauses.append("epoch_ns(time_requested) >= ?")
        params.append(since_ns)
    if until_ns is not None:
        clauses.append("epoch_ns(time_requested) < ?")
        params.append(until_ns)
    field = _field_sql(keys)
    # Numbers and booleans (as 0/1) only, as the reading-by-reading path: never a string.
    value = (
        f"CASE WHEN typeof({field}) = 'BOOLEAN' THEN TRY_CAST(TRY_CAST({field} AS INTEGER) AS "
        f"DOUBLE) WHEN typeof({field}) IN ({_NUMERIC}) THEN TRY_CAST({field} AS DOUBLE) END"
    )
    points = (
        f"WITH raw AS (SELECT epoch_ns(time_requested) AS t, {value} AS v FROM readings "
        f"WHERE {' AND '.join(clauses)}), "
        "points AS (SELECT t, v FROM raw WHERE v IS NOT NULL AND isfinite(v))"
    )
    (summary,) = run_sql(
        query,
        f"{points} SELECT count(*) AS n, min(t) AS t0, max(t) AS t1 FROM points",
        params,
        checked=True,
    )
    total = int(summary["n"])
    if total <= 2 * buckets:
        rows = run_sql(query, f"{points} SELECT t, v FROM points ORDER BY t", params, checked=True)
        times = np.array([r["t"] for r in rows], dtype=np.int64)
        values = np.array([r["v"] for r in rows], dtype=np.float64)
        return Series(times, values, total, False)
    low = int(summary["t0"]) if since_ns is None else since_ns
    high = int(summary["t1"]) + 1 if until_ns is None else until_ns
    scale = buckets / max(high - low, 1)  # buckets per nanosecond, as in downsample()
    rows = run_sql(
        query,
        f"{points}, bucketed AS (SELECT t, v, "
        "least(greatest(CAST(floor(CAST(t - ? AS DOUBLE) * ?) AS BIGINT), 0), ?) AS k "
        "FROM points) "
        "SELECT min(v) AS lo, arg_min(t, v) AS t_lo, max(v) AS hi, arg_max(t, v) AS t_hi "
        "FROM bucketed GROUP BY k ORDER BY k",
        [*params, low, scale, buckets - 1],
        checked=True,
    )
    picked: list[tuple[int, float]] = []
    for r in rows:
        pair = sorted({(int(r["t_lo"]), float(r["lo"])), (int(r["t_hi"]), float(r["hi"]))})
        picked.extend(pair)
    times = np.array([t for t, _ in picked], dtype=np.int64)
    values = np.array([v for _, v in picked], dtype=np.float64)
    return Series(times, values, total, True)
