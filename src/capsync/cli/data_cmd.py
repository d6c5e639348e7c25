"""``capsync data list|export``: what the ingest server received (and, through
:mod:`capsync.cli.data_api_cmd`, ``sql``, ``mql``, ``tag``, ``untag``, ``dataset``).

``list`` writes the matching items (JSON lines or CSV) to stdout or ``--out``;
``export`` copies them into the folder ``--out``: a manifest
(``items.jsonl``/``items.csv``) plus every binary payload and file with its
extension. Time filters compare the time a reading was requested (for files:
last modified) and take ISO-8601 (UTC unless a zone is given) or epoch seconds.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from capsync.cli._common import build_filter, report_export
from capsync.cli.errors import UserError, check_folder

HELP = "list, export, query (SQL, MQL), tag and group into datasets what the server received"


def _add_common(parser: argparse.ArgumentParser, *, out_help: str, out_required: bool) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="the serve --data folder")
    parser.add_argument(
        "--mongo-uri",
        metavar="URI",
        help="read the records from MongoDB, as stored by serve --mongo-uri (payload files "
        "are still read from DIR)",
    )
    parser.add_argument(
        "--mongo-database",
        default="capsync",
        metavar="NAME",
        help="the serve --mongo-database (default: capsync)",
    )
    parser.add_argument("--part", metavar="ID", help="only this machine part id")
    parser.add_argument("--component", metavar="NAME", help="only this component name")
    parser.add_argument(
        "--component-type", metavar="TYPE", help="only this component type (rdk:component:camera)"
    )
    parser.add_argument("--method", metavar="NAME", help="only this capture method")
    parser.add_argument(
        "--type", dest="kind", choices=["tabular", "binary", "file"], help="only this kind"
    )
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="only items with this tag (repeat: all must be present)",
    )
    parser.add_argument(
        "--since", metavar="TIME", help="requested at or after TIME (ISO-8601 or epoch s)"
    )
    parser.add_argument("--until", metavar="TIME", help="requested before TIME")
    parser.add_argument(
        "--format",
        choices=["jsonl", "csv", "mcap", "parquet"],
        default="jsonl",
        help="default: jsonl; export only: mcap (--out FILE, for Foxglove), parquet (tabular)",
    )
    parser.add_argument("--out", metavar="PATH", required=out_required, help=out_help)


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    list_parser = actions.add_parser(
        "list", help="print the matching items", description="print the matching items"
    )
    _add_common(list_parser, out_help="write to this file instead of stdout", out_required=False)
    export_parser = actions.add_parser(
        "export",
        help="copy the matching items and payload files into a folder",
        description="copy the matching items (manifest items.jsonl/items.csv) and every "
        "binary payload and file, with its extension, into the folder --out",
    )
    _add_common(export_parser, out_help="folder to export into", out_required=True)
    export_parser.add_argument(
        "--dataset", metavar="ID", help="export a dataset's images and dataset.jsonl (training)"
    )
    from capsync.cli import data_api_cmd

    data_api_cmd.register(actions)


def run(args: argparse.Namespace) -> int:
    from capsync.cli import data_api_cmd, data_export_cmd

    if args.action in data_api_cmd.ACTIONS:
        return data_api_cmd.run(args)
    from capsync.server import query
    from capsync.server.stores.base import StoreUnavailable

    if args.format in data_export_cmd.FORMATS and args.action != "export":
        raise UserError(f"--format {args.format} is for data export", 2)
    check_folder("--data", args.data)
    if args.action == "export" and args.format != "mcap":  # mcap's --out may name a file
        check_folder("--out", args.out)
    item_filter = build_filter(args)
    source = {"mongo_uri": args.mongo_uri, "mongo_database": args.mongo_database}
    mongo_errors: tuple[type[Exception], ...] = ()
    if args.mongo_uri is not None:
        from capsync.mongo.client import MissingExtraError, check_uri, short_error

        try:
            check_uri(args.mongo_uri)
        except (ValueError, MissingExtraError) as exc:
            raise UserError(f"--mongo-uri: {exc}", 2) from None
        from pymongo.errors import PyMongoError

        mongo_errors = (PyMongoError,)
    try:
        if data_export_cmd.wants(args):
            return data_export_cmd.run(args)
        if args.action == "export":
            result = query.export(args.data, item_filter, args.out, args.format, **source)
            return report_export(
                result.failed,
                len(result.missing),
                "payload files",
                f"exported {result.items} items ({result.payloads} payload files) to {args.out}",
            )
        items = query.list_items(args.data, item_filter, **source)
        if args.out is None or args.out == "-":
            count = query.write_items(items, sys.stdout, args.format)
            sys.stdout.flush()
        else:
            with open(args.out, "w", encoding="utf-8", newline="") as stream:
                count = query.write_items(items, stream, args.format)
        if not count:  # an empty output alone looks like a failure
            print("capsync data: no items match", file=sys.stderr)
    except BrokenPipeError:
        # The reader went away (`capsync data list | head`): stop quietly, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: {exc.strerror}") from None
    except sqlite3.Error as exc:
        raise UserError(f"cannot read the capsync database in {args.data}: {exc}") from None
    except StoreUnavailable as exc:
        raise UserError(str(exc)) from None
    except mongo_errors as exc:
        raise UserError(f"MongoDB: {short_error(exc)}") from None
    except OSError as exc:
        raise UserError(f"{exc.filename or args.out}: {exc.strerror or exc}") from None
    return 0
