"""The stores behind the ingest server, one module each, all implementing
:class:`~capsync.server.stores.base.Store`:

* :mod:`~capsync.server.stores.local`: the embedded batch log (the default);
* :mod:`~capsync.server.stores.mongo`: MongoDB (``capsync serve --mongo-uri``).
"""

from capsync.server.stores.base import (
    BlobRecord,
    ItemFilter,
    Record,
    Store,
    StoreUnavailable,
    TabularBatch,
    TabularRecord,
    matches,
)

__all__ = [
    "BlobRecord",
    "ItemFilter",
    "Record",
    "Store",
    "StoreUnavailable",
    "TabularBatch",
    "TabularRecord",
    "matches",
]
