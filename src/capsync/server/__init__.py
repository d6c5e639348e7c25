"""The ingest service: the receiving end of sync (SPEC §4, §7).

A gRPC server implementing ``viam.app.datasync.v1.DataSyncService`` that lets
in only callers holding an API key, stores binary payloads and files as files
under the data dir and tabular readings in an embedded batch log (:class:`LocalStore`; or in
MongoDB: pass ``store=MongoStore(uri)``), de-duplicates re-sent uploads and
serves the standard gRPC health service::

    keys = ApiKeys([ApiKey("my-key-id", "my-secret")])
    with IngestServer("/srv/capsync", keys, listen="127.0.0.1:0") as server:
        print(server.port)
        ...

What arrived is read back with :mod:`capsync.server.query`.
"""

from __future__ import annotations

from capsync.server.app import DEFAULT_LISTEN, IngestServer, TlsConfig, parse_listen
from capsync.server.auth import ApiKey, ApiKeys, ApiKeysError
from capsync.server.query import export, list_items, open_store
from capsync.server.stores.base import (
    BlobRecord,
    ItemFilter,
    Store,
    StoreUnavailable,
    TabularBatch,
    TabularRecord,
)
from capsync.server.stores.local import LocalStore

SqliteStore = LocalStore  # the name of the embedded store before segments

__all__ = [
    "DEFAULT_LISTEN",
    "ApiKey",
    "ApiKeys",
    "ApiKeysError",
    "BlobRecord",
    "IngestServer",
    "ItemFilter",
    "LocalStore",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "TabularBatch",
    "TabularRecord",
    "TlsConfig",
    "export",
    "list_items",
    "open_store",
    "parse_listen",
]
