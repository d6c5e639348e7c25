"""A chunked MCAP writer that takes messages in bulk.

The ``mcap`` library writes every record here except two: the Chunk and its
MessageIndex records. Those two are assembled by hand for speed: the library's
:class:`mcap.writer.Writer` builds them one message at a time through Python
calls (a ``Message`` object, five ``struct.pack`` calls and an index tuple per
message), which cost more than everything else in a readings export together.
This writer takes messages laid out as MCAP Message records, in batches
(from a capture file's frames by the compiled ``capsync.export._export`` or its
twin :mod:`capsync.export.frames`, on worker threads: see
:mod:`capsync.export.mcap_pipeline`; through :meth:`McapChunkWriter.add_records`)
or one at a time (with :func:`capsync.export.mcap_chunk.message_head`), with
their log times and offsets, from which it writes the chunk's message index
with numpy. Header,
Schema, Channel, DataEnd, Statistics, ChunkIndex, SummaryOffset and Footer
records, and the summary layout, are the library's; the hand-written records
are built in :mod:`capsync.export.mcap_chunk`.

How the tests prove the hand-written records match the format
(tests/test_export_mcap.py): the ``mcap`` library's readers (the seeking
reader through the summary and chunk indexes, and the streaming reader front
to back) read every message back with its log time, publish time, channel and
payload bytes equal to the capture files'; every MessageIndex entry points at a
Message record of its channel with its log time, in log time order, covering
each message of its chunk exactly once; chunk start/end times, uncompressed
sizes and the Statistics record (message and per-channel counts, start and
end times) agree with the messages read back; with chunks of 1 kB and 4 MiB.

Two chunk streams are kept: one compressed with zstd (JSON readings, point
clouds) and one stored uncompressed for payloads that are already compressed
(JPEG and PNG images), where zstd would spend the time of the whole export to
save under 1%. Chunk CRCs are written as 0 ("not computed", as the MCAP spec
allows). A chunk is filled up to its limit and no further, so it holds at most
``chunk_size_bytes`` (default 1 MiB) plus one message, and memory stays at a
few chunks (the two being filled, up to two being compressed on other threads
while the next is filled, and the batches encoded ahead: ``peak_buffered_bytes``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import IO, Any

import numpy as np
import zstandard
from mcap.data_stream import RecordBuilder
from mcap.opcode import Opcode
from mcap.records import (
    Channel,
    ChunkIndex,
    DataEnd,
    Footer,
    Header,
    Schema,
    Statistics,
    SummaryOffset,
)
from mcap.writer import LIBRARY_IDENTIFIER

from capsync.export.mcap_chunk import (
    MESSAGE_HEAD_BYTES,
    Chunk,
    chunk_head,
    message_head,
    message_indexes,
    widen,
)

MCAP_MAGIC = b"\x89MCAP0\r\n"
DEFAULT_CHUNK_SIZE_BYTES = 1 << 20  # the mcap library's default too
CHUNKS_COMPRESSING = 2  # handed to be compressed and not yet written, at most
ZSTD_LEVEL = 1  # level 3 costs about twice the time for ~15% smaller JSON chunks
# Level 1 with a 4K-entry hash table and 7-byte minimum matches: about 10% faster than
# level 1's own table on readings' JSON, and 1% smaller (the matches there are the repeated
# keys; the digits between them shrink by Huffman coding alone). Negative levels are 20%
# faster still but turn Huffman coding off: files 1.7x larger.
ZSTD_PARAMETERS = zstandard.ZstdCompressionParameters.from_level(
    ZSTD_LEVEL, hash_log=12, min_match=7
)


class McapChunkWriter:
    """Writes an MCAP file to ``stream`` (a binary file object opened for writing)."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        chunk_size_bytes: int = DEFAULT_CHUNK_SIZE_BYTES,
        profile: str = "",
        executor: Executor | None = None,
    ) -> None:
        """``executor`` compresses the chunks (default: a thread of the writer's own)."""
        self._stream = stream
        self._chunk_size = chunk_size_bytes
        self._position = 0
        self._schemas: dict[int, Schema] = {}
        self._channels: dict[int, Channel] = {}
        self._chunk_indexes: list[ChunkIndex] = []
        self._counts: dict[int, int] = {}
        self._message_count = 0
        self._start_ns = 0
        self._end_ns = 0
        self._compressors: list[zstandard.ZstdCompressor] = []  # idle ones
        self._packed = Chunk("zstd")
        self._stored = Chunk("")
        self._finished = False
        self._executor = executor
        self._pool: ThreadPoolExecutor | None = None  # the writer's own, if it made one
        # chunks handed to be compressed, oldest first (written in that order)
        self._pending: deque[tuple[str, bytearray, Any, int, int, dict[int, Any]]] = deque()
        self._spares: list[bytearray] = []  # written chunks' buffers, for the next chunks
        self.peak_buffered_bytes = 0  # the most record bytes held at once (chunks and pending)
        self._write(MCAP_MAGIC)
        self._write_records(Header(profile=profile, library=f"capsync; {LIBRARY_IDENTIFIER}"))

    # --- low level -----------------------------------------------------------------

    def _write(self, data: Any) -> None:
        self._stream.write(data)
        self._position += len(data)

    def _write_records(self, *records: Any) -> None:
        builder = RecordBuilder()
        for record in records:
            record.write(builder)
        self._write(builder.end())

    # --- schemas and channels ------------------------------------------------------

    def add_schema(self, name: str, encoding: str, data: bytes) -> int:
        """Register a schema (written at once, before any message uses it); return its id."""
        schema = Schema(id=len(self._schemas) + 1, name=name, encoding=encoding, data=data)
        self._schemas[schema.id] = schema
        self._write_records(schema)
        return schema.id

    def add_channel(
        self,
        topic: str,
        message_encoding: str,
        schema_id: int,
        metadata: dict[str, str] | None = None,
    ) -> int:
        """Register a channel (0 for ``schema_id`` means none); return its id."""
        channel = Channel(
            id=len(self._channels) + 1,
            topic=topic,
            message_encoding=message_encoding,
            schema_id=schema_id,
            metadata=dict(metadata or {}),
        )
        self._channels[channel.id] = channel
        self._counts[channel.id] = 0
        self._write_records(channel)
        return channel.id

    # --- messages ------------------------------------------------------------------

    def _count(self, channel_id: int, log_times: np.ndarray) -> None:
        n = len(log_times)
        if n == 0:
            return
        self._start_ns, self._end_ns = widen(
            self._message_count,
            self._start_ns,
            self._end_ns,
            int(log_times.min()),
            int(log_times.max()),
        )
        self._message_count += n
        self._counts[channel_id] += n

    def add_records(
        self,
        channel_id: int,
        records: bytearray,
        size: int,
        log_times: Any,
        offsets: Any,
        *,
        held_bytes: int = 0,
    ) -> None:
        """Add the Message records ``records[:size]`` (back to back, each at its offset,
        with its log time) to the compressed chunks, cutting each chunk after the record
        that takes it to ``chunk_size_bytes``, as filling it record by record would (so
        a chunk holds at most ``chunk_size_bytes`` plus one message). ``held_bytes``:
        record bytes held elsewhere meanwhile (batches encoded ahead), for
        ``peak_buffered_bytes``."""
        log_times = np.asarray(log_times, dtype=np.uint64)
        offsets = np.asarray(offsets, dtype=np.uint64)
        n = len(offsets)
        ends = np.empty(n, dtype=np.uint64)
        ends[:-1] = offsets[1:]
        if n:
            ends[-1] = size
        done = 0
        with memoryview(records) as view:
            while done < n:
                chunk = self._packed
                start = int(offsets[done])
                # the first record that ends at or past the chunk's limit, or the last
                last = int(np.searchsorted(ends, start + self._chunk_size - chunk.size))
                stop = min(max(last, done) + 1, n)
                base = chunk.size
                chunk.append(view[start : int(ends[stop - 1])])
                times = log_times[done:stop]
                moved = offsets[done:stop] - np.uint64(start) + np.uint64(base)
                chunk.note(channel_id, times, moved)
                self._note_buffered(held_bytes + size)  # the batch's buffer, until it is done
                self._count(channel_id, times)
                if chunk.size >= self._chunk_size:
                    self._flush_chunk(chunk)
                done = stop

    def add_message(
        self,
        channel_id: int,
        log_time_ns: int,
        publish_time_ns: int,
        data: bytes,
        *,
        sequence: int = 0,
        compress: bool = True,
    ) -> None:
        """Append one message (for records that come one by one, e.g. from a store)."""
        self.add_message_parts(
            channel_id,
            log_time_ns,
            publish_time_ns,
            len(data),
            [data],
            sequence=sequence,
            compress=compress,
        )

    def add_message_parts(
        self,
        channel_id: int,
        log_time_ns: int,
        publish_time_ns: int,
        data_nbytes: int,
        parts: list[Any],
        *,
        fill: Callable[[memoryview], None] | None = None,
        sequence: int = 0,
        compress: bool = True,
    ) -> None:
        """Append one message whose data is ``parts`` (buffers) followed, when ``fill``
        is given, by the rest of ``data_nbytes`` written by ``fill`` into a view of
        the chunk (so a payload file is read straight into it, not copied twice)."""
        chunk = self._packed if compress else self._stored
        base = chunk.size
        chunk.append(message_head(channel_id, sequence, log_time_ns, publish_time_ns, data_nbytes))
        for part in parts:
            chunk.append(part)
        if fill is not None:
            with chunk.extend_by(base + MESSAGE_HEAD_BYTES + data_nbytes - chunk.size) as view:
                fill(view)
        chunk.note_one(channel_id, log_time_ns, base)
        self._note_buffered()
        self._start_ns, self._end_ns = widen(
            self._message_count, self._start_ns, self._end_ns, log_time_ns, log_time_ns
        )
        self._message_count += 1
        self._counts[channel_id] += 1
        if chunk.size >= self._chunk_size:
            self._flush_chunk(chunk)

    # --- chunks --------------------------------------------------------------------

    def _note_buffered(self, held_elsewhere_bytes: int = 0) -> None:
        held = self._packed.size + self._stored.size + held_elsewhere_bytes
        for pending in self._pending:
            held += len(pending[1])  # its compressed copy is smaller (or absent)
        if held > self.peak_buffered_bytes:
            self.peak_buffered_bytes = held

    def _flush_chunk(self, chunk: Chunk) -> None:
        """Hand the chunk to be compressed (in the background) and start a new one.

        zstd releases the GIL, so the next chunk is filled while this one is
        compressed; at most CHUNKS_COMPRESSING chunks wait (two can be compressed side
        by side), and chunks are written in order.
        """
        if chunk.messages == 0:
            return
        while len(self._pending) >= CHUNKS_COMPRESSING:
            self._write_pending()
        raw, index = chunk.take(self._spares.pop() if self._spares else None)
        body: Any = raw
        if chunk.compression:
            if self._executor is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="capsync-mcap-zstd")
                self._executor = self._pool
            body = self._executor.submit(self._compress, raw)
        self._pending.append((chunk.compression, raw, body, chunk.start_ns, chunk.end_ns, index))
        # stored chunks at the head go now, their buffers not held behind the compression
        # limit (not compressed ones that happen to be done: schema and channel records
        # are written as they come, so when a chunk is written must not depend on timing)
        while self._pending and not isinstance(self._pending[0][2], Future):
            self._write_pending()

    def _compress(self, raw: bytearray) -> bytes:
        """zstd, with a compressor no other thread is using (they are not thread safe)."""
        try:
            compressor = self._compressors.pop()
        except IndexError:
            compressor = zstandard.ZstdCompressor(compression_params=ZSTD_PARAMETERS)
        try:
            return compressor.compress(raw)
        finally:
            self._compressors.append(compressor)

    def _write_pending(self) -> None:
        if not self._pending:
            return
        compression_name, raw, body, start_ns, end_ns, index = self._pending.popleft()
        raw_nbytes = len(raw)
        if isinstance(body, Future):
            body = body.result()
            # only zstd read the records: their buffer can take a later chunk's (a stored
            # chunk's went to the stream's write, which might keep it)
            self._spares.append(raw)
        chunk_start = self._position
        self._write(chunk_head(compression_name.encode(), len(body), start_ns, end_ns, raw_nbytes))
        self._write(body)
        chunk_length = self._position - chunk_start
        index_start = self._position
        offsets: dict[int, int] = {}
        for channel_id, record in message_indexes(index):
            offsets[channel_id] = self._position
            self._write(record)
        self._chunk_indexes.append(
            ChunkIndex(
                message_start_time=start_ns,
                message_end_time=end_ns,
                chunk_start_offset=chunk_start,
                chunk_length=chunk_length,
                message_index_offsets=offsets,
                message_index_length=self._position - index_start,
                compression=compression_name,
                compressed_size=len(body),
                uncompressed_size=raw_nbytes,
            )
        )

    # --- end -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop the compression thread (``finish`` does; call it when abandoning a file)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = self._executor = None

    @property
    def message_count(self) -> int:
        return self._message_count

    def finish(self) -> None:
        """Write the last chunks, the summary and the footer (does not close the stream)."""
        if self._finished:
            return
        self._finished = True
        try:
            self._flush_chunk(self._packed)
            self._flush_chunk(self._stored)
            while self._pending:
                self._write_pending()
        finally:
            self.close()
        self._write_records(DataEnd(data_section_crc=0))
        summary_start = self._position
        builder = RecordBuilder()
        summary_offsets: list[SummaryOffset] = []
        statistics = Statistics(
            attachment_count=0,
            channel_count=len(self._channels),
            channel_message_counts=dict(self._counts),
            chunk_count=len(self._chunk_indexes),
            message_count=self._message_count,
            message_end_time=self._end_ns,
            message_start_time=self._start_ns,
            metadata_count=0,
            schema_count=len(self._schemas),
        )
        groups: list[tuple[Opcode, list[Any]]] = [
            (Opcode.SCHEMA, list(self._schemas.values())),
            (Opcode.CHANNEL, list(self._channels.values())),
            (Opcode.STATISTICS, [statistics]),
            (Opcode.CHUNK_INDEX, self._chunk_indexes),
        ]
        for opcode, records in groups:
            if not records:
                continue
            group_start = builder.count
            for record in records:
                record.write(builder)
            summary_offsets.append(
                SummaryOffset(
                    group_opcode=opcode,
                    group_start=summary_start + group_start,
                    group_length=builder.count - group_start,
                )
            )
        summary_offset_start = summary_start + builder.count
        for offset in summary_offsets:
            offset.write(builder)
        self._write(builder.end())
        self._write_records(
            Footer(
                summary_start=summary_start,
                summary_offset_start=summary_offset_start,
                summary_crc=0,
            )
        )
        self._write(MCAP_MAGIC)
