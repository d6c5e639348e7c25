"""What several ``capsync data`` commands share, so none imports another: the item filter
``data_cmd`` and ``data_export_cmd`` build from their flags, and the lines an export
reports its outcome in."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from capsync.cli.errors import UserError

if TYPE_CHECKING:
    from capsync.server.stores.base import ItemFilter


def report_export(failed: Mapping[str, str], missing: int, missing_what: str, done: str) -> int:
    """Print an export's outcome on stderr (each failed item, then ``done`` with what was
    missing or failed); the exit code: 1 when something was, else 0."""
    for item_id, reason in failed.items():
        print(f"capsync data: item {item_id} not exported: {reason}", file=sys.stderr)
    note = f"; {missing} {missing_what} missing" if missing else ""
    note += f"; {len(failed)} failed (listed above)" if failed else ""
    print(f"capsync data: {done}{note}", file=sys.stderr)
    return 1 if missing or failed else 0


def build_filter(args: argparse.Namespace) -> ItemFilter:
    from capsync._time import parse_time
    from capsync.server.stores.base import ItemFilter

    times: dict[str, int | None] = {}
    for flag in ("since", "until"):
        text = getattr(args, flag)
        try:
            times[flag] = None if text is None else parse_time(text)
        except ValueError as exc:
            raise UserError(f"--{flag}: {exc}") from None
    return ItemFilter(
        part_id=args.part,
        component=args.component,
        component_type=args.component_type,
        method=args.method,
        kind=args.kind,
        tags=tuple(args.tag),
        since_ns=times["since"],
        until_ns=times["until"],
    )
