"""MongoDB aggregation pipelines over the readings, translated to SQL for DuckDB.

Supported stages: ``$match`` (implicit equality, ``$eq $ne $gt $gte $lt $lte
$in $nin $exists``, ``$and $or $nor``), ``$project`` (inclusion of fields and
dotted paths, exclusion of ``_id``, renaming with ``"$path"``), ``$group``
(``_id`` a path, null or a document of paths; ``$sum $avg $min $max $count
$first $last``), ``$sort``, ``$limit``, ``$skip`` and ``$count``. Each stage
wraps the previous one as a subquery. ``$out`` and ``$merge`` are refused
(queries are read-only); any other stage is refused naming it. A source with an
``aggregate`` method (the MongoDB store) runs and checks the pipeline itself
(:mod:`capsync.server.stores.mongo_aggregate`): every stage MongoDB has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from capsync.query.filters import QueryError

SUPPORTED = ("$match", "$project", "$group", "$sort", "$limit", "$skip", "$count")
WRITING = ("$out", "$merge")
_COMPARE = {"$eq": "=", "$ne": "IS DISTINCT FROM", "$gt": ">", "$gte": ">=", "$lt": "<",
            "$lte": "<="}  # fmt: skip
_ACCUMULATORS = {"$sum": "sum", "$avg": "avg", "$min": "min", "$max": "max", "$first": "first",
                 "$last": "last"}  # fmt: skip
_LIST_COLUMNS = ("tags",)


def check_pipeline(pipeline: Sequence[Any]) -> None:
    """Refuse a pipeline that is not a list of one-key stage documents we can run."""
    for index, stage in enumerate(pipeline):
        if not isinstance(stage, dict) or len(stage) != 1:
            raise QueryError(f"MQL: stage {index} must be a document with one $stage key")
        (name,) = stage
        if name in WRITING:
            raise QueryError(f"MQL: {name} is not allowed: queries are read-only")
        if name not in SUPPORTED:
            raise QueryError(
                f"MQL: stage {name} is not supported (supported: {', '.join(SUPPORTED)})"
            )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _path(path: str) -> str:
    """SQL for a dotted field path: ``data.readings.temp`` -> ``"data"['readings']['temp']``."""
    if not path or path.startswith("$"):
        raise QueryError(f"MQL: bad field path {path!r}")
    head, *rest = path.split(".")
    return _ident(head) + "".join("[" + _literal_text(part) + "]" for part in rest)


def _literal_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Builder:
    def __init__(self, known: Callable[[str], bool] | None) -> None:
        self.params: list[Any] = []
        self.known = known  # whether a dotted path exists in the readings table
        self.on_readings = True  # until a $group or $project reshapes the rows

    def path(self, path: str) -> str:
        """A field path; one no reading has is null, as a missing field is in MongoDB."""
        sql = _path(path)
        if self.on_readings and self.known is not None and not self.known(path):
            return "NULL"
        return sql

    def value(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, dt.datetime):
            utc = value.astimezone(dt.UTC) if value.tzinfo else value
            self.params.append(utc.replace(tzinfo=None))
            return "?::TIMESTAMP"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return f"{value}::BIGINT" if abs(value) < 2**63 else f"{float(value)!r}::DOUBLE"
        if isinstance(value, float):
            return f"'{value!r}'::DOUBLE"  # quoted so nan and inf parse too
        if isinstance(value, str):
            self.params.append(value)
            return "?::VARCHAR"
        raise QueryError(f"MQL: cannot compare with {type(value).__name__} value {value!r}")

    def expression(self, expr: Any) -> str:
        """An aggregation expression: ``"$path"`` or a literal."""
        if isinstance(expr, str) and expr.startswith("$"):
            return self.path(expr[1:])
        if isinstance(expr, dict):
            raise QueryError(f'MQL: expression {expr!r} is not supported (use "$field" paths)')
        return self.value(expr)

    def match(self, query: dict[str, Any]) -> str:
        clauses = [self._match_field(k, v) for k, v in query.items()]
        return "(" + " AND ".join(clauses) + ")" if clauses else "TRUE"

    def _match_field(self, key: str, condition: Any) -> str:
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list) or not condition:
                raise QueryError(f"MQL: {key} takes a non-empty list")
            parts = [self.match(c) for c in condition]
            if key == "$nor":
                return "NOT (" + " OR ".join(parts) + ")"
            return "(" + (" AND " if key == "$and" else " OR ").join(parts) + ")"
        if key.startswith("$"):
            raise QueryError(f"MQL: operator {key} is not supported in $match")
        column = self.path(key)
        is_list = key in _LIST_COLUMNS
        if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
            return "(" + " AND ".join(
                self._operator(column, op, arg, is_list) for op, arg in condition.items()
            ) + ")"  # fmt: skip
        return self._operator(column, "$eq", condition, is_list)

    def _operator(self, column: str, op: str, arg: Any, is_list: bool) -> str:
        if op in ("$in", "$nin"):
            if not isinstance(arg, list):
                raise QueryError(f"MQL: {op} takes a list")
            if not arg:
                return "FALSE" if op == "$in" else "TRUE"
            values = ", ".join(self.value(v) for v in arg)
            test = f"list_has_any({column}, [{values}])" if is_list else f"{column} IN ({values})"
            return test if op == "$in" else f"NOT coalesce({test}, FALSE)"
        if op == "$exists":
            return f"{column} IS {'NOT ' if arg else ''}NULL"
        if op not in _COMPARE:
            raise QueryError(f"MQL: operator {op} is not supported in $match")
        if arg is None:
            return f"{column} IS {'NOT ' if op == '$ne' else ''}NULL"
        if is_list and op in ("$eq", "$ne"):
            test = f"list_contains({column}, {self.value(arg)})"
            return test if op == "$eq" else f"NOT {test}"
        return f"{column} {_COMPARE[op]} {self.value(arg)}"

    def project(self, spec: dict[str, Any], has_id: bool) -> tuple[str, bool]:
        """The select list, and whether the result still has an ``_id`` (kept unless
        excluded, as in MongoDB; readings themselves have none)."""
        tree: dict[str, Any] = {}
        keep_id = has_id and spec.get("_id", 1) not in (0, False)
        if keep_id:
            tree["_id"] = _ident("_id")
        for key, rule in spec.items():
            if key == "_id" and rule in (0, 1, False, True):
                continue
            if rule in (0, False):
                raise QueryError("MQL: $project exclusion is supported only for _id")
            source = self.path(key) if rule in (1, True) else self.expression(rule)
            node = tree
            *parents, leaf = key.split(".")
            for part in parents:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise QueryError(f"MQL: $project path {key!r} collides with another")
                node = child
            node[leaf] = source
        if not tree:
            raise QueryError("MQL: $project must include at least one field")
        columns = ", ".join(
            f"{self._tree(value)} AS {_ident(name)}" for name, value in tree.items()
        )
        return columns, "_id" in tree

    def _tree(self, node: Any) -> str:
        if isinstance(node, str):
            return node
        return "struct_pack(" + ", ".join(
            f"{_ident(name)} := {self._tree(value)}" for name, value in node.items()
        ) + ")"  # fmt: skip

    def group(self, spec: dict[str, Any]) -> tuple[str, bool]:
        if "_id" not in spec:
            raise QueryError("MQL: $group needs an _id")
        key = spec["_id"]
        if isinstance(key, dict):
            id_sql = "struct_pack(" + ", ".join(
                f"{_ident(k)} := {self.expression(v)}" for k, v in key.items()
            ) + ")"  # fmt: skip
        else:
            id_sql = self.expression(key)
        grouped = key is not None and not (isinstance(key, dict) and not key)
        columns = [f'{id_sql} AS "_id"']
        for name, accumulator in spec.items():
            if name == "_id":
                continue
            if not isinstance(accumulator, dict) or len(accumulator) != 1:
                raise QueryError(f"MQL: $group field {name!r} must be {{$accumulator: ...}}")
            ((op, arg),) = accumulator.items()
            if op == "$count":
                columns.append(f"count(*) AS {_ident(name)}")
            elif op == "$sum":  # MongoDB sums no numbers to 0, not null
                columns.append(f"coalesce(sum({self.expression(arg)}), 0) AS {_ident(name)}")
            elif op in _ACCUMULATORS:
                columns.append(f"{_ACCUMULATORS[op]}({self.expression(arg)}) AS {_ident(name)}")
            else:
                raise QueryError(f"MQL: accumulator {op} is not supported in $group")
        return ", ".join(columns), grouped


def pipeline_to_sql(
    pipeline: Sequence[dict[str, Any]], known: Callable[[str], bool] | None = None
) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) that runs ``pipeline`` over ``readings``; ``known``
    tells which dotted paths the table has (others read as null)."""
    check_pipeline(pipeline)
    builder = _Builder(known)
    sql = "SELECT * FROM readings"
    has_id = False  # whether the current rows have an _id column
    for index, stage in enumerate(pipeline):
        ((name, spec),) = stage.items()
        inner = f"({sql}) AS s{index}"
        if name == "$match":
            if not isinstance(spec, dict):
                raise QueryError("MQL: $match takes a document")
            sql = f"SELECT * FROM {inner} WHERE {builder.match(spec)}"
        elif name == "$project":
            if not isinstance(spec, dict):
                raise QueryError("MQL: $project takes a document")
            columns, has_id = builder.project(spec, has_id)
            sql = f"SELECT {columns} FROM {inner}"
            builder.on_readings = False
        elif name == "$group":
            if not isinstance(spec, dict):
                raise QueryError("MQL: $group takes a document")
            columns, grouped = builder.group(spec)
            sql = f"SELECT {columns} FROM {inner}" + (" GROUP BY 1" if grouped else "")
            has_id = True
            builder.on_readings = False
        elif name == "$sort":
            if not isinstance(spec, dict) or not spec:
                raise QueryError("MQL: $sort takes a non-empty document")
            order = []
            for key, direction in spec.items():
                if direction not in (1, -1):
                    raise QueryError(f"MQL: $sort direction for {key!r} must be 1 or -1")
                # MongoDB sorts null (and missing) below every value.
                nulls = "ASC NULLS FIRST" if direction == 1 else "DESC NULLS LAST"
                order.append(f"{builder.path(key)} {nulls}")
            sql = f"SELECT * FROM {inner} ORDER BY {', '.join(order)}"
        elif name in ("$limit", "$skip"):
            if isinstance(spec, bool) or not isinstance(spec, int) or spec < 0:
                raise QueryError(f"MQL: {name} takes a non-negative integer")
            clause = "LIMIT" if name == "$limit" else "LIMIT ALL OFFSET"
            sql = f"SELECT * FROM {inner} {clause} {int(spec)}"
        elif name == "$count":
            if not isinstance(spec, str) or not spec or spec.startswith("$") or "." in spec:
                raise QueryError("MQL: $count takes a field name")
            sql = f"SELECT count(*) AS {_ident(spec)} FROM {inner}"
            has_id = False
            builder.on_readings = False
    return sql, builder.params
