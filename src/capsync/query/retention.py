"""Retention on the server: what it keeps of each source, and removing what expired.

A source's policy comes from (first match wins):

1. the latest ``capsync-retention-bin`` header its uploads carried (the capture
   method's ``retention_policy``, see :mod:`capsync.retention`), kept in
   ``<data_dir>/capsync-query/meta.db``;
2. the server's own rules (``capsync serve --retention FILE``): the first rule
   whose given ``component_name``/``component_type``/``method_name``/``part_id``
   all match;
3. the server's default (``--retention-days`` or the file's ``default``).

:func:`apply_retention` removes, per source, readings and binaries captured
more than ``days`` ago, then the oldest binaries past ``binary_limit_gb`` and
the oldest days of readings past ``tabular_limit_gb`` (measured by the store
when it can, MongoDB as its documents' BSON bytes, else as their Parquet files;
a store with neither logs once that this limit is not applied), from the store
and the columnar files, and logs each removal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capsync._time import DAY_NS, day_start_ns
from capsync.query.catalog import open_meta_db
from capsync.query.filters import DataFilter
from capsync.retention import Retention, SourceKey

if TYPE_CHECKING:
    from capsync.query.api import DataQuery

log = logging.getLogger(__name__)

_UNMEASURED: set[SourceKey] = set()  # sources whose tabular limit was said to be unapplied
_GB = 1_000_000_000
_RULE_FIELDS = ("part_id", "component_type", "component_name", "method_name")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS retention (
    part_id TEXT NOT NULL, component_type TEXT NOT NULL, component_name TEXT NOT NULL,
    method_name TEXT NOT NULL, policy TEXT NOT NULL, updated_ns INTEGER NOT NULL,
    PRIMARY KEY (part_id, component_type, component_name, method_name)
);
"""


@dataclass(frozen=True)
class RetentionRules:
    """The server's own retention: per-source rules, then a default."""

    rules: tuple[tuple[Mapping[str, str], Retention], ...] = ()
    default: Retention | None = None

    @classmethod
    def from_document(cls, document: Any, source: str = "retention") -> RetentionRules:
        """From ``{"default": {...}, "rules": [{"component_name": ..., "days": ...}, ...]}``."""
        if not isinstance(document, dict):
            raise ValueError(f"{source}: expected a JSON object")
        unknown = set(document) - {"default", "rules"}
        if unknown:
            raise ValueError(f"{source}: unknown key {sorted(unknown)[0]!r}")
        default = None
        if document.get("default") is not None:
            default = _policy(document["default"], f"{source}: default")
        rules = []
        for index, rule in enumerate(document.get("rules") or []):
            where = f"{source}: rules[{index}]"
            if not isinstance(rule, dict):
                raise ValueError(f"{where} must be an object")
            match = {k: rule[k] for k in _RULE_FIELDS if k in rule}
            if not all(isinstance(v, str) for v in match.values()):
                raise ValueError(f"{where}: {', '.join(_RULE_FIELDS)} must be strings")
            policy = {k: v for k, v in rule.items() if k not in _RULE_FIELDS}
            rules.append((match, _policy(policy, where)))
        return cls(tuple(rules), default)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RetentionRules:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON: {exc}") from None
        return cls.from_document(document, str(path))

    def for_source(self, key: SourceKey) -> Retention | None:
        values = dict(zip(_RULE_FIELDS, key, strict=True))
        for match, policy in self.rules:
            if all(values[k] == v for k, v in match.items()):
                return policy
        return self.default


def _policy(document: Any, where: str) -> Retention:
    if not isinstance(document, dict):
        raise ValueError(f"{where} must be an object")
    unknown = set(document) - {"days", "binary_limit_gb", "tabular_limit_gb"}
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    try:
        return Retention.from_document(document)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


