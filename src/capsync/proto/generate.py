"""Regenerate the checked-in protobuf and gRPC modules from the .proto files beside them.

Run ``python -m capsync.proto.generate`` (or ``make proto``) after editing any
``.proto`` file under ``src/capsync/proto``, and commit the result. For every
``X.proto`` it writes ``X_pb2.py`` and ``X_pb2.pyi`` next to it, and
``X_pb2_grpc.py`` when the file defines a service.

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

from google.protobuf import descriptor_pb2

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


_RUNTIME_IMPORT = "from google.protobuf import runtime_version as _runtime_version\n"
_RUNTIME_CHECK = re.compile(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)\n")


def strip_runtime_check(source: bytes) -> bytes:
    """A generated ``_pb2`` module without protoc's gencode/runtime version check.

    protoc pins the module to a protobuf runtime at least as new as itself; the
    modules use nothing newer than protobuf 6, and must import next to viam-sdk
    (which pins protobuf 6.x), so the check is dropped.
    """
    text = source.decode("utf-8").replace(_RUNTIME_IMPORT, "")
    return _RUNTIME_CHECK.sub("", text).encode("utf-8")


def wire_service_names(source: bytes) -> bytes:
    """A generated ``_pb2_grpc`` module whose method paths are Viam's.

    The .proto packages are Viam's prefixed with ``capsync.`` (so capsync and
    viam-sdk register different names in one process), but on the wire a
    method path must stay exactly Viam's (``/viam.app.datasync.v1.DataSyncService/...``).
    """
    text = source.decode("utf-8")
    return text.replace("'/capsync.viam.", "'/viam.").replace("'capsync.viam.", "'viam.").encode()


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
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set(proto_root))
    with_services = [fd.name for fd in fds.file if fd.service]

    with tempfile.TemporaryDirectory(prefix="capsync-proto-") as tmp:
        staging = Path(tmp)
        _run_protoc(proto_root, [f"--python_out={staging}", f"--pyi_out={staging}", *names])
        if with_services:
            _run_protoc(proto_root, [f"--grpc_python_out={staging}", *with_services])
        written: list[Path] = []
        for generated in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = out_dir / generated.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            content = generated.read_bytes()
            if generated.name.endswith("_pb2.py"):
                content = strip_runtime_check(content)
            elif generated.name.endswith("_pb2_grpc.py"):
                content = wire_service_names(content)
            target.write_bytes(content)
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
