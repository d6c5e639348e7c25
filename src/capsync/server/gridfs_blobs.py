"""Payloads in MongoDB GridFS (``capsync serve --mongo-uri URI --blobs gridfs``).

The same interface as :class:`capsync.server.blobs.BlobStore`, so several
``capsync serve`` processes on different machines share nothing but the MongoDB
deployment. A payload streams into bucket ``payloads`` under a temporary name,
hashed as it goes; :meth:`GridFsWriter.commit` renames it to
``<part>/<component_type>/<component_name>/<method>/<sha256><ext>`` (the local
layout) or drops it when that name is already there. A stored record's ``path``
is ``gridfs:<that name>``. Writes wait for the journal (the client's ``journal``).

The query layer reads and removes payloads through :class:`ServerPayloads`:
``gridfs:`` paths in GridFS, any other path as a file under the data dir (what a
server stored before it ran with ``--blobs gridfs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import gridfs
import pymongo

from capsync.mongo.client import client_options
from capsync.query.filters import NotFound
from capsync.query.payloads import LocalPayloads
from capsync.server.blobs import StoredPayload, check_extension

BUCKET = "payloads"
PREFIX = "gridfs:"


def is_gridfs_path(path: str) -> bool:
    return path.startswith(PREFIX)


class GridFsWriter:
    """One payload streaming into GridFS; used as a context manager, aborted unless committed."""

    def __init__(self, bucket: gridfs.GridFSBucket, folder: tuple[str, ...], extension: str):
        self._bucket = bucket
        self._folder = folder
        self._extension = check_extension(extension)
        self._stream = bucket.open_upload_stream(f".upload-{uuid.uuid4().hex}.tmp")
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, chunk: bytes | memoryview) -> None:
        self._stream.write(bytes(chunk))  # GridIn takes bytes, not a view
        self._hash.update(chunk)
        self._size += len(chunk)

    @property
    def size_bytes(self) -> int:
        return self._size

    def sync(self) -> None:
        """Finish the upload (durable once MongoDB acknowledged it)."""
        if not self._stream.closed:
            self._stream.close()

    def commit(self) -> StoredPayload:
        self.sync()
        digest = self._hash.hexdigest()
        name = "/".join((*self._folder, digest + self._extension))
        existing = self._bucket.find({"filename": name}, limit=1)
        if any(True for _ in existing):
            self._bucket.delete(self._stream._id)
        else:
            self._bucket.rename(self._stream._id, name)
        self._done = True
        return StoredPayload(PREFIX + name, digest, self._size)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._stream.closed:
            self._bucket.delete(self._stream._id)
        else:
            self._stream.abort()

    def __enter__(self) -> GridFsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.abort()


class GridFsBlobs:
    """Payloads in GridFS bucket ``payloads`` of ``database`` at ``uri``."""

    def __init__(self, uri: str, database: str) -> None:
        options = client_options(uri, {"appname": "capsync-serve", "journal": True})
        self._client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, **options)
        self._bucket = gridfs.GridFSBucket(self._client[database], bucket_name=BUCKET)

    def writer(self, folder: tuple[str, ...], extension: str) -> GridFsWriter:
        return GridFsWriter(self._bucket, folder, extension)

    def put(
        self, folder: tuple[str, ...], extension: str, data: bytes | memoryview
    ) -> StoredPayload:
        with self.writer(folder, extension) as writer:
            writer.write(data)
            return writer.commit()

    def copy_to(self, path: str, destination: Path) -> bool:
        """Write the payload at ``path`` (``gridfs:...``) to ``destination``; False if missing."""
        try:
            source = self._bucket.open_download_stream_by_name(path[len(PREFIX) :])
        except gridfs.errors.NoFile:
            return False
        with source, open(destination, "wb") as out:
            while chunk := source.readchunk():
                out.write(chunk)
            os.fsync(out.fileno())
        return True

    def read(self, path: str) -> bytes:
        """The payload at ``path`` (``gridfs:...``); :class:`NotFound` when it is missing."""
        try:
            with self._bucket.open_download_stream_by_name(path[len(PREFIX) :]) as source:
                return source.read()
        except gridfs.errors.NoFile:
            raise NotFound(f"payload {path} is missing") from None

    def remove(self, path: str) -> None:
        """Remove every GridFS file named by ``path`` (none left is fine)."""
        found = self._bucket.find({"filename": path[len(PREFIX) :]})
        for grid_file in list(found):
            with contextlib.suppress(gridfs.errors.NoFile):  # removed meanwhile by another server
                self._bucket.delete(grid_file._id)

    def close(self) -> None:
        self._client.close()


class ServerPayloads:
    """Payloads for the query layer: ``gridfs:`` paths in ``gridfs``, others under ``data_dir``.

    ``owns_gridfs``: :meth:`close` closes ``gridfs`` too."""

    def __init__(self, data_dir: str | os.PathLike[str], gridfs_blobs: GridFsBlobs,
                 *, owns_gridfs: bool = False) -> None:  # fmt: skip
        self._local = LocalPayloads(data_dir)
        self._gridfs = gridfs_blobs
        self._owns_gridfs = owns_gridfs

    def read(self, path: str) -> bytes:
        return self._gridfs.read(path) if is_gridfs_path(path) else self._local.read(path)

    def remove(self, path: str) -> None:
        if is_gridfs_path(path):
            self._gridfs.remove(path)
        else:
            self._local.remove(path)

    def close(self) -> None:
        if self._owns_gridfs:
            self._gridfs.close()
