"""``fake`` camera: generated JPEG/PNG frames (different every call) and PCD point clouds."""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .attrs import get_int
from .base import Resource, ResourceContext, capture_method
from .pcd import encode_pcd
from .registry import register
from .results import MIME_JPEG, MIME_PCD, MIME_PNG, BinaryResult, normalize_mime_type

_IMAGE_FORMATS = {MIME_JPEG: "JPEG", MIME_PNG: "PNG"}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {"JPEG": {"quality": 85}, "PNG": {"compress_level": 1}}


@register("rdk:component:camera", "fake")
class FakeCamera(Resource):
    """Attributes: ``width``, ``height`` (pixels, default 320x240), ``num_points`` (points per
    cloud, default 4096).

    Frames are a colour gradient that shifts each call, a moving square and the frame number;
    point clouds are a rippling 2 m x 2 m sheet one metre in front of the camera.
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self.width = get_int(self, self.attributes, "width", 320, minimum=8)
        self.height = get_int(self, self.attributes, "height", 240, minimum=8)
        num_points = get_int(self, self.attributes, "num_points", 4096, minimum=1)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width]
        self._base_rgb = np.stack(
            [
                xs * 255 // self.width,
                ys * 255 // self.height,
                (xs + ys) * 127 // (self.width + self.height),
            ],
            axis=-1,
        ).astype(np.uint8)
        side = int(np.ceil(np.sqrt(num_points)))
        grid = np.linspace(-1.0, 1.0, side, dtype=np.float32)
        gx, gy = np.meshgrid(grid, grid)
        self._grid_xy = np.stack([gx.ravel(), gy.ravel()], axis=-1)[:num_points]
        self._lock = threading.Lock()
        self._frames = 0
        self._clouds = 0

    def _next_frame(self) -> int:
        with self._lock:
            self._frames += 1
            return self._frames

    def render(self, frame: int) -> Image.Image:
        """Frame number ``frame`` as an RGB image."""
        shift = np.array([frame * 3, frame * 5, frame * 7], dtype=np.uint64) % 256
        rgb = self._base_rgb + shift.astype(np.uint8)  # uint8 arithmetic wraps around
        img = Image.fromarray(rgb, "RGB")
        draw = ImageDraw.Draw(img)
        box = max(4, min(self.width, self.height) // 6)
        x = (frame * 4) % max(1, self.width - box)
        y = (frame * 3) % max(1, self.height - box)
        draw.rectangle((x, y, x + box, y + box), fill=(255, 255, 255), outline=(0, 0, 0))
        draw.text((4, 4), f"{self.name} #{frame}", fill=(255, 255, 255))
        return img

    def encode_image(self, frame: int, mime_type: str) -> BinaryResult:
        """Frame ``frame`` encoded as ``mime_type`` (image/jpeg or image/png)."""
        fmt = _IMAGE_FORMATS[mime_type]
        buf = io.BytesIO()
        self.render(frame).save(buf, fmt, **_SAVE_OPTIONS[fmt])
        return BinaryResult(buf.getvalue(), mime_type)

    def point_cloud(self) -> BinaryResult:
        """The next point cloud as binary PCD."""
        with self._lock:
            self._clouds += 1
            phase = self._clouds * 0.2
        xy = self._grid_xy
        z = 1.0 + 0.1 * np.sin(3.0 * xy[:, 0] + phase) * np.cos(3.0 * xy[:, 1] - phase)
        return BinaryResult(encode_pcd(np.column_stack([xy, z])), MIME_PCD)

    def _mime(self, params: Mapping[str, Any]) -> str:
        requested = params.get("mime_type") or MIME_JPEG
        mime = normalize_mime_type(str(requested))
        if mime not in _IMAGE_FORMATS and mime != MIME_PCD:
            raise self.config_error(
                "mime_type",
                f"{requested!r} is not supported; use {MIME_JPEG}, {MIME_PNG} or {MIME_PCD}",
            )
        return mime

    @capture_method("ReadImage")
    def read_image(self, params: Mapping[str, Any]) -> BinaryResult:
        mime = self._mime(params)
        if mime == MIME_PCD:
            return self.point_cloud()
        return self.encode_image(self._next_frame(), mime)

    @capture_method("GetImages")
    def get_images(self, params: Mapping[str, Any]) -> list[BinaryResult]:
        wanted = params.get("filter_source_names")
        if wanted and self.name not in wanted:
            return []
        image = self.encode_image(self._next_frame(), MIME_JPEG)
        return [BinaryResult(image.payload, image.mime_type, self.name)]

    @capture_method("NextPointCloud")
    def next_point_cloud(self, params: Mapping[str, Any]) -> BinaryResult:
        return self.point_cloud()
