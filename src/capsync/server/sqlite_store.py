"""Compatibility face: the embedded store is :class:`capsync.server.stores.local.LocalStore`."""

from capsync.server.stores.local import LocalStore
from capsync.server.stores.sqlite_blobs import DB_FILE_NAME

SqliteStore = LocalStore

__all__ = ["DB_FILE_NAME", "LocalStore", "SqliteStore"]
