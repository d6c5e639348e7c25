"""Two servers sharing one data folder never append to the same segment file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from capsync.server.stores.segments import SegmentLog

pytestmark = pytest.mark.wire_independent


def test_two_writers_on_one_folder_each_read_back_what_they_appended(tmp_path: Path) -> None:
    logs = [SegmentLog(tmp_path), SegmentLog(tmp_path)]
    for log in logs:
        log.open()
    written = []
    try:
        for i in range(40):
            body = f"body {i} ".encode() * (i + 1)
            entry, sequence = logs[i % 2].append(hashlib.sha256(body).hexdigest(), body, i)
            logs[i % 2].sync(sequence)
            written.append((entry, body))
        assert len({entry.segment for entry, _ in written}) == 2  # one segment per writer
        for entry, body in written:
            assert logs[0].read(entry.segment, entry.offset, entry.length) == body
    finally:
        for log in logs:
            log.close()
    again = SegmentLog(tmp_path)
    again.open()  # a restart keeps every whole entry
    try:
        for entry, body in written:
            assert again.read(entry.segment, entry.offset, entry.length) == body
    finally:
        again.close()
