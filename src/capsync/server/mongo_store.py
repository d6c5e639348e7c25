"""Compatibility face: the MongoDB store is :mod:`capsync.server.stores.mongo`."""

from capsync.server.stores.mongo import DEFAULT_DATABASE, MongoStore, blob_document

__all__ = ["DEFAULT_DATABASE", "MongoStore", "blob_document"]
