"""The ``capsync`` command line: one module per subcommand, each with ``register`` and ``run``.

A user mistake (bad config, unreadable file, wrong flag) ends with one line on
stderr and a non-zero exit code, never a traceback: commands raise
:class:`UserError` and :func:`main` prints it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from capsync import __version__, _grpc_quiet  # noqa: F401  (_grpc_quiet: before grpc)
from capsync.cli.errors import UserError

__all__ = ["UserError", "main"]

# Subcommand name -> module under capsync.cli that defines register(parser) and run(args).
COMMANDS = {
    "inspect": "capsync.cli.inspect_cmd",
    "run": "capsync.cli.run_cmd",
    "serve": "capsync.cli.serve_cmd",
    "data": "capsync.cli.data_cmd",
    "sync": "capsync.cli.sync_cmd",
    "convert": "capsync.cli.convert_cmd",
    "train": "capsync.cli.train_cmd",
    "status": "capsync.cli.status_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capsync",
        description="Capture robot data to Viam-format files and sync it to the cloud.",
    )
    parser.add_argument("--version", action="version", version=f"capsync {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.register(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(args, "log_level_override", None) or args.log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except UserError as exc:
        print(f"capsync: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which has exited: stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