class RetentionBook:
    """The policies uploads announced, per source (thread-safe; writes only on a change)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self._conn = open_meta_db(data_dir, _SCHEMA)
        self._lock = threading.Lock()
        self._seen = self._load()

    def _load(self) -> dict[SourceKey, Retention]:
        rows = self._conn.execute(
            "SELECT part_id, component_type, component_name, method_name, policy FROM retention"
        ).fetchall()
        return {(r[0], r[1], r[2], r[3]): Retention.from_document(json.loads(r[4])) for r in rows}

    def record(self, key: SourceKey, policy: Retention) -> None:
        with self._lock:
            if self._seen.get(key) == policy:
                return
            self._conn.execute(
                "INSERT OR REPLACE INTO retention VALUES (?, ?, ?, ?, ?, ?)",
                (*key, json.dumps(policy.document()), time.time_ns()),
            )
            self._seen[key] = policy
        log.info("retention for %s: %s", "/".join(key), policy)

    def policies(self) -> dict[SourceKey, Retention]:
        with self._lock:
            return dict(self._seen)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


@dataclass
class RetentionReport:
    readings: int = 0
    binaries: int = 0
    by_source: dict[SourceKey, tuple[int, int]] = field(default_factory=dict)


def _source_filter(key: SourceKey) -> DataFilter:
    return DataFilter(part_id=key[0], component_type=key[1], component_name=key[2],
                      method_name=key[3])  # fmt: skip


def apply_retention(
    query: DataQuery,
    book: RetentionBook | None,
    rules: RetentionRules,
    now_ns: int | None = None,
) -> RetentionReport:
    """Remove what every source's policy says has expired; log and return the counts."""
    now = time.time_ns() if now_ns is None else now_ns
    announced = book.policies() if book is not None else {}
    report = RetentionReport()
    for key in sorted(set(query.source.sources()) | set(announced)):
        policy = announced.get(key) or rules.for_source(key)
        if policy is None or policy.empty:
            continue
        readings, binaries = _apply(query, key, policy, now)
        if readings or binaries:
            report.by_source[key] = (readings, binaries)
            report.readings += readings
            report.binaries += binaries
            log.info(
                "retention removed %d readings and %d binaries of %s (%s)",
                readings, binaries, "/".join(key), policy,
            )  # fmt: skip
    return report


def _apply(query: DataQuery, key: SourceKey, policy: Retention, now: int) -> tuple[int, int]:
    source = _source_filter(key)
    readings = binaries = 0
    if policy.days is not None:
        cutoff = now - int(policy.days * DAY_NS)
        readings += query.delete_tabular(cutoff, source)
        expired = query.all_blobs(DataFilter(**{**source.__dict__, "end_ns": cutoff}))
        binaries += query.delete_blobs([b.id for b in expired])
    if policy.binary_limit_gb is not None:
        limit = policy.binary_limit_gb * _GB
        blobs = query.all_blobs(source)
        total = sum(b.size_bytes for b in blobs)
        doomed: list[str] = []
        for blob in blobs:  # oldest first
            if total <= limit:
                break
            doomed.append(blob.id)
            total -= blob.size_bytes
        binaries += query.delete_blobs(doomed)
    if policy.tabular_limit_gb is None:
        return readings, binaries
    days = query.source.tabular_day_sizes(key)  # a store that measures itself (MongoDB)
    if days is None and query.columnar is not None:
        query.columnar.compact()
        days = query.columnar.source_sizes().get(key, [])
    if days is None:
        if key not in _UNMEASURED:
            _UNMEASURED.add(key)
            log.warning(
                "retention: tabular_limit_gb of %s is not applied: this store keeps no "
                "columnar files to measure readings by", "/".join(key),
            )  # fmt: skip
    else:
        total = sum(size for _, size in days)
        limit = policy.tabular_limit_gb * _GB
        for day, size in days:  # oldest first
            if total <= limit:
                break
            readings += query.delete_tabular(day_start_ns(day) + DAY_NS, source)
            total -= size
    return readings, binaries
