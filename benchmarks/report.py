"""Print the capture benchmarks as Markdown tables, ready to paste into a README.

Usage: ``python benchmarks/report.py .bench.json`` (the file written by
``pytest benchmarks --benchmark-json=.bench.json``; ``make bench`` does both).

Rates come from each benchmark's median round time and the ``records`` and
``bytes`` per round it stored in ``extra_info``. The targets are reported, never
enforced: benchmarks do not fail on timing.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

GROUPS = {
    "tabular-append": "per-record `append` of a 6-float dict (`Readings`), 256 KiB files",
    "tabular-batch": "`append_batch` of 6-float rows, 256 KiB files",
    "tabular-batch-64MiB-files": (
        "`append_batch` of 6-float rows, 64 MiB files (encoding apart from rotation)"
    ),
    "binary-1KiB": "`append_binary` of 1 KiB payloads, a file per reading",
    "binary-64KiB": "`append_binary` of 64 KiB payloads, a file per reading",
    "binary-1MiB": "`append_binary` of 1 MiB payloads, a file per reading",
}
IMPLS = {
    "compiled": "capsync, compiled `_wire`",
    "python": "capsync, pure-Python `_wire_py`",
    "protobuf": "protobuf runtime per record (baseline)",
    "raw": "raw `os.write` of the same bytes",
}
BASELINE = "protobuf"
RAW = "raw"


@dataclass(frozen=True)
class Row:
    group: str
    impl: str
    records: int
    nbytes: int
    seconds: float  # median round time
    iqr: float  # interquartile range of the round times
    rounds: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6


def load(path: str) -> tuple[dict[str, Any], list[Row]]:
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    rows = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "records" not in info or "bytes" not in info:
            continue
        rows.append(
            Row(
                group=bench.get("group") or "",
                impl=info.get("impl", bench.get("param", "?")),
                records=int(info["records"]),
                nbytes=int(info["bytes"]),
                seconds=float(bench["stats"]["median"]),
                iqr=float(bench["stats"]["iqr"]),
                rounds=int(bench["stats"]["rounds"]),
            )
        )
    return data, rows


def _by_group(rows: list[Row]) -> dict[str, dict[str, Row]]:
    groups: dict[str, dict[str, Row]] = {}
    for row in rows:
        groups.setdefault(row.group, {})[row.impl] = row
    order = list(GROUPS) + sorted(set(groups) - set(GROUPS))
    return {name: groups[name] for name in order if name in groups}


def _impl_order(impls: dict[str, Row]) -> list[str]:
    return [name for name in IMPLS if name in impls] + sorted(set(impls) - set(IMPLS))


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}×"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:,.0f}%"


def vs_baseline(group: dict[str, Row], impl: str) -> float | None:
    if BASELINE not in group or impl not in group:
        return None
    return group[impl].records_per_s / group[BASELINE].records_per_s


def vs_raw(group: dict[str, Row], impl: str) -> float | None:
    if RAW not in group or impl not in group:
        return None
    return group[impl].mb_per_s / group[RAW].mb_per_s


def table(name: str, group: dict[str, Row]) -> list[str]:
    lines = [
        f"**{name}** — {GROUPS.get(name, name)}",
        "",
        "| implementation | records/round | records/s | MB/s | spread "
        "| vs protobuf baseline | vs raw write |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for impl in _impl_order(group):
        row = group[impl]
        label = IMPLS.get(impl, impl)
        if impl == RAW and name.startswith("binary"):
            label = "raw create + `os.write` + rename of the same bytes"
        lines.append(
            f"| {label} | {row.records:,} | {row.records_per_s:,.0f} "
            f"| {row.mb_per_s:,.1f} | ±{50 * row.iqr / row.seconds:.0f}% "
            f"| {_ratio(vs_baseline(group, impl))} "
            f"| {_percent(vs_raw(group, impl))} |"
        )
    return lines


def _check(label: str, value: float | None, target: float, fmt: Any) -> str:
    if value is None:
        return f"{label}: n/a"
    verdict = "met" if value >= target else "MISSED"
    return f"{label}: {verdict} ({fmt(value)})"


def targets(groups: dict[str, dict[str, Row]]) -> str:
    batch = groups.get("tabular-batch", {})
    append = groups.get("tabular-append", {})
    binary = groups.get("binary-1MiB", {})
    checks = [
        _check("append_batch ≥ 100× baseline", vs_baseline(batch, "compiled"), 100, _ratio),
        _check("append_batch ≥ 90% of raw write", vs_raw(batch, "compiled"), 0.9, _percent),
        _check("append ≥ 10× baseline", vs_baseline(append, "compiled"), 10, _ratio),
        _check("1 MiB binary ≥ 90% of raw write", vs_raw(binary, "compiled"), 0.9, _percent),
    ]
    return "Targets (compiled path): " + "; ".join(checks) + "."


def machine_line(data: dict[str, Any]) -> str:
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {})
    protobuf = {
        bench["extra_info"]["protobuf"]
        for bench in data.get("benchmarks", [])
        if "protobuf" in bench.get("extra_info", {})
    }
    parts = [
        data.get("datetime", "")[:19].replace("T", " "),
        f"Python {machine.get('python_version', '?')}",
        f"{cpu.get('count', '?')} CPUs ({cpu.get('brand_raw', 'unknown CPU')})",
        *(f"protobuf {version}" for version in sorted(protobuf)),
    ]
    return (
        "_"
        + ", ".join(part for part in parts if part)
        + (
            "; rates from the median round, spread = half the interquartile range of the "
            "round times; MB = 10⁶ bytes; raw write's records/s counts the records whose "
            "bytes it writes._"
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="pytest-benchmark JSON (--benchmark-json)")
    args = parser.parse_args(argv)
    data, rows = load(args.json)
    if not rows:
        print(f"{args.json}: no capsync benchmarks with records/bytes in extra_info")
        return 1
    groups = _by_group(rows)
    out = [machine_line(data), ""]
    for name, group in groups.items():
        out += [*table(name, group), ""]
    out.append(targets(groups))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
