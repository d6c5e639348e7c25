"""The item filter that ``capsync data`` commands build from their flags (one home for both
``data_cmd`` and ``data_export_cmd``, so neither imports the other)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from capsync.cli.errors import UserError

if TYPE_CHECKING:
    from capsync.server.stores.base import ItemFilter


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
