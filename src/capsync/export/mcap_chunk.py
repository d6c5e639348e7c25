"""The hand-written MCAP records of :class:`capsync.export.mcap_writer.McapChunkWriter`:
Message heads, a Chunk being filled with its message index, the Chunk record's head
and the MessageIndex records (the writer's docstring says why these are not the
``mcap`` library's, and how the tests prove them right).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mcap.opcode import Opcode

# Message record: opcode u8, record length u64, channel u16, sequence u32, log u64, publish u64.
_MESSAGE_HEAD = struct.Struct("<BQHIQQ")
MESSAGE_HEAD_BYTES = _MESSAGE_HEAD.size  # 31
_CHUNK_HEAD = struct.Struct("<BQQQQI")  # opcode, length, start, end, uncompressed size, crc
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_INDEX_HEAD = struct.Struct("<BQHI")  # opcode, length, channel id, records byte length


def message_head(
    channel_id: int, sequence: int, log_time_ns: int, publish_time_ns: int, data_nbytes: int
) -> bytes:
    """The 31 bytes that precede a message's data in its record."""
    return _MESSAGE_HEAD.pack(
        Opcode.MESSAGE, 22 + data_nbytes, channel_id, sequence, log_time_ns, publish_time_ns
    )


def widen(count: int, start_ns: int, end_ns: int, low_ns: int, high_ns: int) -> tuple[int, int]:
    """The time range ``[start_ns, end_ns]`` of ``count`` messages, widened to hold
    ``[low_ns, high_ns]`` (just that when there were none)."""
    if count == 0:
        return low_ns, high_ns
    return min(start_ns, low_ns), max(end_ns, high_ns)


@dataclass
class Chunk:
    """The records of one chunk being built, and the index of its messages.

    The records are ``buffer[:size]``: the buffer is reused from chunk to chunk
    (see :meth:`take`) and may be longer than the records, so filling a chunk
    writes over memory already touched instead of growing a new buffer (whose
    fresh pages cost about a tenth of a readings export in page faults).
    """

    compression: str
    buffer: bytearray = field(default_factory=bytearray)
    size: int = 0
    # channel id -> list of (log times, offsets into buffer) arrays
    index: dict[int, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    # channel id -> (log times, offsets) of messages added one at a time
    single: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0
    messages: int = 0

    def append(self, part: Any) -> None:
        """Add ``part`` (a buffer) at the end of the records."""
        end = self.size + len(part)
        self.buffer[self.size : end] = part  # in place, or growing the buffer past its end
        self.size = end

    def extend_by(self, nbytes: int) -> memoryview:
        """Add ``nbytes`` to the records and return a view of them, to be written
        (release the view before the chunk grows again)."""
        start = self.size
        if len(self.buffer) < start + nbytes:
            self.buffer[len(self.buffer) :] = bytes(start + nbytes - len(self.buffer))
        self.size = start + nbytes
        return memoryview(self.buffer)[start : self.size]

    def note_one(self, channel_id: int, log_time_ns: int, offset: int) -> None:
        """One message (no numpy arrays for a single entry: images come one by one)."""
        self.start_ns, self.end_ns = widen(
            self.messages, self.start_ns, self.end_ns, log_time_ns, log_time_ns
        )
        self.messages += 1
        entry = self.single.get(channel_id)
        if entry is None:
            entry = self.single[channel_id] = ([], [])
        entry[0].append(log_time_ns)
        entry[1].append(offset)

    def note(self, channel_id: int, log_times: np.ndarray, offsets: np.ndarray) -> None:
        if len(log_times) == 0:
            return
        self.start_ns, self.end_ns = widen(
            self.messages, self.start_ns, self.end_ns, int(log_times.min()), int(log_times.max())
        )
        self.messages += len(log_times)
        self.index.setdefault(channel_id, []).append((log_times, offsets))

    def take(
        self, spare: bytearray | None = None
    ) -> tuple[bytearray, dict[int, list[tuple[np.ndarray, np.ndarray]]]]:
        """The chunk's records (a bytearray of exactly them) and its message index
        (one-by-one entries folded in as arrays); the chunk starts empty again, in
        ``spare`` (a buffer whose records were written) when one is given."""
        index = self.index
        for channel_id, (times, offsets) in self.single.items():
            index.setdefault(channel_id, []).append(
                (np.array(times, dtype=np.uint64), np.array(offsets, dtype=np.uint64))
            )
        raw = self.buffer
        # a cut to at least half the allocation keeps it (CPython's bytearray), so the
        # buffer keeps its pages for the chunk that reuses it
        del raw[self.size :]
        self.buffer = spare if spare is not None else bytearray()
        self.size = 0
        self.index = {}
        self.single = {}
        self.messages = 0
        return raw, index


def chunk_head(
    compression: bytes, body_nbytes: int, start_ns: int, end_ns: int, raw_nbytes: int
) -> bytes:
    """A Chunk record up to its records (CRC 0: "not computed")."""
    head_len = _CHUNK_HEAD.size - 9 + 4 + len(compression) + 8  # fields after opcode+length
    return (
        _CHUNK_HEAD.pack(Opcode.CHUNK, head_len + body_nbytes, start_ns, end_ns, raw_nbytes, 0)
        + _U32.pack(len(compression))
        + compression
        + _U64.pack(body_nbytes)
    )


def message_indexes(index: dict[int, list[tuple[Any, Any]]]) -> Iterator[tuple[int, bytes]]:
    """``(channel id, MessageIndex record)`` per channel of a chunk, by channel id; each
    record's entries in log time order."""
    for channel_id, parts in sorted(index.items()):
        times = np.concatenate([p[0] for p in parts])
        where = np.concatenate([p[1] for p in parts])
        order = np.argsort(times, kind="stable")  # an index is in log time order
        pairs = np.empty((len(times), 2), dtype="<u8")
        pairs[:, 0] = times[order]
        pairs[:, 1] = where[order]
        body_bytes = pairs.tobytes()
        yield (
            channel_id,
            (
                _INDEX_HEAD.pack(
                    Opcode.MESSAGE_INDEX, 6 + len(body_bytes), channel_id, len(body_bytes)
                )
                + body_bytes
            ),
        )
