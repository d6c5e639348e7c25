"""``capsync data sql|mql|tag|untag|dataset``: the data API's powers on the command line.

They go through the same query layer as ``capsync serve``'s gRPC data API
(:class:`capsync.query.DataQuery`), straight on the ``--data`` folder (and
``--mongo-uri``), so they work with the server running or not::

    capsync data sql --data /srv/capsync "SELECT count(*) AS n FROM readings"
    capsync data tag --data /srv/capsync --id 3f1c... good
    capsync data dataset --data /srv/capsync create pets
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from capsync.cli.errors import UserError, parse_flag

if TYPE_CHECKING:
    from capsync.query import DataQuery

ACTIONS = ("sql", "mql", "tag", "untag", "dataset")


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="the serve --data folder")
    parser.add_argument("--mongo-uri", metavar="URI", help="the serve --mongo-uri, if any")
    parser.add_argument("--mongo-database", default="capsync", metavar="NAME",
                        help="the serve --mongo-database (default: capsync)")  # fmt: skip


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", action="append", default=[], dest="ids", metavar="BINARY_ID",
                        help="a binary data id (repeat for several)")  # fmt: skip
    parser.add_argument("--part", metavar="ID", help="or: every binary of this part id ...")
    parser.add_argument("--component", metavar="NAME", help="... of this component name ...")
    parser.add_argument("--method", metavar="NAME", help="... captured by this method")
    parser.add_argument("tags", nargs="+", metavar="TAG")


def register(actions: Any) -> None:
    """Add the sub-actions to ``capsync data``'s subparsers."""
    sql = actions.add_parser("sql", help="run a read-only SQL query over the readings table",
                             description="run a read-only SQL SELECT over the readings table "
                             "(Viam's columns; data.readings.x reaches nested fields); prints "
                             "one JSON object per row")  # fmt: skip
    _add_source(sql)
    sql.add_argument("query", metavar="SQL")
    mql = actions.add_parser(
        "mql",
        help="run a MongoDB aggregation pipeline over the readings",
        description="run a MongoDB aggregation pipeline (a JSON list of stages) over the "
        "readings; prints one JSON object per result",
    )
    _add_source(mql)
    mql.add_argument("pipeline", metavar="JSON")
    for name, verb in (("tag", "add tags to"), ("untag", "remove tags from")):
        sub = actions.add_parser(
            name,
            help=f"{verb} binary data",
            description=f"{verb} binary data chosen by --id or by --part/--component/--method",
        )
        _add_source(sub)
        _add_selection(sub)
    dataset = actions.add_parser("dataset", help="create, list, rename, delete and fill datasets",
                                 description="datasets of binary data: create NAME | list | "
                                 "rename ID NAME | delete ID | add ID BINARY_ID... | "
                                 "remove ID BINARY_ID...")  # fmt: skip
    _add_source(dataset)
    dataset.add_argument("verb", choices=["create", "list", "rename", "delete", "add", "remove"])
    dataset.add_argument("words", nargs="*", metavar="ARG")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if not isinstance(value, str | int | float | bool | type(None)):
        return str(value)
    return value


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(_jsonable(row), ensure_ascii=False, allow_nan=True) + "\n")
    sys.stdout.flush()


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[DataQuery]:
    from capsync.query import NotFound, QueryError
    from capsync.server.data_sources import open_data_query
    from capsync.server.stores.base import StoreUnavailable

    mongo_errors: tuple[type[Exception], ...] = ()
    if args.mongo_uri is not None:
        from pymongo.errors import PyMongoError

        from capsync.mongo.client import check_uri

        parse_flag("--mongo-uri", check_uri, args.mongo_uri)
        mongo_errors = (PyMongoError,)
    read_errors: tuple[type[Exception], ...] = (sqlite3.Error, StoreUnavailable, *mongo_errors)
    try:
        with open_data_query(args.data, args.mongo_uri, mongo_database=args.mongo_database) as q:
            yield q
    except (QueryError, NotFound) as exc:
        raise UserError(str(exc), 2) from None
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: {exc.strerror}", 2) from None
    except read_errors as exc:
        raise UserError(f"cannot read the data in {args.data}: {exc}") from None


def _selected(query: DataQuery, args: argparse.Namespace) -> list[str]:
    from capsync.query import DataFilter

    if args.ids:
        return list(args.ids)
    if args.part is None and args.component is None and args.method is None:
        raise UserError("name the binaries: --id BINARY_ID, or --part/--component/--method", 2)
    return query.ids(DataFilter(part_id=args.part, component_name=args.component,
                                method_name=args.method))  # fmt: skip


def run(args: argparse.Namespace) -> int:
    with _open(args) as query:
        if args.action == "sql":
            _print_rows(query.sql(args.query))
        elif args.action == "mql":
            try:
                pipeline = json.loads(args.pipeline)
            except json.JSONDecodeError as exc:
                raise UserError(f"the pipeline is not JSON: {exc}", 2) from None
            if not isinstance(pipeline, list):
                raise UserError("the pipeline must be a JSON list of stages", 2)
            _print_rows(query.mql(pipeline))
        elif args.action in ("tag", "untag"):
            ids = _selected(query, args)
            if args.action == "tag":
                changed = query.add_tags(ids, args.tags)
                print(f"capsync data: tagged {changed} of {len(ids)} binaries", file=sys.stderr)
            else:
                changed = query.remove_tags(ids, args.tags)
                print(f"capsync data: {changed} of {len(ids)} binaries lost a tag", file=sys.stderr)
        else:
            _dataset(query, args.verb, args.words)
    return 0


_ARITY = {"create": (1, 1), "list": (0, 0), "rename": (2, 2), "delete": (1, 1),
          "add": (2, None), "remove": (2, None)}  # fmt: skip


def _dataset(query: DataQuery, verb: str, words: list[str]) -> None:
    low, high = _ARITY[verb]
    if len(words) < low or (high is not None and len(words) > high):
        usage = {"create": "NAME", "list": "", "rename": "ID NAME", "delete": "ID",
                 "add": "ID BINARY_ID...", "remove": "ID BINARY_ID..."}[verb]  # fmt: skip
        raise UserError(f"usage: capsync data dataset {verb} {usage}".rstrip(), 2)
    if verb == "create":
        print(query.datasets.create(words[0]).id)
    elif verb == "list":
        from capsync._time import format_time

        for d in query.datasets.list():
            print(
                json.dumps({"id": d.id, "name": d.name, "time_created": format_time(d.created_ns)})
            )
    elif verb == "rename":
        query.datasets.rename(words[0], words[1])
    elif verb == "delete":
        query.delete_dataset(words[0])
    elif verb == "add":
        query.add_to_dataset(words[1:], words[0])
    else:
        query.remove_from_dataset(words[1:], words[0])
