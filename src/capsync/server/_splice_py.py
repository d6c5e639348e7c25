"""The pure-Python twin (numpy) of the compiled ``capsync.server._splice``: the ``data``
fields of a TabularDataByFilterResponse copied from a stored batch body, five bytes
rewritten per reading (``capsync.server.data_wire`` describes the layout). Both give the
same bytes, or both None, for any input (``tests/test_data_splice.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["spliced_entries"]  # the same as the compiled module's


def spliced_entries(
    body: bytes, offsets: Any, lengths: Any, metadata_index: int
) -> tuple[bytes, int] | None:
    """The ``data`` fields of the readings whose ``SensorData`` sits at
    ``offsets``/``lengths`` in ``body`` and the total size of the entries; None when some
    reading is not laid out the plain way."""
    o = np.ascontiguousarray(offsets, dtype=np.int64)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    count = len(o)
    if count == 0:
        return b"", 0
    if not 0 <= metadata_index < 128:
        return None
    view = np.frombuffer(body, dtype=np.uint8)
    ends = o + lengths
    starts = o - 1 - _varint_sizes(lengths)  # the field's tag
    if int(starts.min()) < 0 or int(ends.max()) > len(view):
        return None

    def at(pos: Any) -> Any:  # past the end: the last byte (never so for a plain reading)
        return view.take(pos, mode="clip").astype(np.int64)

    meta_len = at(o + 1)
    m = o + 2  # time_requested's tag
    j = m + 2 + at(m + 1)  # time_received's tag
    p = m + meta_len  # the struct's tag
    v1, v2, v3 = at(p + 1), at(p + 2), at(p + 3)
    struct_len = np.where(
        v1 < 128, v1,
        np.where(v2 < 128, (v1 & 0x7F) | (v2 << 7), (v1 & 0x7F) | ((v2 & 0x7F) << 7) | (v3 << 14)),
    )  # fmt: skip
    struct_varint = np.where(v1 < 128, 1, np.where(v2 < 128, 2, 3))
    plain = (
        (at(starts) == 0x12) & (at(o) == 0x0A) & (meta_len < 128) & (at(m) == 0x0A)
        & (at(m + 1) < 128) & (at(j) == 0x12) & (at(j + 1) < 128) & (j + 2 + at(j + 1) == p)
        & (at(p) == 0x12) & ((v1 < 128) | (v2 < 128) | (v3 < 128))
        & (p + 1 + struct_varint + struct_len == ends)
    )  # fmt: skip
    if not plain.all():
        return None
    # contiguous readings are copied as one slice
    breaks = np.nonzero(starts[1:] != ends[:-1])[0] + 1
    piece_starts = starts[np.r_[0, breaks]]
    piece_ends = ends[np.r_[breaks - 1, count - 1]]
    piece_sizes = piece_ends - piece_starts
    out = np.concatenate([view[a:b] for a, b in zip(piece_starts.tolist(), piece_ends.tolist(),
                                                       strict=True)])  # fmt: skip
    piece_of = np.zeros(count, dtype=np.int64)
    piece_of[breaks] = 1
    piece_of = np.cumsum(piece_of)
    shift = (np.cumsum(piece_sizes) - piece_sizes - piece_starts)[piece_of]
    out[o + shift] = 0x10  # metadata_index
    out[o + 1 + shift] = metadata_index
    out[m + shift] = 0x1A  # time_requested
    out[j + shift] = 0x22  # time_received
    out[p + shift] = 0x0A  # data
    return out.tobytes(), int(lengths.sum())


def _varint_sizes(values: Any) -> Any:
    sizes = np.ones(len(values), dtype=np.int64)
    for bits in (7, 14, 21, 28, 35):
        sizes += values >= (1 << bits)
    return sizes
