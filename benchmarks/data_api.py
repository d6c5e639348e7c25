"""Data API benchmark: paging TabularDataByFilter, and a SQL aggregate vs DuckDB on Parquet.

    python benchmarks/data_api.py [--readings 10000000] [--quick] [--page 10000]

Stores ``--readings`` 6-float readings (``{"readings": {"a".."f"}}``, one
component, one per millisecond) through the real ingest path (see :func:`fill`:
the capture encoder, ``upload_body`` as the sync client sends, the server's own
upload handler into the embedded store, in uploads of 2,500 readings), compacts
them into the query layer's Parquet (merging files as it goes), runs the next
compaction pass (nothing new: the day's files settle, as on a server once the
readings stop coming), starts ``capsync serve`` (in this process) on loopback and
measures:

* **filter paging**: every reading of the component, ``--page`` per page, following
  ``last`` (readings/s): the server's response building alone (the handler, in
  process); over loopback with a raw gRPC client that reads only each response's
  head (the server's and the wire's rate); the same client parsing each response
  with the protobuf runtime; that parse alone on responses already received (the
  client's share); and viam-sdk's ``DataClient.tabular_data_by_filter`` over the
  first ``--sdk-readings`` (it also turns every reading into a dict, in Python). The
  response building is measured both ways in the same run: **spliced** (what the
  server does: each reading's Struct and times copied from the stored upload bytes)
  against **decoded** (the previous way, and still MongoDB's: a record decoded per
  reading and re-encoded), the latter over the first ``--decoded-readings`` only;
  and the time to the first page of 50;
* **SQL aggregate**: ``SELECT component_name, avg(data.readings.a) ... GROUP BY``
  through ``DataClient.tabular_data_by_sql``, against DuckDB running the same
  query on one Parquet file of the same rows written by pyarrow (from the
  compacted files, capsync's own columns left out: the baseline), in the same run;
  the ratio is capsync's time over DuckDB's.

``--quick`` uses 200,000 readings (a minute). The full run (10M readings) fills the
store in under a minute, then spends most of its time compacting into Parquet (each
reading decoded: about 10 minutes on the loaded shared VM); it needs about 2.5 GB of
disk in a temporary folder it leaves behind. Timings are the best of ``--repeat``
runs. Nothing is asserted but that every reading was paged.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from grpclib.client import Channel
from viam.app.data_client import DataClient
from viam.utils import create_filter

from capsync import wire
from capsync.proto import data_sync_pb2
from capsync.proto.viam.app.data.v1 import data_pb2
from capsync.query import DataFilter, DataQuery, Page
from capsync.query.filters import Cursor
from capsync.server import ApiKey, ApiKeys, IngestServer
from capsync.server.blobs import BlobStore
from capsync.server.data_service import records_response, tabular_response
from capsync.server.data_sources import open_data_query
from capsync.server.records import reading_id
from capsync.server.stores.local import LocalStore
from capsync.server.sync_servicer import DataSyncServicer
from capsync.wire import frames

T0_NS = 1_764_460_800_000_000_000
FIELDS = "abcdef"
QUERY = (
    "SELECT component_name, avg(data.readings.a) AS a, max(data.readings.f) AS f, "
    "count(*) AS n FROM readings GROUP BY component_name"
)


PAGE = 10_000
METHOD = "/viam.app.data.v1.DataService/TabularDataByFilter"


def fill(data_dir: Path, readings: int, batch: int = 2_500, file_batches: int = 40) -> None:
    """Store ``readings`` the way a synced capture file reaches the server: the capture
    encoder (``RecordBuffer.append_batch``, what ``append_batch`` on a stream writes)
    frames the readings, ``upload_body`` makes each request of ``batch`` readings as the
    sync client does, and the server's own upload handler
    (``DataSyncServicer.data_capture_upload``: scan, check, store in the batch log)
    takes it, minus gRPC. A "file" is ``file_batches`` requests."""
    kernel = wire.wire()
    store = LocalStore(data_dir)
    servicer = DataSyncServicer(store, BlobStore(data_dir))
    try:
        for start in range(0, readings, batch):
            stop = min(start + batch, readings)
            metadata = data_sync_pb2.UploadMetadata(
                part_id="bench-part", component_type="rdk:component:sensor",
                component_name="imu", method_name="Readings",
                type=data_sync_pb2.DataType.DATA_TYPE_TABULAR_SENSOR,
                file_name=f"bench-{start // (batch * file_batches)}",
            )  # fmt: skip
            i = np.arange(start, stop, dtype=np.int64)
            requested = T0_NS + i * 1_000_000
            values = i[:, None] * 0.001 + np.arange(len(FIELDS), dtype=np.float64)
            buffer = kernel.RecordBuffer(1 << 20)
            buffer.append_batch(requested, requested + 1000, values, list(FIELDS), "readings")
            data = buffer.getvalue()
            body, _ = kernel.upload_body(frames.metadata_field(metadata), data, 0, len(data))
            servicer.data_capture_upload(body)
    finally:
        store.close()


def page_in_process(query: DataQuery, spliced: bool, limit: int, page_size: int = PAGE) -> int:
    """Build response bytes page after page as the handler does; return the readings paged."""
    f, seen, after = DataFilter(component_name="imu"), 0, None
    while seen < limit:
        page = Page(limit=page_size, after=after)
        if spliced:
            runs = query.tabular_runs(f, page)
            assert runs is not None
            tabular_response(runs)
            count = sum(len(positions) for _, positions in runs)
            if count:
                batch, positions = runs[-1]
                last = int(positions[-1])
                after = Cursor(int(batch.time_requested_ns[last]), reading_id(batch.id, last))
        else:
            records, after = query.tabular_page(f, page)
            records_response(records, after)
            count = len(records)
        if not count:
            break
        seen += count
    return seen


def _head(response: bytes) -> tuple[int, str]:
    """``count`` and ``last`` of a serialized response, read from the fields before its
    first ``data`` entry (the server writes the head first), the entries left unparsed."""
    read_varint = wire.wire().read_varint
    at, count, last = 0, 0, ""
    while at < len(response):
        tag, at = read_varint(response, at)
        if tag == 0x12:  # data: the head is over
            break
        if tag & 7 == 0:
            value, at = read_varint(response, at)
            count = value if tag >> 3 == 3 else count
        else:
            size, at = read_varint(response, at)
            last = response[at : at + size].decode() if tag >> 3 == 4 else last
            at += size
    return count, last


def page_raw_grpc(port: int, page: int, parse: bool, keep: list[bytes] | None = None) -> int:
    """Every reading over loopback; ``parse``: each response parsed by the protobuf runtime
    (what a client pays to see the readings), else only its head read (the server's and
    the wire's rate); ``keep`` collects the responses' bytes."""
    options = [("grpc.max_receive_message_length", 1 << 30)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        call = channel.unary_unary(METHOD, request_serializer=lambda m: m.SerializeToString())
        auth = (("key_id", "bench"), ("key", "bench-secret"))
        seen, last = 0, ""
        while True:
            request = data_pb2.TabularDataByFilterRequest(
                data_request=data_pb2.DataRequest(
                    filter=data_pb2.Filter(component_name="imu"), limit=page, last=last
                )
            )
            response = call(request, metadata=auth)
            if parse:
                parsed = data_pb2.TabularDataByFilterResponse.FromString(response)
                count, last = parsed.count, parsed.last
            else:
                count, last = _head(response)
            if keep is not None:
                keep.append(response)
            if not count:
                return seen
            seen += count


def parse_pages(pages: list[bytes]) -> int:
    """The client's share alone: parse responses already received."""
    return sum(data_pb2.TabularDataByFilterResponse.FromString(p).count for p in pages)


def best(repeat: int, action: object) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return min(times)


def baseline_parquet(query: DataQuery, path: Path) -> None:
    """One Parquet file of every reading, written by pyarrow from the query layer's
    compacted files (the same rows and columns SQL reads, without capsync's own)."""
    assert query.columnar is not None
    files, _ = query.columnar.snapshot()
    table = pa.concat_tables([pq.read_table(f) for f in files])
    keep = [name for name in table.column_names if not name.startswith("_capsync")]
    pq.write_table(table.select(keep), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 readings")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page", type=int, default=PAGE, help="readings asked for per page")
    parser.add_argument(
        "--decoded-readings",
        type=int,
        default=50_000,
        help="readings the decoded (previous) response building pages through",
    )
    parser.add_argument(
        "--sdk-readings", type=int, default=500_000, help="readings viam-sdk pages through"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="measure a store an earlier run of this size left"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the filled store (for --data-dir) after the run"
    )
    args = parser.parse_args(argv)
    readings = 200_000 if args.quick else args.readings
    page_size = args.page
    if args.data_dir is not None:  # a store an earlier run filled (and compacted)
        data_dir = args.data_dir
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="capsync-bench-data-api-"))
        if not args.keep:  # about 250 bytes a reading: 2.5 GB at 10M
            atexit.register(shutil.rmtree, data_dir, True)
        began = time.perf_counter()
        fill(data_dir, readings)
        fill_s = time.perf_counter() - began
        print(
            f"stored {readings:,} readings in {fill_s:.1f} s ({readings / fill_s:,.0f}/s; "
            f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
        )
        if args.keep:
            print(f"(the store: {data_dir}; --data-dir reuses it)")
    baseline_file = data_dir / "baseline.parquet"
    with open_data_query(data_dir) as query:
        began = time.perf_counter()
        assert query.columnar is not None
        query.columnar.compact()
        compact_s = time.perf_counter() - began
        # the server's next pass, data no longer arriving: the day's small files settle
        query.columnar.compact()
        files = len(query.columnar.snapshot()[0])
        print(
            f"compacted into Parquet in {compact_s:.1f} s, settled in "
            f"{time.perf_counter() - began - compact_s:.1f} s: {files} files "
            f"(peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)",
            flush=True,
        )
        baseline_parquet(query, baseline_file)
        decoded_n = min(readings, args.decoded_readings)
        assert page_in_process(query, True, readings, page_size) == readings
        spliced_s = best(args.repeat, lambda: page_in_process(query, True, readings, page_size))
        decoded_s = best(1, lambda: page_in_process(query, False, decoded_n, page_size))
    print("responses built in process", flush=True)

    keys = ApiKeys([ApiKey("bench", "bench-secret")])
    sdk_n = min(readings, args.sdk_readings)
    with IngestServer(data_dir, keys, listen="127.0.0.1:0", compact_interval_s=3600) as server:

        async def page_all() -> int:
            channel = Channel("127.0.0.1", server.port)
            client = DataClient(channel, {"key_id": "bench", "key": "bench-secret"})
            seen, last = 0, ""
            f = create_filter(component_name="imu")
            while seen < sdk_n:
                data, _, last = await client.tabular_data_by_filter(f, page_size, last=last)
                if not data:
                    break
                seen += len(data)
            channel.close()
            return seen

        async def first_page() -> None:
            channel = Channel("127.0.0.1", server.port)
            client = DataClient(channel, {"key_id": "bench", "key": "bench-secret"})
            await client.tabular_data_by_filter(create_filter(component_name="imu"))
            channel.close()

        async def sql() -> list[dict[str, object]]:
            channel = Channel("127.0.0.1", server.port)
            client = DataClient(channel, {"key_id": "bench", "key": "bench-secret"})
            rows = await client.tabular_data_by_sql("org", QUERY)
            channel.close()
            return rows

        port = server.port
        assert page_raw_grpc(port, page_size, parse=True) == readings
        wire_s = best(args.repeat, lambda: page_raw_grpc(port, page_size, parse=False))
        parsed_s = best(args.repeat, lambda: page_raw_grpc(port, page_size, parse=True))
        pages: list[bytes] = []
        page_raw_grpc(port, page_size, parse=False, keep=pages)
        parse_s = best(args.repeat, lambda: parse_pages(pages))
        response_bytes = sum(len(p) for p in pages)
        pages.clear()
        print("paged over loopback", flush=True)
        sdk_seen = asyncio.run(page_all())
        assert sdk_seen >= sdk_n
        paging_s = best(1, lambda: asyncio.run(page_all()))
        first_s = best(args.repeat, lambda: asyncio.run(first_page()))
        capsync_rows = asyncio.run(sql())
        sql_s = best(args.repeat, lambda: asyncio.run(sql()))

    def duckdb_baseline() -> list[tuple[object, ...]]:
        con = duckdb.connect()
        try:
            return con.execute(
                QUERY.replace("FROM readings", f"FROM read_parquet('{baseline_file}')")
            ).fetchall()
        finally:
            con.close()

    baseline_rows = duckdb_baseline()
    duck_s = best(args.repeat, duckdb_baseline)
    assert capsync_rows[0]["n"] == baseline_rows[0][3] == readings
    print()
    print(f"| {readings:,} readings, pages of {page_size:,} | value |")
    print("|---|---:|")
    spliced_rate, decoded_rate = readings / spliced_s, decoded_n / decoded_s
    print(f"| responses built, spliced (in process) | {spliced_rate:,.0f} readings/s |")
    print(
        f"| responses built, decoded (before; first {decoded_n:,}) "
        f"| {decoded_rate:,.0f} readings/s |"
    )
    print(f"| ratio spliced / decoded | {spliced_rate / decoded_rate:.1f}x |")
    print(
        f"| paging over loopback, raw gRPC client reading each response's head "
        f"| {readings / wire_s:,.0f} readings/s |"
    )
    print(
        f"| paging over loopback, raw gRPC client parsing each response "
        f"| {readings / parsed_s:,.0f} readings/s |"
    )
    print(
        f"| the client's parse alone ({response_bytes / readings:.0f} B/reading) "
        f"| {readings / parse_s:,.0f} readings/s |"
    )
    sdk_rate = sdk_seen / paging_s
    print(f"| paging, viam-sdk DataClient (first {sdk_seen:,}) | {sdk_rate:,.0f} readings/s |")
    print(f"| first page (50), viam-sdk DataClient | {first_s * 1000:.1f} ms |")
    print(f"| SQL aggregate via TabularDataBySQL | {sql_s * 1000:.1f} ms |")
    print(f"| DuckDB on one Parquet file (baseline) | {duck_s * 1000:.1f} ms |")
    print(f"| ratio capsync / DuckDB | {sql_s / duck_s:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
