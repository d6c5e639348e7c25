"""Downsampling a time series for a plot: the min and the max of each pixel-wide bucket.

A plot ``buckets`` pixels wide cannot show more than a low and a high per
pixel column, so a series longer than ``2 * buckets`` points is cut into
``buckets`` equal time buckets and each non-empty bucket keeps the reading
with its smallest and the one with its largest value (one when they are the
same), in time order. Spikes survive; 10M readings become at most
``2 * buckets`` points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Series:
    """Points to plot, oldest first."""

    times_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    total: int  # readings in the range before downsampling
    downsampled: bool


def downsample(
    times_ns: Sequence[int] | npt.ArrayLike,
    values: Sequence[float] | npt.ArrayLike,
    buckets: int,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> Series:
    """Min/max per bucket over ``[since_ns, until_ns)`` (the data's own span when None)."""
    if not 1 <= buckets <= MAX_BUCKETS:
        raise ValueError(f"buckets must be 1 to {MAX_BUCKETS}, got {buckets}")
    t = np.asarray(times_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError("times and values must be 1-D and of the same length")
    if t.size > 1 and bool(np.any(t[1:] < t[:-1])):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    total = int(t.size)
    if total <= 2 * buckets:
        return Series(t.copy(), v.copy(), total, False)
    low = int(t[0]) if since_ns is None else since_ns
    high = int(t[-1]) + 1 if until_ns is None else until_ns
    span_ns = max(high - low, 1)
    # In float: (t - low) * buckets could overflow int64 for long spans.
    index = ((t - low).astype(np.float64) * (buckets / span_ns)).astype(np.int64)
    np.clip(index, 0, buckets - 1, out=index)
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    ends = np.concatenate((starts[1:], [total]))
    # index never decreases, so sorting by (index, value) keeps each bucket where it
    # was: its first entry is the bucket's minimum, its last the maximum.
    by_value = np.lexsort((v, index))
    picks = np.unique(np.concatenate((by_value[starts], by_value[ends - 1])))
    return Series(t[picks], v[picks], total, True)
