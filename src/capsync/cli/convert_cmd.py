"""``capsync convert PATH... --to mcap --out FILE``: capture files as one MCAP file.

Runs on the robot, straight from the capture folder, with no server: every
``.capture`` file under each folder given (and each file given by name) goes
into ``FILE``, for Foxglove. See :mod:`capsync.export.mcap_export`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from capsync.cli.errors import UserError

HELP = "convert capture files to MCAP (for Foxglove), without a server"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="capture folders (their .capture files) or files"
    )
    parser.add_argument("--to", choices=["mcap"], default="mcap", help="output format: mcap")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    parser.add_argument(
        "--threads",
        type=_threads,
        default=None,
        metavar="N",
        help="threads that encode and compress beside the main one (default: 2 on a machine "
        "with 2 or more cores, else 1; 0: everything on the main thread, e.g. to leave a "
        "robot's other cores to its control loop). The file is the same bytes either way.",
    )


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 0 and 64, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from capsync.capture.reader import CaptureFileError
    from capsync.export.mcap_export import capture_files, convert_capture_files

    out = Path(args.out)
    try:
        files = capture_files(args.paths)
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: no such file or folder", 2) from None
    if not files:
        raise UserError(f"no .capture files in {', '.join(args.paths)}", 2)
    partial = out.with_name(out.name + ".partial")
    try:
        counts = convert_capture_files(files, partial, workers=args.threads)
        os.replace(partial, out)
    except CaptureFileError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(str(exc), 2) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"{exc.filename or out}: {exc.strerror or exc}") from None
    for reason in counts.skipped:
        print(f"capsync convert: skipped {reason}", file=sys.stderr)
    print(
        f"capsync convert: wrote {counts.messages} messages on {counts.channels} channels "
        f"from {counts.files} capture files to {out}",
        file=sys.stderr,
    )
    return 0
