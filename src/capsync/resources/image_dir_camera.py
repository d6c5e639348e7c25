"""``image_dir`` camera: serves the image (and PCD) files of a folder in turn."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from .attrs import get_bool, require_str
from .base import Resource, ResourceContext, capture_method
from .errors import EndOfData
from .registry import register
from .results import MIME_JPEG, MIME_PCD, MIME_PNG, BinaryResult, normalize_mime_type

EXTENSION_MIME_TYPES = {".jpg": MIME_JPEG, ".jpeg": MIME_JPEG, ".png": MIME_PNG, ".pcd": MIME_PCD}
_PIL_FORMATS = {MIME_JPEG: "JPEG", MIME_PNG: "PNG"}


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key so that ``frame2`` comes before ``frame10``; zero-padded names sort as usual."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", path.name)
        if part
    )


class _Playlist:
    """Files served in order, looping or stopping at the end."""

    def __init__(self, files: list[Path], loop: bool) -> None:
        self.files = files
        self.loop = loop
        self.position = 0

    def next(self, owner: str) -> Path:
        if self.position >= len(self.files):
            if not self.loop:
                raise EndOfData(f"{owner}: served all {len(self.files)} files and loop is false")
            self.position = 0
        path = self.files[self.position]
        self.position += 1
        return path


@register("rdk:component:camera", "image_dir")
class ImageDirCamera(Resource):
    """Attributes: ``path`` (folder, relative to the config file's folder), ``loop``
    (default true).

    Files are served sorted by name; ``.jpg``/``.jpeg``/``.png`` through ReadImage and
    GetImages, ``.pcd`` through NextPointCloud (and ReadImage with ``pointcloud/pcd``).
    A ReadImage ``mime_type`` other than the file's own image type is transcoded.
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self.folder = context.resolve_path(require_str(self, self.attributes, "path"))
        loop = get_bool(self, self.attributes, "loop", True)
        if not self.folder.is_dir():
            raise self.config_error("path", f"folder {str(self.folder)!r} does not exist")
        files = sorted(
            (
                p
                for p in self.folder.iterdir()
                if p.suffix.lower() in EXTENSION_MIME_TYPES
                and not p.name.startswith(".")
                and p.is_file()
            ),
            key=_natural_key,
        )
        if not files:
            raise self.config_error(
                "path",
                f"folder {str(self.folder)!r} has no {'/'.join(EXTENSION_MIME_TYPES)} files",
            )
        images = [p for p in files if EXTENSION_MIME_TYPES[p.suffix.lower()] != MIME_PCD]
        clouds = [p for p in files if EXTENSION_MIME_TYPES[p.suffix.lower()] == MIME_PCD]
        self._images = _Playlist(images, loop)
        self._clouds = _Playlist(clouds, loop)
        self._lock = threading.Lock()
        if not images:
            self.drop_methods("GetImages")
        if not clouds:
            self.drop_methods("NextPointCloud")

    def _next_file(self, playlist: _Playlist, kind: str) -> tuple[bytes, str]:
        if not playlist.files:
            raise self.config_error("path", f"folder {str(self.folder)!r} has no {kind} files")
        with self._lock:
            path = playlist.next(f"{self.describe()} ({self.folder})")
        return path.read_bytes(), EXTENSION_MIME_TYPES[path.suffix.lower()]

    @capture_method("ReadImage")
    def read_image(self, params: Mapping[str, Any]) -> BinaryResult:
        requested = params.get("mime_type")
        mime = normalize_mime_type(str(requested)) if requested else ""
        if mime == MIME_PCD:
            return self.next_point_cloud(params)
        if mime and mime not in _PIL_FORMATS:
            raise self.config_error(
                "mime_type",
                f"{requested!r} is not supported; use {MIME_JPEG}, {MIME_PNG} or {MIME_PCD}",
            )
        payload, own_mime = self._next_file(self._images, "image")
        if not mime or mime == own_mime:
            return BinaryResult(payload, own_mime)
        return BinaryResult(_transcode(payload, mime), mime)

    @capture_method("GetImages")
    def get_images(self, params: Mapping[str, Any]) -> list[BinaryResult]:
        wanted = params.get("filter_source_names")
        if wanted and self.name not in wanted:
            return []
        payload, mime = self._next_file(self._images, "image")
        return [BinaryResult(payload, mime, self.name)]

    @capture_method("NextPointCloud")
    def next_point_cloud(self, params: Mapping[str, Any]) -> BinaryResult:
        payload, mime = self._next_file(self._clouds, ".pcd")
        return BinaryResult(payload, mime)


def _transcode(payload: bytes, mime: str) -> bytes:
    with Image.open(io.BytesIO(payload)) as img:
        out = io.BytesIO()
        fmt = _PIL_FORMATS[mime]
        (img.convert("RGB") if fmt == "JPEG" and img.mode not in ("RGB", "L") else img).save(
            out, fmt
        )
        return out.getvalue()
