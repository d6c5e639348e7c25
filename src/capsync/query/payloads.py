"""Where the query layer reads and removes binary payloads.

A binary record's ``path`` names its payload: a file relative to the data dir
(the default, :class:`LocalPayloads`), or another store's name for it (GridFS:
``gridfs:...``, see :mod:`capsync.server.gridfs_blobs`). The query layer only
calls :meth:`Payloads.read` and :meth:`Payloads.remove`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from capsync.query.filters import NotFound

__all__ = ["LocalPayloads", "Payloads"]


class Payloads(Protocol):
    """Reads and removes payloads by a binary record's ``path``."""

    def read(self, path: str) -> bytes:
        """The payload's bytes; :class:`~capsync.query.filters.NotFound` when it is gone."""

    def remove(self, path: str) -> None:
        """Remove the payload (nothing when it is already gone)."""

    def close(self) -> None:
        """Release connections."""


class LocalPayloads:
    """Payload files under ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)

    def file(self, path: str) -> Path:
        return self.data_dir.joinpath(*path.split("/"))

    def read(self, path: str) -> bytes:
        try:
            return self.file(path).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"payload {path} is missing") from None

    def remove(self, path: str) -> None:
        self.file(path).unlink(missing_ok=True)

    def close(self) -> None:
        pass
