"""JSON text of a protobuf string, shared by the compiled ``capsync.export._export`` (for
strings with non-ASCII bytes) and its twin ``capsync.export.frames``, so both escape and
replace invalid UTF-8 alike without the compiled module importing its twin."""

from __future__ import annotations

import json
from typing import Any


def json_string(buf: Any, start: int, stop: int) -> bytes:
    """A protobuf string as JSON text (``json.dumps(s, ensure_ascii=False)``, UTF-8)."""
    text = bytes(buf[start:stop]).decode("utf-8", "replace")
    return json.dumps(text, ensure_ascii=False).encode()
