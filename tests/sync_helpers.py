"""Helpers for the sync tests: backlogs of capture files, configs, and exactly-once checks.

A record is compared as a hashable key: ``("tabular", component, method,
time_requested_ns, time_received_ns, data as sorted JSON)`` or ``("binary",
component, method, time_requested_ns, sha256 of the payload)``, read the same
way from local capture files and from what the server stored.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from server_fixtures import KEY, KEY_ID, ServerProcess

import capsync
from capsync.capture.reader import read_capture_file
from capsync.proto import data_sync_pb2
from capsync.server import list_items
from capsync.server.sync_servicer import struct_to_dict

PART_ID = "part-sync-test"
BASE_NS = 1_700_000_000_000_000_000
Key = tuple[Any, ...]


def tabular_key(component: str, method: str, requested: int, received: int, data: Any) -> Key:
    return ("tabular", component, method, requested, received, json.dumps(data, sort_keys=True))


def binary_key(component: str, method: str, requested: int, sha256: str) -> Key:
    return ("binary", component, method, requested, sha256)


def write_tabular(
    capture_dir: Path, name: str, records: int, *, start_ns: int = BASE_NS, tags: Iterable[str] = ()
) -> Path:
    """One completed tabular capture file of ``records`` readings; returns its path."""
    stream = capsync.open_stream(
        capture_dir,
        component_type="rdk:component:sensor",
        component_name=name,
        method_name="Readings",
        tags=list(tags),
        max_file_size_bytes=1 << 40,
    )
    with stream:
        for i in range(records):
            ns = start_ns + i * 1000
            stream.append({"i": i, "x": i * 0.25 + 0.1, "name": name}, ns, ns + 7)
        path = stream.flush_to_capture()
    assert path is not None
    return path


def write_binary(
    capture_dir: Path, name: str, payload: bytes, *, requested_ns: int = BASE_NS
) -> Path:
    """One binary capture file (ReadImage, JPEG) holding ``payload``; returns its path."""
    stream = capsync.open_stream(
        capture_dir,
        component_type="rdk:component:camera",
        component_name=name,
        method_name="ReadImage",
        mime_type="image/jpeg",
    )
    before = set(capture_files(capture_dir))
    with stream:
        stream.append_binary(payload, requested_ns, requested_ns + 9)
    (path,) = set(capture_files(capture_dir)) - before
    return path


def capture_files(capture_dir: Path) -> list[Path]:
    failed = capture_dir / "failed"
    return sorted(p for p in capture_dir.rglob("*.capture") if failed not in p.parents)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def file_keys(path: Path) -> list[Key]:
    """The record keys of one capture file, read with the reference reader."""
    header, records = read_capture_file(path)
    keys: list[Key] = []
    for record in records:
        requested = _ns(record.metadata.time_requested)
        if header.type == data_sync_pb2.DataType.DATA_TYPE_TABULAR_SENSOR:
            received = _ns(record.metadata.time_received)
            keys.append(
                tabular_key(
                    header.component_name,
                    header.method_name,
                    requested,
                    received,
                    struct_to_dict(record.struct),
                )
            )
        else:
            sha = hashlib.sha256(record.binary).hexdigest()
            keys.append(binary_key(header.component_name, header.method_name, requested, sha))
    return keys


def local_keys(paths: Iterable[Path]) -> collections.Counter[Key]:
    counter: collections.Counter[Key] = collections.Counter()
    for path in paths:
        counter.update(file_keys(path))
    return counter


def server_keys(data_dir: Path) -> collections.Counter[Key]:
    """The record keys the server stored (files excluded)."""
    counter: collections.Counter[Key] = collections.Counter()
    if not (data_dir / "capsync.db").exists():
        return counter
    for item in list_items(data_dir):
        if item["kind"] == "tabular":
            counter[
                tabular_key(
                    item["component_name"],
                    item["method_name"],
                    item["time_requested_ns"],
                    item["time_received_ns"],
                    item["data"],
                )
            ] += 1
        elif item["kind"] == "binary":
            sha = hashlib.sha256(Path(item["path"]).read_bytes()).hexdigest()
            assert sha == item["sha256"]
            counter[
                binary_key(
                    item["component_name"], item["method_name"], item["time_requested_ns"], sha
                )
            ] += 1
    return counter


def server_items(data_dir: Path) -> list[dict[str, Any]]:
    if not (data_dir / "capsync.db").exists():
        return []
    return list(list_items(data_dir))


def _ns(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


def machine_config(
    capture_dir: Path,
    server: ServerProcess | None = None,
    *,
    address: str | None = None,
    key_id: str = KEY_ID,
    key: str = KEY,
    insecure: bool = True,
    ca_file: Path | None = None,
    max_backoff_s: float = 0.5,
    components: list[dict[str, Any]] | None = None,
    **data_manager: Any,
) -> dict[str, Any]:
    """A machine config syncing ``capture_dir`` to ``server`` (plaintext unless told)."""
    sync: dict[str, Any] = {
        "address": address or (server.address if server is not None else "127.0.0.1:1"),
        "api_key_id": key_id,
        "api_key": key,
        "part_id": PART_ID,
        "insecure": insecure,
        "max_backoff_s": max_backoff_s,
    }
    if ca_file is not None:
        sync["ca_file"] = str(ca_file)
    attributes = {"capture_dir": str(capture_dir), "maximum_num_sync_threads": 2}
    attributes.update(data_manager)
    return {
        "components": components or [],
        "services": [{"name": "dm", "type": "data_manager", "attributes": attributes}],
        "sync": sync,
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config))
    return path


def wait_for(condition: Any, timeout_s: float = 10.0, interval_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return bool(condition())


def make_old(path: Path, age_s: float = 3600.0) -> None:
    then = time.time() - age_s
    os.utime(path, (then, then))
