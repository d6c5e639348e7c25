"""List and export what the ingest server stored (the Python side of ``capsync data``).

>>> lab = ItemFilter(kind="tabular", tags=("lab",))
>>> for item in list_items("/srv/capsync", lab):  # doctest: +SKIP
...     print(item["time_requested"], item["data"])

Records come from the batch log in the data dir, or from MongoDB for a
server run with ``--mongo-uri`` (pass ``mongo_uri=``/``mongo_database=``; see
:func:`open_store`); either way the results are the same, and payload files are
read from the data dir.

Each item is a dict. Every item has ``id``, ``kind`` (``tabular``, ``binary`` or
``file``), ``part_id``, ``component_type``, ``component_name``,
``method_name``, ``tags``, ``time_requested``/``time_received`` (ISO-8601 UTC
with nanoseconds, None when unset), the same as ``*_ns`` integers,
``mime_type``, ``method_parameters`` and ``upload_id``. A tabular item adds
``data`` (the reading); a binary or file item adds ``file_extension``,
``file_name``, ``dataset_ids``, ``size_bytes``, ``sha256``, ``annotations`` and
``path`` (the stored payload; in an export, relative to the export folder).

Time filters compare ``time_requested``: when the reading was requested on the
machine, for tabular and binary data; for files, when the file was last
modified (its upload's ``file_modify_time``, else ``file_create_time``, else
when it arrived).
"""

from __future__ import annotations

import csv
import heapq
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TextIO

from capsync._time import format_time
from capsync._time import parse_time as parse_time  # its home is _time; kept importable here
from capsync.mongo.client import require_pymongo
from capsync.server.blobs import UnsafePathError, check_extension, payload_folder
from capsync.server.stores.base import (
    DEFAULT_MONGO_DATABASE,
    BlobRecord,
    ItemFilter,
    Record,
    Store,
    TabularRecord,
)
from capsync.server.stores.local import LocalStore

