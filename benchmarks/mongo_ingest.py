"""MongoDB store ingest against the database's own limit, in the same run.

Builds tabular batches as the server sees them (6-float readings, checked and
indexed by the wire scanner, as ``DataCaptureUpload`` bodies of ~256 KiB), then:

* **capsync**: ``MongoStore.record_batch`` of each batch (decode, build Viam-shaped
  documents, ``insert_many``, the batch document for exactly-once);
* **pymongo**: ``insert_many(ordered=False)`` of the very same documents, built
  beforehand (not timed), into a fresh collection with the same indexes: what the
  database takes at best.

Prints readings/s of both and capsync's share of the pymongo figure. Timings are
reported, never asserted.

    python benchmarks/mongo_ingest.py [--readings 200000] [--quick]

MongoDB: ``MONGO_URI``, else SecantusDB started like the tests do
(``tests/mongo_fixtures.py``: installed into ``.venv-secantus`` on first use).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pymongo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from capsync import wire  # noqa: E402
from capsync.mongo.documents import tabular_document  # noqa: E402
from capsync.proto import data_sync_pb2  # noqa: E402
from capsync.server.records import decode_batch, tabular_batch  # noqa: E402
from capsync.server.stores.mongo import MongoStore  # noqa: E402
from capsync.server.stores.mongo_docs import INDEXES, TABULAR_COLLECTION  # noqa: E402

T0_NS = 1_763_700_000_000_000_000
KEYS = ("x", "y", "z", "roll", "pitch", "yaw")
PER_BATCH = 1500  # ~256 KiB bodies of 6-float readings


def batches(total: int) -> list:
    kernels = wire.wire()
    out = []
    for b in range(0, total, PER_BATCH):
        request = data_sync_pb2.DataCaptureUploadRequest()
        metadata = request.metadata
        metadata.part_id, metadata.type = "part-bench", 2
        metadata.component_type, metadata.component_name = "rdk:component:movement_sensor", "imu"
        metadata.method_name, metadata.file_name = "Readings", f"f{b}"
        for i in range(b, min(total, b + PER_BATCH)):
            reading = request.sensor_contents.add()
            ns = T0_NS + i * 1_000_000
            reading.metadata.time_requested.FromNanoseconds(ns)
            reading.metadata.time_received.FromNanoseconds(ns + 1000)
            reading.struct.update({"readings": {k: i * 0.001 + j for j, k in enumerate(KEYS)}})
        body = request.SerializeToString()
        out.append(tabular_batch(body, kernels.scan_upload(body), metadata, time.time_ns()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="30,000 readings")
    args = parser.parse_args(argv)
    total = 30_000 if args.quick else args.readings
    server = None
    uri = os.environ.get("MONGO_URI")
    if not uri:
        from mongo_fixtures import new_server

        server = new_server(Path(tempfile.mkdtemp(prefix="capsync-mongo-bench-"))).start()
        uri = server.uri
    try:
        work = batches(total)
        database = f"bench_{uuid.uuid4().hex[:8]}"
        docs = [
            [tabular_document(r) for r in decode_batch(b.body, b.id, b.uploaded_at_ns)]
            for b in work
        ]
        client: pymongo.MongoClient = pymongo.MongoClient(uri, journal=True)
        for name, keys in INDEXES[TABULAR_COLLECTION]:  # the same indexes as capsync's
            client[database]["plain"].create_index(keys, name=name)
        started = time.perf_counter()
        for chunk in docs:
            client[database]["plain"].insert_many(chunk, ordered=False)
        plain_s = time.perf_counter() - started
        with MongoStore(uri, database) as store:
            store.ensure_indexes()
            started = time.perf_counter()
            for batch in work:
                store.record_batch(batch)
            capsync_s = time.perf_counter() - started
            stored = client[database]["tabular"].count_documents({})
        client.drop_database(database)
        client.close()
    finally:
        if server is not None:
            server.stop()
    plain = total / plain_s
    ours = total / capsync_s
    where = "MONGO_URI" if server is None else "SecantusDB"
    flavour = "compiled" if wire.native_available() else "pure-Python"
    print(f"\n### MongoDB ingest, {total:,} tabular readings in {len(work)} batches "
          f"({where}, {flavour} wire)\n")  # fmt: skip
    print("| path | readings/s | share of pymongo insert_many |")
    print("|---|---:|---:|")
    print(f"| pymongo insert_many of the same documents | {plain:,.0f} | 100% |")
    print(f"| capsync MongoStore.record_batch | {ours:,.0f} | {ours / plain:.0%} |")
    if stored != total:
        print(f"stored {stored:,} readings, expected {total:,}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
