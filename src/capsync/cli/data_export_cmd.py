"""``capsync data export`` into MCAP, Parquet or a training dataset (called from data_cmd).

* ``--format mcap --out FILE``: the matching tabular and binary records as one
  MCAP file (see :mod:`capsync.export.mcap_export`);
* ``--format parquet --out DIR``: the matching tabular readings as Parquet
  files (see :mod:`capsync.export.parquet_export`);
* ``--dataset ID --out DIR``: the images of a dataset and ``dataset.jsonl``
  (see :mod:`capsync.export.dataset`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from capsync.cli._common import report_export
from capsync.cli.errors import UserError

FORMATS = ("mcap", "parquet")


def wants(args: argparse.Namespace) -> bool:
    """True when ``data export`` is asked for something this module writes."""
    return args.action == "export" and (
        args.format in FORMATS or getattr(args, "dataset", None) is not None
    )


def export_dataset(
    data_dir: str,
    dataset_id: str,
    out: str,
    *,
    mongo_uri: str | None = None,
    mongo_database: str = "capsync",
) -> int:
    from capsync.export.dataset import export_dataset as write_dataset
    from capsync.server.query import open_store

    with open_store(data_dir, mongo_uri, mongo_database=mongo_database) as store:
        result = write_dataset(store, dataset_id, data_dir, out)
    return report_export(
        result.failed,
        len(result.missing),
        "image files",
        f"exported dataset {dataset_id}: {result.images} images to {result.dataset_file}",
    )


def run(args: argparse.Namespace) -> int:
    from capsync.cli._common import build_filter
    from capsync.server.query import iter_records

    if args.format not in FORMATS and args.dataset is None:
        raise UserError(f"--format {args.format} is not written here", 2)
    if getattr(args, "dataset", None) is not None:
        return export_dataset(
            args.data,
            args.dataset,
            args.out,
            mongo_uri=args.mongo_uri,
            mongo_database=args.mongo_database,
        )
    item_filter = build_filter(args)
    if args.format == "parquet" and args.kind not in (None, "tabular"):
        raise UserError("--format parquet: only tabular readings go to Parquet (--type tabular)", 2)
    if args.format == "parquet":
        from capsync.export.parquet_export import export_query_parquet
        from capsync.server.data_sources import open_data_query

        with open_data_query(
            args.data, args.mongo_uri, mongo_database=args.mongo_database
        ) as query:
            result = export_query_parquet(query, item_filter, args.out)
        print(
            f"capsync data: exported {result.rows} readings to {len(result.files)} Parquet "
            f"files under {args.out}",
            file=sys.stderr,
        )
        return 0
    records = iter_records(
        args.data, item_filter, mongo_uri=args.mongo_uri, mongo_database=args.mongo_database
    )
    from capsync.export.mcap_export import export_records

    out = Path(args.out)
    if out.is_dir():
        out = out / "export.mcap"
    partial = out.with_name(out.name + ".partial")
    try:
        counts = export_records(records, args.data, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    for reason in counts.skipped:
        print(f"capsync data: skipped {reason}", file=sys.stderr)
    print(
        f"capsync data: wrote {counts.messages} messages on {counts.channels} channels to {out}",
        file=sys.stderr,
    )
    return 0
