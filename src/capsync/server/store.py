"""Compatibility face: the store protocol and records now live in :mod:`capsync.server.stores`."""

from capsync.server.stores.base import (
    DEFAULT_MONGO_DATABASE,
    KINDS,
    BlobKind,
    BlobRecord,
    ItemFilter,
    Kind,
    Record,
    Store,
    StoreUnavailable,
    TabularBatch,
    TabularRecord,
)

__all__ = [
    "DEFAULT_MONGO_DATABASE",
    "KINDS",
    "BlobKind",
    "BlobRecord",
    "ItemFilter",
    "Kind",
    "Record",
    "Store",
    "StoreUnavailable",
    "TabularBatch",
    "TabularRecord",
]
