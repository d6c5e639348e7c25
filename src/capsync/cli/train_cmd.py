"""``capsync train``: export a dataset and run a training script on it, here.

The script is run the way Viam's training service runs one (SPEC §9):
``python SCRIPT --dataset_file=<export>/dataset.jsonl
--model_output_directory=<out>`` plus ``--key=value`` for each of the user's
``--args key=value,...``. ``--script`` is a ``.py`` file, a folder holding a
Viam training package (``model/training.py``, run as ``-m model.training``
from that folder), a ``.tar.gz`` of one, or an importable module name. Its
output streams through and its exit code is the command's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from capsync.cli.errors import UserError

HELP = "export a dataset and run a training script on it locally"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="the serve --data folder")
    parser.add_argument("--mongo-uri", metavar="URI", help="read records from this MongoDB")
    parser.add_argument("--mongo-database", default="capsync", metavar="NAME")
    parser.add_argument("--dataset", required=True, metavar="ID", help="the dataset to train on")
    parser.add_argument(
        "--script",
        required=True,
        metavar="PATH_OR_PACKAGE",
        help="a .py file, a training package folder or .tar.gz (model/training.py), or a module",
    )
    parser.add_argument(
        "--args", default="", metavar="K=V,...", help="more arguments for the script (--K=V)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="the model output directory")
    parser.add_argument(
        "--dataset-dir",
        metavar="DIR",
        help="where to export the dataset (default: a temporary folder, removed afterwards)",
    )


def parse_script_args(text: str) -> list[str]:
    """``"a=1,b=x"`` -> ``["--a=1", "--b=x"]``."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--args: {item!r} is not key=value", 2)
        out.append(f"--{key.strip().lstrip('-')}={value}")
    return out


def script_command(script: str, scratch: Path) -> tuple[list[str], Path | None]:
    """The command (after the interpreter) and working folder that run ``script``."""
    path = Path(script)
    if path.is_file() and path.suffix == ".py":
        return [str(path.absolute())], None
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        unpacked = scratch / "script"
        with tarfile.open(path) as archive:
            archive.extractall(unpacked, filter="data")
        path = unpacked
    if path.is_dir():
        if (path / "model" / "training.py").is_file():
            return ["-m", "model.training"], path.absolute()
        raise UserError(f"--script {script}: no model/training.py in that folder", 2)
    if path.exists() or script.endswith(".py") or "/" in script:
        raise UserError(f"--script {script}: not a .py file, package folder or module", 2)
    return ["-m", script], None


def run(args: argparse.Namespace) -> int:
    from capsync.cli.data_export_cmd import export_dataset

    extra = parse_script_args(args.args)
    if not Path(args.data).is_dir():
        raise UserError(f"--data {args.data}: no such folder", 2)
    out = Path(args.out).absolute()
    with tempfile.TemporaryDirectory(prefix="capsync-train-") as scratch:
        command, cwd = script_command(args.script, Path(scratch))
        dataset_dir = Path(args.dataset_dir or Path(scratch) / "dataset").absolute()
        try:
            export_dataset(
                args.data,
                args.dataset,
                str(dataset_dir),
                mongo_uri=args.mongo_uri,
                mongo_database=args.mongo_database,
            )
        except FileNotFoundError as exc:
            raise UserError(f"{exc.filename}: {exc.strerror}", 2) from None
        out.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            *command,
            f"--dataset_file={dataset_dir / 'dataset.jsonl'}",
            f"--model_output_directory={out}",
            *extra,
        ]
        print(f"capsync train: {' '.join(argv)}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        return subprocess.run(argv, cwd=cwd, check=False).returncode
