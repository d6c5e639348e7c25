"""The upload scanner checks strings as protobuf does: struct keys, string values and the
upload metadata's string fields must be valid UTF-8 (both implementations, one wording)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from google.protobuf.message import DecodeError

from capsync.proto import data_sync_pb2
from capsync.wire import _framing_py

encode_varint = _framing_py.encode_varint


def field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + encode_varint(len(payload)) + payload


def metadata(**strings: bytes) -> bytes:
    """An UploadMetadata body with the given string fields (raw bytes), by field name."""
    numbers = {"part_id": 1, "component_name": 3, "file_name": 7, "tags": 10, "mime_type": 13}
    out = b""
    for name, values in strings.items():
        for value in values if isinstance(values, list) else [values]:
            out += field(numbers[name] << 3 | 2, value)
    return out


def request(key: bytes = b"k", text: bytes = b"v", meta: bytes = b"") -> bytes:
    """A request with one tabular reading ``{key: {"s": text}}`` and the metadata ``meta``."""
    inner = field(0x0A, field(0x0A, b"s") + field(0x12, field(0x1A, text)))  # {"s": text}
    entry = field(0x0A, key) + field(0x12, field(0x2A, inner))
    reading = field(0x12, field(0x0A, entry))  # SensorData.struct
    return field(0x0A, meta) + field(0x12, reading)


VALID_TEXT = [
    b"",
    b"plain",
    "\u0080\u07ff".encode(),  # the ends of the 2-byte range
    "\u0800\ud7ff\ue000\uffff".encode(),  # 3 bytes, around the surrogates
    "\U00010000\U0010ffff".encode(),  # the ends of the 4-byte range
    "héllo wörld ✓ 🚀".encode(),
]
INVALID_TEXT = [
    b"\xff",
    b"\x80",  # a continuation byte alone
    b"\xc0\x80",  # overlong NUL
    b"\xc1\xbf",  # overlong
    b"\xe0\x80\x80",  # overlong 3-byte
    b"\xed\xa0\x80",  # a surrogate (U+D800)
    b"\xf0\x80\x80\x80",  # overlong 4-byte
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xe2\x82",  # cut short
    b"ok\xe2\x82",  # cut short at the end
    b"\xe2\x28\xa1",  # a bad continuation
]


@pytest.fixture
def rules_unreachable(wire_impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """For the compiled scanner, fail if it falls back to the Python rules: so what it
    accepts, it accepts on its own."""
    if wire_impl.scan_upload.__module__ == "capsync.wire._upload":
        import capsync.wire._upload as compiled

        def fail(view: Any) -> Any:
            raise AssertionError("the compiled scanner refused a body")

        monkeypatch.setattr(compiled, "walk_upload", fail)


@pytest.mark.parametrize("text", VALID_TEXT)
def test_valid_utf8_is_accepted(
    wire_impl: ModuleType, rules_unreachable: None, text: bytes
) -> None:
    for data in (
        request(text=text),
        request(key=text),
        request(meta=metadata(part_id=text, tags=[b"a", text], mime_type=text)),
    ):
        data_sync_pb2.DataCaptureUploadRequest.FromString(data)  # protobuf parses it too
        scan = wire_impl.scan_upload(data)
        assert len(scan[5]) == 1


@pytest.mark.parametrize("text", INVALID_TEXT)
def test_invalid_utf8_is_refused_naming_the_field(wire_impl: ModuleType, text: bytes) -> None:
    cases = [
        (request(text=text), "sensor_contents[0].struct: string value is not valid UTF-8"),
        (request(key=text), "sensor_contents[0].struct: struct key is not valid UTF-8"),
        (request(meta=metadata(part_id=text)), "request.metadata: part_id is not valid UTF-8"),
        (request(meta=metadata(tags=[b"a", text])), "request.metadata: tags is not valid UTF-8"),
        (request(meta=metadata(file_name=text)), "request.metadata: file_name is not valid UTF-8"),
    ]
    for data, words in cases:
        with pytest.raises(DecodeError):
            data_sync_pb2.DataCaptureUploadRequest.FromString(data)
        with pytest.raises(ValueError) as refused:
            wire_impl.scan_upload(data)
        assert str(refused.value) == words


def test_the_fallback_guard_can_fail(wire_impl: ModuleType, rules_unreachable: None) -> None:
    """With the guard on, a compiled refusal is an AssertionError (so the accepting test above
    proves the C walk accepted on its own); the twin words the refusal as usual."""
    compiled = wire_impl.scan_upload.__module__ == "capsync.wire._upload"
    with pytest.raises(AssertionError if compiled else ValueError):
        wire_impl.scan_upload(request(text=b"\xff"))
