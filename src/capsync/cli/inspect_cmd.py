"""``capsync inspect PATH``: what is in a capture file, or in every capture file of a folder."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from capsync import _time
from capsync.capture.reader import CaptureFileError, read_capture_file
from capsync.cli.errors import UserError
from capsync.proto import data_sync_pb2

HELP = "show the header, record count, time range and size of capture files"


# How parse_header's problems begin: the file does not start with a capture header.
_NO_HEADER = ("file is empty", "header ")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a .capture/.prog file or a folder of them")
    parser.add_argument("--records", action="store_true", help="also print every record")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")


def capture_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".capture", ".prog"))
    if path.exists():
        return [path]
    raise UserError(f"{path}: no such file or folder")


def _ts_ns(stamp: Any) -> int:
    return _time.timestamp_ns(stamp)


def _iso(ns: int | None) -> str | None:
    return None if ns is None else _time.iso_micros(ns)


def record_dict(record: data_sync_pb2.SensorData) -> dict[str, Any]:
    out: dict[str, Any] = {
        "time_requested": _iso(_ts_ns(record.metadata.time_requested)),
        "time_received": _iso(_ts_ns(record.metadata.time_received)),
    }
    if record.metadata.mime_type:
        out["mime_type"] = data_sync_pb2.MimeType.Name(record.metadata.mime_type)
    if record.WhichOneof("data") == "binary":
        out["binary_bytes"] = len(record.binary)
    else:
        out["struct"] = json_format.MessageToDict(record.struct)
    return out


def summarize(path: Path, with_records: bool) -> Iterator[dict[str, Any]]:
    """One summary dict for the file; with_records, first one dict per record."""
    header, records = read_capture_file(path)
    count = 0
    first_ns: int | None = None
    last_ns: int | None = None
    payload_bytes = 0
    for record in records:
        count += 1
        requested = _ts_ns(record.metadata.time_requested)
        received = _ts_ns(record.metadata.time_received)
        first_ns = requested if first_ns is None else min(first_ns, requested)
        last_ns = received if last_ns is None else max(last_ns, received)
        payload_bytes += len(record.binary)
        if with_records:
            yield {"record": count - 1, "file": str(path), **record_dict(record)}
    yield {
        "file": str(path),
        "size_bytes": os.path.getsize(path),
        "component_type": header.component_type,
        "component_name": header.component_name,
        "method_name": header.method_name,
        "type": data_sync_pb2.DataType.Name(header.type),
        "file_extension": header.file_extension,
        "mime_type": header.mime_type,
        "tags": list(header.tags),
        "method_parameters": {
            key: json_format.MessageToDict(value) for key, value in header.method_parameters.items()
        },
        "records": count,
        "binary_bytes": payload_bytes,
        "first_time_requested": _iso(first_ns),
        "last_time_received": _iso(last_ns),
    }


def _print_text(item: dict[str, Any]) -> None:
    if "record" in item:
        body = item.get("struct", f"<{item.get('binary_bytes')} bytes binary>")
        print(
            f"  [{item['record']}] {item['time_requested']} -> {item['time_received']}: "
            f"{json.dumps(body, sort_keys=True)}"
        )
        return
    print(item["file"])
    print(
        f"  {item['component_type']} {item['component_name']!r} {item['method_name']} "
        f"({item['type']}, {item['file_extension'] or 'no extension'})"
    )
    if item["tags"]:
        print(f"  tags: {', '.join(item['tags'])}")
    print(f"  records: {item['records']}, size: {item['size_bytes']} bytes")
    if item["records"]:
        print(f"  time: {item['first_time_requested']} .. {item['last_time_received']}")


def run(args: argparse.Namespace) -> int:
    files = capture_files(args.path)
    if not files:
        raise UserError(f"{args.path}: no .capture or .prog files in this folder")
    failures = 0
    for path in files:
        try:
            items = list(summarize(path, args.records))
            # The summary comes last from summarize(); people read it first.
            for item in items[-1:] + items[:-1]:
                if args.json:
                    print(json.dumps(item, sort_keys=True))
                else:
                    _print_text(item)
        except CaptureFileError as exc:
            failures += 1
            if exc.problem.startswith(_NO_HEADER):  # not a corrupt record: no capture file at all
                print(
                    f"capsync: error: {path}: not a capture file ({exc.problem})", file=sys.stderr
                )
            else:
                print(f"capsync: error: {exc}", file=sys.stderr)
        except BrokenPipeError:
            raise  # the reader went away (| head): main() ends quietly
        except OSError as exc:
            failures += 1
            print(f"capsync: error: {path}: {exc.strerror or exc}", file=sys.stderr)
    return 1 if failures else 0
