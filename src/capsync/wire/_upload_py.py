"""Pure-Python twin of ``capsync.wire._upload``: the upload-body scanner (server side).

The rules and their wording live in ``_upload_checks`` (shared with the
compiled scanner, which uses them only to word a refusal); this module runs
them and hands back numpy arrays, as the compiled scanner does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from capsync.wire._upload_checks import walk_upload

__all__ = ["scan_upload"]  # the same as the compiled module's (tests/test_wire_parity.py)

UploadScan = tuple[
    int,  # metadata offset (payload of field 1), -1 when absent
    int,  # metadata length
    int,  # records_start: offset of the first sensor_contents field's tag
    int,  # records_end: offset just past the last one
    bool,  # contiguous: nothing but sensor_contents between records_start and records_end
    npt.NDArray[np.int64],  # offsets of each SensorData payload
    npt.NDArray[np.int64],  # their lengths
    npt.NDArray[np.int8],  # their kinds (0 none, 2 struct, 3 binary)
    npt.NDArray[np.int64],  # time_requested, ns since the epoch (0 when unset)
    npt.NDArray[np.int64],  # time_received, ns
]


def scan_upload(body: Any) -> UploadScan:
    """Check and index a ``DataCaptureUploadRequest`` body without decoding it.

    Raises ``ValueError`` naming what is wrong: bad framing, a wire type that does
    not match the schema, a struct nested past protobuf's depth limit, a metadata
    or reading given twice in one place, a timestamp outside int64 nanoseconds,
    a string (struct key or value, upload metadata) that is not valid UTF-8.
    Unknown fields are skipped, as protobuf does.
    """
    # Release the views even when raising: a live export would keep an mmap from closing.
    with memoryview(body) as raw, raw.cast("B") as view:
        meta_offset, meta_length, start, end, contiguous, *arrays = walk_upload(view)
    offsets, lengths, kinds, requested, received = arrays
    return (
        meta_offset,
        meta_length,
        start,
        end,
        contiguous,
        np.array(offsets, dtype=np.int64),
        np.array(lengths, dtype=np.int64),
        np.array(kinds, dtype=np.int8),
        np.array(requested, dtype=np.int64),
        np.array(received, dtype=np.int64),
    )
