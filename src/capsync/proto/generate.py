"""Regenerate the checked-in protobuf and gRPC modules from the .proto files beside them.

Run ``python -m capsync.proto.generate`` (or ``make proto``) after editing any
``.proto`` file under ``src/capsync/proto``, and commit the result. For every
``X.proto`` it writes ``X_pb2.py`` and ``X_pb2.pyi`` next to it. No
``X_pb2_grpc.py`` is generated: the packages are Viam's with a ``capsync.``
prefix (so capsync and viam-sdk share protobuf's default descriptor pool in one
process), while the gRPC method paths must stay Viam's; :mod:`capsync.proto.rpc`
builds the stubs and handlers from the service descriptors instead.

The modules run on protobuf 6.x and 7.x (viam-sdk pins 6.33.5): protoc writes a
check that the runtime is at least the version of the protoc that generated the
module, which would refuse older runtimes; it is stripped (the generated code
uses only the ``builder`` API both majors share).

protoc is the one bundled with grpcio-tools, run in a child process (importing
``grpc_tools.protoc`` would install import hooks that compile .proto files on
the fly, which could hide a missing generated module). Imports resolve against
``src`` (so ``capsync/proto/viam/...`` import paths become ``capsync.proto.viam...``
Python imports) and grpcio-tools' copy of the well-known types
(``google/protobuf/*.proto``).

This module must not import the generated modules: it has to work when they are
missing or stale.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

#: ``src/capsync/proto``: the package holding the .proto files and generated code.
PROTO_PACKAGE_DIR = Path(__file__).resolve().parent
#: ``src``: the protoc include root; .proto import paths are relative to it.
SRC_ROOT = PROTO_PACKAGE_DIR.parent.parent


def well_known_include() -> Path:
    """Return grpcio-tools' include directory holding ``google/protobuf/*.proto``."""
    return Path(str(resources.files("grpc_tools") / "_proto"))


def proto_files(proto_root: Path = SRC_ROOT) -> list[Path]:
    """Return the .proto files of ``capsync.proto`` under the include root, sorted."""
    return sorted((proto_root / "capsync" / "proto").rglob("*.proto"))


# protoc's runtime version check: the import and the call, with its arguments.
_VERSION_CHECK = re.compile(
    r"^from google\.protobuf import runtime_version as _runtime_version\n"
    r"|^_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:[^\n]*\n)*?\)\n",
    re.MULTILINE,
)


def strip_version_check(source: str) -> str:
    """Return a generated ``_pb2.py`` without protoc's gencode/runtime version check."""
    stripped = _VERSION_CHECK.sub("", source)
    if "_runtime_version" in stripped:
        raise RuntimeError("protoc's runtime version check changed shape: update generate.py")
    return stripped


def _relative_names(proto_root: Path, files: Sequence[Path]) -> list[str]:
    """Return the protoc names (include-root relative, ``/``-separated) of ``files``."""
    return [f.relative_to(proto_root).as_posix() for f in files]


def _run_protoc(proto_root: Path, args: Sequence[str]) -> None:
    """Run grpcio-tools' protoc with both include roots; raise if it fails."""
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--proto_path={well_known_include()}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"protoc failed with exit status {result.returncode}:\n{result.stderr.strip()}"
        )


def descriptor_set(proto_root: Path = SRC_ROOT) -> bytes:
    """Compile the .proto files under ``proto_root`` and return the FileDescriptorSet.

    The set holds one FileDescriptorProto per capsync .proto file (imports such as
    the well-known types are not included) and no source info, which is what the
    generated ``*_pb2`` modules embed as ``DESCRIPTOR.serialized_pb``.
    """
    proto_root = proto_root.resolve()
    files = proto_files(proto_root)
    with tempfile.TemporaryDirectory(prefix="capsync-proto-") as tmp:
        out = Path(tmp) / "descriptor_set.pb"
        _run_protoc(
            proto_root,
            [f"--descriptor_set_out={out}", *_relative_names(proto_root, files)],
        )
        return out.read_bytes()


def generate(out_dir: Path = SRC_ROOT, proto_root: Path = SRC_ROOT) -> list[Path]:
    """Generate the Python modules for every capsync .proto file into ``out_dir``.

    ``out_dir`` mirrors the include root: the modules of
    ``capsync/proto/viam/app/datasync/v1/data_sync.proto`` land in
    ``out_dir/capsync/proto/viam/app/datasync/v1/``. With the default ``out_dir``
    (``src``) that is next to the .proto files. Returns the written paths, sorted.
    Nothing is written if protoc fails.
    """
    proto_root = proto_root.resolve()
    files = proto_files(proto_root)
    names = _relative_names(proto_root, files)
    with tempfile.TemporaryDirectory(prefix="capsync-proto-") as tmp:
        staging = Path(tmp)
        _run_protoc(proto_root, [f"--python_out={staging}", f"--pyi_out={staging}", *names])
        written: list[Path] = []
        for generated in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = out_dir / generated.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = generated.read_text(encoding="utf-8")
            if generated.name.endswith("_pb2.py"):
                text = strip_version_check(text)
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def main() -> int:
    """Regenerate the modules in place and list the files written."""
    for path in generate():
        try:
            shown = path.resolve().relative_to(Path.cwd())
        except ValueError:
            shown = path
        print(f"wrote {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
