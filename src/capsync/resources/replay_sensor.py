"""``replay`` sensor: Readings are the rows of a CSV file, one row per call."""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Iterator, Mapping
from typing import IO, Any

from .attrs import get_bool, require_str
from .base import Resource, ResourceContext, capture_method
from .errors import EndOfData
from .registry import register


def parse_cell(text: str) -> float | str:
    """A finite number becomes a float; anything else (including ``nan``, ``""``) stays text."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


@register("rdk:component:sensor", "replay")
class ReplaySensor(Resource):
    """Attributes: ``path`` (CSV file with a header row, relative to the config file's
    folder), ``loop`` (default true: start again after the last row; false: raise
    :class:`EndOfData`).

    The file is streamed, not loaded, so long recordings cost no memory. Blank lines are
    skipped; a short row yields only the columns it has.
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self.path = context.resolve_path(require_str(self, self.attributes, "path"))
        self.loop = get_bool(self, self.attributes, "loop", True)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._rows: Iterator[list[str]] = iter(())
        self._header: list[str] = []
        try:
            self._rewind()
            first = next(self._rows, None)
        except OSError as exc:
            self.close()
            raise self.config_error(
                "path", f"cannot read CSV file {str(self.path)!r}: {exc}"
            ) from exc
        if not self._header or first is None:
            self.close()
            raise self.config_error(
                "path", f"CSV file {str(self.path)!r} needs a header row and at least one data row"
            )
        self._rewind()

    def _rewind(self) -> None:
        if self._file is None:
            self._file = open(self.path, newline="", encoding="utf-8-sig")  # noqa: SIM115
        self._file.seek(0)
        reader = csv.reader(self._file)
        self._header = [h.strip() for h in next(reader, [])]
        self._rows = (row for row in reader if row and any(cell.strip() for cell in row))

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._file is None:
                raise EndOfData(f"{self.describe()}: closed")
            row = next(self._rows, None)
            if row is None:
                if not self.loop:
                    raise EndOfData(f"{self.describe()}: reached the end of {self.path}")
                self._rewind()
                row = next(self._rows, None)
                if row is None:  # the file was emptied while replaying
                    raise EndOfData(f"{self.describe()}: {self.path} has no data rows")
            return {key: parse_cell(cell) for key, cell in zip(self._header, row, strict=False)}

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
