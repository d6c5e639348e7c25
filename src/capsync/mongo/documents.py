"""capsync's MongoDB documents, in Viam's shape: one home for the robot and the server.

A tabular reading is one document with Viam's field names::

    {time_requested: Date, time_received: Date, component_name, component_type,
     method_name, data: <the SensorData struct as a document>, ...}

Dates are UTC with millisecond precision (what a BSON Date holds). The robot's
MongoDB capture (:mod:`capsync.mongo.capture`) writes :func:`reading_document`
straight from a collector's reading; the server's MongoDB store
(:mod:`capsync.server.stores.mongo`) writes :func:`tabular_document` and
:func:`blob_document` from its records, the same fields plus its own
(``part_id``, ``tags``, exact ``*_ns`` times, ...). Records are read through
small Protocols, so this module never imports server code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from bson import ObjectId

from capsync._time import bson_date
from capsync.methods import wrap_key_for

__all__ = [
    "MAX_NESTING_DEPTH",
    "blob_document",
    "date_ms",
    "reading_document",
    "struct_document",
    "tabular_document",
    "viam_fields",
]

Document = dict[str, Any]
MAX_NESTING_DEPTH = 100  # deeper readings never reach the hook: the disk encoder refuses them
date_ms = bson_date  # the name Mongo code and its tests use


def _date_or_null(ns: int) -> dt.datetime | None:
    return date_ms(ns) if ns else None


def viam_fields(
    component_type: str,
    component_name: str,
    method_name: str,
    time_requested_ns: int,
    time_received_ns: int,
    *,
    unset_time_is_null: bool = False,
) -> Document:
    """The fields every capsync reading document shares with Viam's (all but ``data``).

    ``unset_time_is_null``: a time of 0 (unset) is null instead of the epoch."""
    date = _date_or_null if unset_time_is_null else date_ms
    return {
        "time_requested": date(time_requested_ns),
        "time_received": date(time_received_ns),
        "component_name": component_name,
        "component_type": component_type,
        "method_name": method_name,
    }


# --- the robot: a collector's reading ----------------------------------------------------


def _value(value: Any, depth: int) -> Any:
    """One ``google.protobuf.Value`` as the capture file holds it, as a BSON value."""
    if type(value) is float or value is None or type(value) is str or type(value) is bool:
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)  # a Struct number is a double
    if isinstance(value, str):
        return str(value)
    if depth > MAX_NESTING_DEPTH:
        raise ValueError(f"nested deeper than {MAX_NESTING_DEPTH} levels")
    if isinstance(value, Mapping):
        return _struct(value, depth + 1)
    if isinstance(value, list | tuple):
        return [_value(item, depth + 1) for item in value]
    raise TypeError(f"a value of type {type(value).__name__} has no Struct representation")


def _struct(fields: Mapping[Any, Any], depth: int) -> Document:
    out: Document = {}
    for key, item in fields.items():
        if not isinstance(key, str):
            raise TypeError(f"key {key!r} is not a string")
        if "\0" in key:
            raise ValueError(f"key {key!r} contains a NUL character, which BSON cannot store")
        out[key] = _value(item, depth)
    return out


def struct_document(readings: Mapping[str, Any]) -> Document:
    """A reading's fields as the capture file's Struct holds them (numbers as doubles,
    tuples as arrays); raises TypeError/ValueError for what a Struct cannot hold."""
    return _struct(readings, 1)


class CollectorKeyLike(Protocol):
    """What :func:`reading_document` reads of a ``CollectorKey``."""

    @property
    def api(self) -> str: ...
    @property
    def resource_name(self) -> str: ...
    @property
    def method(self) -> str: ...


def reading_document(
    key: CollectorKeyLike, readings: Mapping[str, Any], t_req_ns: int, t_recv_ns: int
) -> Document:
    """The MongoDB capture document for one tabular reading (with a fresh ``_id``).

    ``data`` is wrapped under ``readings`` for ``Readings`` and ``docommand_output``
    for ``DoCommand``, as the capture file holds it."""
    data = struct_document(readings)
    wrap_key = wrap_key_for(key.method)
    doc: Document = {"_id": ObjectId()}
    doc.update(viam_fields(key.api, key.resource_name, key.method, t_req_ns, t_recv_ns))
    doc["data"] = {wrap_key: data} if wrap_key else data
    return doc


# --- the server: stored records ----------------------------------------------------------


class _RecordLike(Protocol):
    """The fields a stored tabular reading and a blob record share."""

    @property
    def id(self) -> str: ...
    @property
    def upload_id(self) -> str: ...
    @property
    def part_id(self) -> str: ...
    @property
    def component_type(self) -> str: ...
    @property
    def component_name(self) -> str: ...
    @property
    def method_name(self) -> str: ...
    @property
    def method_parameters(self) -> dict[str, Any]: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def time_requested_ns(self) -> int: ...
    @property
    def time_received_ns(self) -> int: ...
    @property
    def mime_type(self) -> str: ...
    @property
    def uploaded_at_ns(self) -> int: ...


class TabularLike(_RecordLike, Protocol):
    """What :func:`tabular_document` reads (a ``TabularRecord``)."""

    @property
    def data(self) -> dict[str, Any]: ...


class BlobLike(_RecordLike, Protocol):
    """What :func:`blob_document` reads (a ``BlobRecord``)."""

    @property
    def kind(self) -> str: ...
    @property
    def file_extension(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def file_name(self) -> str: ...
    @property
    def dataset_ids(self) -> Sequence[str]: ...
    @property
    def annotations(self) -> dict[str, Any]: ...


def _stored_fields(r: _RecordLike) -> Document:
    """Viam's fields plus the server's own (exact times, source, upload)."""
    doc: Document = {
        "_id": r.id,
        "upload_id": r.upload_id,
        "part_id": r.part_id,
        "method_parameters": r.method_parameters,
        "tags": list(r.tags),
        "time_requested_ns": r.time_requested_ns,
        "time_received_ns": r.time_received_ns,
    }
    times = (r.time_requested_ns, r.time_received_ns)
    names = (r.component_type, r.component_name, r.method_name)
    doc.update(viam_fields(*names, *times, unset_time_is_null=True))
    doc["mime_type"] = r.mime_type
    return doc


def tabular_document(r: TabularLike) -> Document:
    """The server store's document for one tabular reading (``_id`` its reading id)."""
    doc = _stored_fields(r)
    doc["data"] = r.data
    doc["uploaded_at_ns"] = r.uploaded_at_ns
    return doc


def blob_document(r: BlobLike) -> Document:
    """The server store's document for one binary reading or file (``_id`` its id)."""
    doc = _stored_fields(r)
    doc.update(
        kind=r.kind,
        file_extension=r.file_extension,
        path=r.path,
        size_bytes=r.size_bytes,
        sha256=r.sha256,
        file_name=r.file_name,
        dataset_ids=list(r.dataset_ids),
        annotations=r.annotations,
        uploaded_at_ns=r.uploaded_at_ns,
    )
    return doc