Format = Literal["jsonl", "csv"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv")

CSV_COLUMNS = (
    "id",
    "kind",
    "part_id",
    "component_type",
    "component_name",
    "method_name",
    "time_requested",
    "time_received",
    "time_requested_ns",
    "time_received_ns",
    "mime_type",
    "tags",
    "data",
    "file_name",
    "file_extension",
    "size_bytes",
    "sha256",
    "path",
    "dataset_ids",
    "annotations",
    "method_parameters",
    "upload_id",
)

log = logging.getLogger(__name__)
MAX_NAME_BYTES = 255  # NAME_MAX of the usual filesystems: an exported name is cut to fit


# --- times -------------------------------------------------------------------------------


# --- items -------------------------------------------------------------------------------


def record_to_item(record: Record, data_dir: Path | None = None) -> dict[str, Any]:
    """One stored record as a plain dict (see the module docstring)."""
    item: dict[str, Any] = {
        "id": record.id,
        "kind": record.kind,
        "part_id": record.part_id,
        "component_type": record.component_type,
        "component_name": record.component_name,
        "method_name": record.method_name,
        "tags": list(record.tags),
        "time_requested": format_time(record.time_requested_ns),
        "time_received": format_time(record.time_received_ns),
        "time_requested_ns": record.time_requested_ns,
        "time_received_ns": record.time_received_ns,
        "mime_type": record.mime_type,
    }
    if isinstance(record, TabularRecord):
        item["data"] = record.data
    else:
        in_gridfs = record.path.startswith("gridfs:")  # serve --blobs gridfs: no local file
        stored = (
            record.path
            if data_dir is None or in_gridfs
            else str(data_dir.joinpath(*record.path.split("/")))
        )
        item.update(
            file_name=record.file_name,
            file_extension=record.file_extension,
            size_bytes=record.size_bytes,
            sha256=record.sha256,
            path=stored,
            dataset_ids=list(record.dataset_ids),
            annotations=record.annotations,
        )
    item["method_parameters"] = record.method_parameters
    item["upload_id"] = record.upload_id
    return item


def open_store(
    data_dir: str | os.PathLike[str],
    mongo_uri: str | None = None,
    *,
    mongo_database: str = DEFAULT_MONGO_DATABASE,
) -> Store:
    """The store a server with this ``--data`` (and ``--mongo-uri``) wrote, opened to read.

    Without ``mongo_uri``, the SQLite database in ``data_dir``; with it, the
    MongoDB database ``mongo_database``. Raises :class:`FileNotFoundError` when
    there is no capsync data there and
    :class:`~capsync.server.stores.base.StoreUnavailable` when MongoDB cannot be reached.
    """
    if mongo_uri is not None:
        require_pymongo()
        from capsync.server.stores.mongo import MongoStore

        return MongoStore(mongo_uri, mongo_database, create=False)
    try:
        return LocalStore(data_dir, create=False)
    except FileNotFoundError:
        raise FileNotFoundError(
            2, "no capsync data here (no capsync.db): is this the serve --data folder?",
            str(data_dir),
        ) from None  # fmt: skip


def iter_records(
    data_dir: str | os.PathLike[str],
    item_filter: ItemFilter | None = None,
    *,
    mongo_uri: str | None = None,
    mongo_database: str = DEFAULT_MONGO_DATABASE,
) -> Iterator[Record]:
    """The stored records that match, oldest first (read through the query layer,
    :class:`capsync.query.DataQuery`, like the gRPC data API)."""
    from capsync.query import DataFilter, DataQuery
    from capsync.server.store_source import StoreSource

    f = item_filter or ItemFilter()
    wanted_tags = set(f.tags)
    data_filter = DataFilter(
        part_id=f.part_id,
        component_name=f.component,
        component_type=f.component_type,
        method_name=f.method,
        tags=f.tags[:1],  # any-of one tag; all of them are checked below
        start_ns=f.since_ns,
        end_ns=f.until_ns,
    )
    store = open_store(data_dir, mongo_uri, mongo_database=mongo_database)
    source = StoreSource(store, owns_store=True)
    with DataQuery(source, data_dir, owns_source=True) as query:
        streams: list[Iterator[Record]] = []
        if f.kind in (None, "tabular"):
            streams.append(query.iter_tabular(data_filter))
        if f.kind != "tabular":
            blobs = [b for b in query.iter_blobs(data_filter) if f.kind in (None, b.kind)]
            blobs.sort(key=lambda r: (r.time_requested_ns, r.kind, r.id))
            streams.append(iter(blobs))
        merged = heapq.merge(*streams, key=lambda r: (r.time_requested_ns, r.kind, r.id))
        for record in merged:
            if wanted_tags <= set(record.tags):
                yield record


def list_items(
    data_dir: str | os.PathLike[str],
    item_filter: ItemFilter | None = None,
    *,
    mongo_uri: str | None = None,
    mongo_database: str = DEFAULT_MONGO_DATABASE,
) -> Iterator[dict[str, Any]]:
    """The stored items that match, oldest ``time_requested`` first, as dicts whose
    ``path`` is the absolute path of the stored payload.

    Records come from the SQLite database in ``data_dir``, or from MongoDB when
    ``mongo_uri`` is given (payload files are in ``data_dir`` either way)."""
    root = Path(data_dir).absolute()
    records = iter_records(root, item_filter, mongo_uri=mongo_uri, mongo_database=mongo_database)
    for record in records:
        yield record_to_item(record, root)


# --- output ------------------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def write_items(items: Iterable[dict[str, Any]], stream: TextIO, format: Format = "jsonl") -> int:
    """Write items as JSON lines or CSV (nested values as JSON text); returns the count."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    count = 0
    if format == "jsonl":
        for item in items:
            stream.write(_json(item) + "\n")
            count += 1
        return count
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        row = []
        for column in CSV_COLUMNS:
            value = item.get(column)
            if value is None:
                row.append("")
            elif isinstance(value, list | dict):
                row.append(_json(value))
            else:
                row.append(str(value))
        writer.writerow(row)
        count += 1
    return count


# --- export ------------------------------------------------------------------------------


@dataclass
class ExportResult:
    """What :func:`export` wrote."""

    manifest: Path
    items: int = 0
    payloads: int = 0
    missing: list[str] = field(default_factory=list)  # ids whose payload file was gone
    failed: dict[str, str] = field(default_factory=dict)  # id -> why its copy failed


def _compact_time(ns: int) -> str:
    text = format_time(ns) or "unknown-time"
    return text.replace(":", "_")


def export_name(record: BlobRecord) -> str:
    """Where a payload goes in an export, relative to the export folder ("/"-separated).

    Binary: ``<part>/<type>/<name>/<method>/<time requested>_<id12><ext>``;
    file: ``<part>/files/<file name stem>_<id12><ext>``.
    """
    short = record.id[:12]
    try:
        extension = check_extension(record.file_extension)
        folder = payload_folder(
            record.part_id, record.component_type, record.component_name, record.method_name
        )
    except UnsafePathError:  # stored before a check existed: fall back to safe names
        extension, folder = "", ("_", "_", "_", "_")
    if record.kind == "file":
        stem = PurePosixPath(record.file_name.replace("\\", "/")).name
        if extension and stem.endswith(extension):
            stem = stem[: -len(extension)]
        name = (
            _fitted(stem, f"_{short}{extension}")
            if stem not in ("", ".", "..")
            else short + extension
        )
        return "/".join((folder[0], "files", name))
    return "/".join((*folder, f"{_compact_time(record.time_requested_ns)}_{short}{extension}"))


def _fitted(stem: str, tail: str) -> str:
    """``stem + tail``, the stem cut (on a character boundary) so the name fits in 255 bytes."""
    room = MAX_NAME_BYTES - len(tail.encode())
    cut = stem.encode()[: max(0, room)].decode("utf-8", errors="ignore")
    return cut + tail


def export(
    data_dir: str | os.PathLike[str],
    item_filter: ItemFilter | None,
    out: str | os.PathLike[str],
    format: Format = "jsonl",
    *,
    mongo_uri: str | None = None,
    mongo_database: str = DEFAULT_MONGO_DATABASE,
) -> ExportResult:
    """Copy what matches into the folder ``out``.

    Writes ``out/items.jsonl`` (or ``items.csv``) with every matching item, and
    each binary payload and file as a file with its extension (see
    :func:`export_name`); in the manifest, ``path`` is relative to ``out``.
    A payload missing from the data dir is reported (``missing``, path None),
    not fatal. ``mongo_uri``/``mongo_database``: read the records from MongoDB
    (see :func:`list_items`).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    root = Path(data_dir).absolute()
    target = Path(out)
    records = iter_records(root, item_filter, mongo_uri=mongo_uri, mongo_database=mongo_database)
    first = next(records, None)  # opens the store now: fail before mkdir
    target.mkdir(parents=True, exist_ok=True)
    result = ExportResult(manifest=target / f"items.{format}")

    gridfs_blobs: Any = None
    if mongo_uri is not None:
        require_pymongo()
        from capsync.server.gridfs_blobs import GridFsBlobs

        gridfs_blobs = GridFsBlobs(mongo_uri, mongo_database)

    def items() -> Iterator[dict[str, Any]]:
        pending = [first] if first is not None else []
        for record in _chain(pending, records):
            item = record_to_item(record)
            if isinstance(record, BlobRecord):
                item["path"] = _copy_payload(root, target, record, result, gridfs_blobs)
            result.items += 1
            yield item

    try:
        with open(result.manifest, "w", encoding="utf-8", newline="") as stream:
            write_items(items(), stream, format)
    finally:
        if gridfs_blobs is not None:
            gridfs_blobs.close()
    return result


def _chain(head: list[Record], rest: Iterator[Record]) -> Iterator[Record]:
    yield from head
    yield from rest


def _copy_payload(
    root: Path, target: Path, record: BlobRecord, result: ExportResult, gridfs_blobs: Any = None
) -> str | None:
    source = root.joinpath(*record.path.split("/"))
    name = export_name(record)
    destination = target.joinpath(*name.split("/"))
    if record.path.startswith("gridfs:"):  # a payload kept in MongoDB (serve --blobs gridfs)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            copied = gridfs_blobs is not None and gridfs_blobs.copy_to(record.path, destination)
        except OSError as exc:  # one item that cannot be written does not stop the export
            result.failed[record.id] = f"{name}: {exc.strerror or exc}"
            return None
        if not copied:
            log.warning("payload of %s is missing: %s", record.id, record.path)
            result.missing.append(record.id)
            return None
        result.payloads += 1
        return name
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    except FileNotFoundError:
        if source.exists():
            result.failed[record.id] = f"{name}: cannot write it (its folder is gone)"
        else:
            log.warning("payload of %s is missing: %s", record.id, source)
            result.missing.append(record.id)
        return None
    except OSError as exc:  # one item that cannot be written does not stop the export
        result.failed[record.id] = f"{name}: {exc.strerror or exc}"
        return None
    result.payloads += 1
    return name
