"""How fast capsync exports: MCAP from capture files, Parquet from the store.

MCAP (``capsync convert``), on three capture folders — tabular readings only
(6-float ``Readings`` in 256 KiB files), JPEG-sized binary readings only
(64 KiB each, one file per reading), and a mix (90% of the bytes images) —
against two baselines measured in the same run on the same files:

* **copy**: ``shutil.copytree`` of the capture folder (the bytes alone);
* **mcap writer**: the ``mcap`` library's ``Writer`` fed one message at a
  time the obvious way: ``read_capture_file``, ``json_format.MessageToDict``
  + ``json.dumps`` per reading, ``CompressedImage(...).SerializeToString()``
  per image, ``add_message`` each (zstd chunks, its defaults).

Parquet (``capsync data export --format parquet``): tabular readings in the
embedded store, 99% compacted into the query layer's Parquet files and 1% still
the tail, exported the way the command does (columnar files read and rewritten,
the tail decoded), against DuckDB writing the same rows (the same columns, from
a table it holds) to Parquet with ``COPY ... (FORMAT parquet, COMPRESSION zstd)``;
and the previous way (every reading decoded from the store), in the same run.

Files are read once before timing, so every contender reads from the page
cache. Ratios are of the best wall time of each contender (``vs copy``: copy
time / capsync time, so 0.5 means half the speed of copying) and, in the
``(cpu)`` columns, of the best CPU time (user + system, all threads): on a
machine shared with other work, wall time favours the short copy, which fits
in one time slice. ``zstd alone`` is the CPU time of compressing capsync's zstd
chunks again on one thread, nothing else: a floor under the conversion's CPU
time, and ``zstd alone / copy`` that floor against the copy's CPU time (above
0.5 per core the conversion cannot reach half the copy's speed however it
encodes, unless the compression gets cheaper). Times are reported, never asserted.

    python benchmarks/export_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from capsync import native_available
from capsync.capture.reader import read_capture_file
from capsync.capture.stream import open_stream
from capsync.export.mcap_export import convert_capture_files

S = 1_000_000_000
T0 = 1_714_564_800 * S
KEYS = ("a", "b", "c", "d", "e", "f")


def _tabular(root: Path, readings: int) -> None:
    values = np.random.default_rng(1).normal(size=(readings, len(KEYS)))
    requested = T0 + np.arange(readings, dtype=np.int64) * 1_000_000
    with open_stream(
        root,
        component_type="rdk:component:sensor",
        component_name="imu",
        method_name="Readings",
        max_file_size_bytes=256 << 10,
    ) as stream:
        stream.append_batch(requested, requested + 500, values, KEYS)


def _images(root: Path, total_bytes: int, size_bytes: int = 64 << 10) -> None:
    payload = b"\xff\xd8\xff\xe0" + os.urandom(size_bytes - 4)
    with open_stream(
        root,
        component_type="rdk:component:camera",
        component_name="cam",
        method_name="ReadImage",
        mime_type="image/jpeg",
    ) as stream:
        for i in range(max(1, total_bytes // size_bytes)):
            stream.append_binary(payload, T0 + i * S, T0 + i * S + 7)


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _warm(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            path.read_bytes()


def naive_mcap(root: Path, out: Path) -> None:
    """The mcap library's writer, one message at a time, the obvious way."""
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
    from google.protobuf import json_format
    from google.protobuf.timestamp_pb2 import Timestamp
    from mcap.writer import Writer
    from mcap_protobuf.schema import register_schema

    with open(out, "wb") as stream:
        writer = Writer(stream)
        writer.start()
        channels: dict[tuple[str, str], int] = {}
        image_schema = None
        for path in sorted(root.rglob("*.capture")):
            header, records = read_capture_file(path)
            key = (header.component_name, header.method_name)
            tabular = not header.file_extension or header.file_extension == ".dat"
            if key not in channels:
                if tabular:
                    schema = writer.register_schema("reading", "jsonschema", b"{}")
                    encoding = "json"
                else:
                    if image_schema is None:
                        image_schema = register_schema(writer, CompressedImage)
                    schema, encoding = image_schema, "protobuf"
                channels[key] = writer.register_channel(f"/{key[0]}/{key[1]}", encoding, schema)
            channel = channels[key]
            for record in records:
                meta = record.metadata
                received = meta.time_received.seconds * S + meta.time_received.nanos
                requested = meta.time_requested.seconds * S + meta.time_requested.nanos
                if tabular:
                    data = json.dumps(json_format.MessageToDict(record.struct)).encode()
                else:
                    data = CompressedImage(
                        timestamp=Timestamp(seconds=received // S, nanos=received % S),
                        frame_id=header.component_name,
                        format="jpeg",
                        data=record.binary,
                    ).SerializeToString()
                writer.add_message(channel, received, data, requested)
        writer.finish()


def zstd_alone(mcap_path: Path, repeat: int) -> float:
    """Best CPU time of compressing, on one thread, the records of every zstd chunk of
    ``mcap_path`` again with the writer's parameters: the compression the output needs
    on its own, without any encoding (a floor for the conversion's CPU time)."""
    import zstandard
    from mcap.records import Chunk
    from mcap.stream_reader import StreamReader

    from capsync.export.mcap_writer import ZSTD_PARAMETERS

    raw = []
    with open(mcap_path, "rb") as stream:
        for record in StreamReader(stream, emit_chunks=True).records:
            if isinstance(record, Chunk) and record.compression == "zstd":
                raw.append(
                    zstandard.ZstdDecompressor().decompress(
                        record.data, max_output_size=record.uncompressed_size
                    )
                )
    compressor = zstandard.ZstdCompressor(compression_params=ZSTD_PARAMETERS)
    return _times(lambda: [compressor.compress(chunk) for chunk in raw], repeat)[1]


def _time(fn: Callable[[], Any], repeat: int) -> float:
    return _times(fn, repeat)[0]


def _times(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time (user + system, all threads of this process)."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
        best_wall = min(best_wall, time.perf_counter() - start)
    return best_wall, best_cpu


def bench_mcap(work: Path, quick: bool) -> list[dict[str, Any]]:
    scale = 1 if quick else 8
    cases: dict[str, Callable[[Path], None]] = {
        "tabular": lambda root: _tabular(root, 100_000 * scale),
        "images": lambda root: _images(root, (32 << 20) * scale),
        "mix": lambda root: (_tabular(root, 20_000 * scale), _images(root, (24 << 20) * scale)),
    }
    rows = []
    for name, build in cases.items():
        root = work / name
        build(root)
        _warm(root)
        nbytes = _dir_bytes(root)
        copy_to = work / f"{name}-copy"

        def copy(root: Path = root, copy_to: Path = copy_to) -> None:
            shutil.rmtree(copy_to, ignore_errors=True)
            shutil.copytree(root, copy_to)

        repeat = 3
        t_copy, c_copy = _times(copy, repeat)
        t_ours, c_ours = _times(
            lambda root=root: convert_capture_files([root], work / "ours.mcap"), repeat
        )
        c_zstd = zstd_alone(work / "ours.mcap", repeat)
        t_naive, c_naive = _times(lambda root=root: naive_mcap(root, work / "naive.mcap"), 2)
        rows.append(
            {
                "case": name,
                "MB": nbytes / 1e6,
                "copy MB/s": nbytes / 1e6 / t_copy,
                "capsync MB/s": nbytes / 1e6 / t_ours,
                "mcap writer MB/s": nbytes / 1e6 / t_naive,
                "vs copy": t_copy / t_ours,
                "vs mcap writer": t_naive / t_ours,
                "vs copy (cpu)": c_copy / c_ours,
                "vs mcap writer (cpu)": c_naive / c_ours,
                "zstd alone ms (cpu)": c_zstd * 1e3,
                "zstd alone / copy (cpu)": c_zstd / c_copy,
            }
        )
        shutil.rmtree(copy_to, ignore_errors=True)
        shutil.rmtree(root)
    return rows


def bench_parquet(work: Path, quick: bool) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa

    from capsync.export.parquet_export import export_parquet, export_query_parquet
    from capsync.server.data_sources import open_data_query
    from capsync.server.query import iter_records
    from capsync.server.stores.base import TabularRecord
    from capsync.server.stores.local import LocalStore

    readings = 200_000 if quick else 10_000_000
    tail = readings // 100  # stored after the last compaction pass: decoded by the export
    values = np.random.default_rng(2).normal(size=(readings, len(KEYS)))
    data_dir = work / "store"
    tags = ("lab",)

    def fill(store: LocalStore, start: int, stop: int) -> None:
        for first in range(start, stop, 2_500):  # a 256 KiB capture file's worth per upload
            store.record_tabular([
                TabularRecord(
                    id=f"{i:012d}", upload_id=f"u{first}", part_id="part",
                    component_type="rdk:component:sensor", component_name="imu",
                    method_name="Readings", tags=tags, time_requested_ns=T0 + i * 1000,
                    time_received_ns=T0 + i * 1000 + 500, mime_type="",
                    data={"readings": dict(zip(KEYS, values[i].tolist(), strict=True))},
                )
                for i in range(first, min(first + 2_500, stop))
            ])  # fmt: skip

    with LocalStore(data_dir) as store:
        fill(store, 0, readings - tail)
    with open_data_query(data_dir) as query:
        assert query.columnar is not None
        query.columnar.compact()
    with LocalStore(data_dir) as store:
        fill(store, readings - tail, readings)

    def ours() -> None:
        shutil.rmtree(work / "pq", ignore_errors=True)
        with open_data_query(data_dir) as query:
            assert export_query_parquet(query, None, work / "pq").rows == readings

    def decoded() -> None:
        shutil.rmtree(work / "pq-decoded", ignore_errors=True)
        assert export_parquet(iter_records(data_dir), work / "pq-decoded").rows == readings

    _warm(data_dir)
    t_ours = _time(ours, 3)
    t_decoded = _time(decoded, 1)
    columns: dict[str, Any] = {
        "time_requested": pa.array(T0 + np.arange(readings) * 1000, pa.timestamp("ns", "UTC")),
        "time_received": pa.array(T0 + np.arange(readings) * 1000 + 500, pa.timestamp("ns", "UTC")),
        "part_id": pa.array(["part"] * readings),
        "component_type": pa.array(["rdk:component:sensor"] * readings),
        "component_name": pa.array(["imu"] * readings),
        "method_name": pa.array(["Readings"] * readings),
        "tags": pa.array([["lab"]] * readings, pa.list_(pa.string())),
    }
    for index, key in enumerate(KEYS):
        columns[f"readings.{key}"] = pa.array(values[:, index])
    table = pa.table(columns)
    con = duckdb.connect()
    con.register("rows_arrow", table)
    con.execute("CREATE TABLE rows_table AS SELECT * FROM rows_arrow")
    target = work / "duck.parquet"
    t_duck = _time(
        lambda: con.execute(f"COPY rows_table TO '{target}' (FORMAT parquet, COMPRESSION zstd)"), 3
    )
    return {
        "readings": readings,
        "not compacted": tail,
        "capsync export s": t_ours,
        "decoded export (before) s": t_decoded,
        "duckdb s": t_duck,
        "ratio capsync / duckdb": t_ours / t_duck,
        "ratio before / duckdb": t_decoded / t_duck,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (seconds)")
    parser.add_argument("--only", choices=["mcap", "parquet"])
    args = parser.parse_args()
    print(f"compiled wire in use: {native_available()}")
    with tempfile.TemporaryDirectory(
        prefix="capsync-export-bench-", dir=os.environ.get("CAPSYNC_BENCH_DIR")
    ) as work:
        if args.only in (None, "mcap"):
            print("\n## MCAP conversion (capsync convert)\n")
            print(_table(bench_mcap(Path(work), args.quick)))
        if args.only in (None, "parquet"):
            print("\n## Parquet export\n")
            print(_table([bench_parquet(Path(work), args.quick)]))


if __name__ == "__main__":
    main()
