"""micro-server mode: the record ring (capture/ring.py)."""

from __future__ import annotations

import collections
import random
from typing import Any

import pytest

from capsync.capture.ring import RecordRing, RecordTooLargeError
from capsync.capture.ring_sink import cache_capacity_bytes

independent = pytest.mark.wire_independent


def rec(i: int, size: int = 30) -> bytes:
    """A recognisable record of ``size`` bytes."""
    head = f"r{i}:".encode()
    return (head * (size // len(head) + 1))[:size]


# ----- the ring ------------------------------------------------------------------------------


@independent
def test_records_come_out_oldest_first_and_leave_only_on_confirm() -> None:
    ring = RecordRing(1000)
    for i in range(5):
        assert ring.append(rec(i)) == 0
    chunk = ring.peek_chunk(100)  # 3 records of 30 bytes fit
    assert chunk.records == [rec(0), rec(1), rec(2)]
    assert chunk.nbytes == 90 and len(ring) == 5
    assert ring.peek_chunk(100).records == chunk.records  # peeking again changes nothing
    assert ring.confirm(chunk.token) == 3
    assert ring.confirm(chunk.token) == 0  # a token confirms once
    assert ring.peek_chunk().records == [rec(3), rec(4)]
    stats = ring.stats()
    assert (stats.records, stats.bytes, stats.confirmed_records, stats.confirmed_bytes) == (
        2,
        60,
        3,
        90,
    )


@independent
def test_a_full_ring_overwrites_the_oldest_whole_records_in_order() -> None:
    ring = RecordRing(100)
    assert [ring.append(rec(i)) for i in range(3)] == [0, 0, 0]  # 90 of 100 bytes
    assert ring.append(rec(3)) == 1  # record 0 goes
    assert ring.peek_chunk().records == [rec(1), rec(2), rec(3)]
    assert ring.append(rec(4, 70)) == 2  # 1 and 2 go; 3 (30) + 4 (70) = 100 bytes: full
    assert ring.peek_chunk().records == [rec(3), rec(4, 70)]
    assert ring.nbytes == 100
    assert ring.append(rec(5, 100)) == 2  # everything goes for a record as large as the ring
    assert ring.peek_chunk(1000).records == [rec(5, 100)]
    stats = ring.stats()
    assert stats.overwritten_records == 5
    assert stats.overwritten_bytes == 30 * 4 + 70
    assert stats.appended_records == 6


@independent
def test_records_that_wrap_around_the_end_read_back_whole() -> None:
    ring = RecordRing(64)
    expected: collections.deque[bytes] = collections.deque()
    for i in range(200):
        record = rec(i, 7 + (i * 13) % 40)
        ring.append(record)
        expected.append(record)
        while sum(map(len, expected)) > 64:
            expected.popleft()
        assert ring.peek_chunk(10_000).records == list(expected)


@independent
def test_a_record_larger_than_the_ring_is_refused_and_counted() -> None:
    ring = RecordRing(100)
    ring.append(rec(0))
    with pytest.raises(RecordTooLargeError) as caught:
        ring.append(rec(1, 101))
    assert (caught.value.nbytes, caught.value.limit) == (101, 100)
    assert isinstance(caught.value, ValueError)
    assert ring.peek_chunk().records == [rec(0)]  # unchanged
    limited = RecordRing(100, max_record_bytes=40)
    with pytest.raises(RecordTooLargeError):
        limited.append(rec(2, 41))
    limited.append(rec(3, 40))
    assert ring.stats().oversize_records == 1 and limited.stats().oversize_records == 1
    with pytest.raises(ValueError, match="empty"):
        ring.append(b"")


@independent
def test_confirm_removes_only_what_is_still_there_and_nothing_newer() -> None:
    ring = RecordRing(100)
    for i in range(3):
        ring.append(rec(i))
    chunk = ring.peek_chunk()
    assert chunk.token.count == 3
    ring.append(rec(3, 60))  # overwrites records 0 and 1 while "uploading"
    assert ring.confirm(chunk.token) == 1  # only record 2 was still held
    assert ring.peek_chunk().records == [rec(3, 60)]  # the newer record stays
    later = ring.peek_chunk()
    ring.append(rec(4, 100))  # overwrites everything, the peeked record included
    assert ring.confirm(later.token) == 0
    assert ring.peek_chunk(1000).records == [rec(4, 100)]


@independent
def test_peek_respects_bytes_overhead_and_count() -> None:
    ring = RecordRing(1000)
    for i in range(10):
        ring.append(rec(i, 10))
    assert len(ring.peek_chunk(50)) == 5
    assert len(ring.peek_chunk(50, per_record_overhead=1)) == 4  # 4 * 11 = 44; 5 * 11 = 55
    assert len(ring.peek_chunk(1000, max_records=3)) == 3
    assert len(ring.peek_chunk(9)) == 0  # the oldest alone does not fit
    assert len(RecordRing(10).peek_chunk()) == 0


@independent
def test_the_ring_agrees_with_a_model_under_random_operations() -> None:
    rng = random.Random(1234)
    ring = RecordRing(500)
    model: collections.deque[tuple[int, bytes]] = collections.deque()  # (seq, record)
    tokens: list[tuple[Any, int]] = []  # (token, end seq)
    overwritten = 0
    for seq in range(5000):
        action = rng.random()
        if action < 0.6:
            record = rec(seq, rng.randint(1, 120))
            ring.append(record)
            model.append((seq, record))
            while sum(len(r) for _, r in model) > 500:
                model.popleft()
                overwritten += 1
        elif action < 0.8:
            chunk = ring.peek_chunk(rng.randint(1, 400))
            expected = [r for _, r in model][: len(chunk)]
            assert chunk.records == expected
            end = model[len(chunk) - 1][0] if len(chunk) else -1
            tokens.append((chunk.token, end))
        elif tokens:
            token, end = tokens.pop(rng.randrange(len(tokens)))
            removed = 0
            while model and model[0][0] <= end:
                model.popleft()
                removed += 1
            assert ring.confirm(token) == removed
        assert len(ring) == len(model)
        assert ring.nbytes == sum(len(r) for _, r in model)
    assert ring.stats().overwritten_records == overwritten


@independent
def test_cache_size_kb_below_one_is_refused() -> None:
    assert cache_capacity_bytes(1) == 1000
    assert cache_capacity_bytes(2.5) == 2500
    for bad in (0, 0.5, 0.999):
        with pytest.raises(ValueError, match="cache_size_kb"):
            cache_capacity_bytes(bad)
