"""Thumbnails of stored images, made once with Pillow and kept under the data dir.

``<data_dir>/.page-thumbnails/<id[:2]>/<id>.jpeg``: a JPEG at most
``THUMBNAIL_PX`` on its longer side, written to a temporary name and renamed,
so two requests for the same image at once both end with one whole file.
Payloads that Pillow cannot read (point clouds, broken images, decompression
bombs) have no thumbnail.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path

from PIL import Image, ImageOps

THUMBNAILS_DIR_NAME = ".page-thumbnails"
THUMBNAIL_PX = 256
JPEG_QUALITY = 80
MAX_IMAGE_PIXELS = 64_000_000  # larger images are refused, not decoded
_ID = re.compile(r"^[0-9a-zA-Z_-]{1,128}$")

log = logging.getLogger(__name__)


class ThumbnailCache:
    """Thumbnails under ``<data_dir>/.page-thumbnails``."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir) / THUMBNAILS_DIR_NAME

    def path_for(self, binary_id: str) -> Path:
        if not _ID.match(binary_id):
            raise ValueError(f"not a binary id: {binary_id!r}")
        return self.root / binary_id[:2] / f"{binary_id}.jpeg"

    def get(self, binary_id: str, payload: Path) -> Path | None:
        """The thumbnail of the image in ``payload``, made now if it is not cached yet."""
        target = self.path_for(binary_id)
        if target.exists():
            return target
        try:
            jpeg = _make_thumbnail(payload)
        except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            log.debug("no thumbnail for %s", binary_id, exc_info=True)
            return None
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".jpeg", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(jpeg)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return target


def _make_thumbnail(payload: Path) -> bytes:
    import io

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(payload) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ValueError("image too large for a thumbnail")
            image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG: decode at a lower scale
            small = ImageOps.exif_transpose(image)
            small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            small.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
