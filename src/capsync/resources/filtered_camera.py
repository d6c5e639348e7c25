"""``filtered`` camera: keeps another camera's frames only when a vision service finds
something (Viam's filtered-camera pattern), so an always-on camera syncs only what matters.

Attributes:

* ``camera`` (required): the source camera; ``vision`` (required): a vision service of
  this machine (a :class:`~capsync.resources.vision_service.VisionModel`).
* ``classifications`` / ``objects``: ``{label: minimum confidence}``; a frame is a hit
  when a classification (or a detection) with such a label reaches its confidence.
  The label ``"*"`` matches any label.
* ``window_frames_before`` / ``window_frames_after`` (default 0): frames kept before a
  hit (held in memory, written with their own times) and after it.

``ReadImage`` returns the kept frames; a tick with nothing to keep stores nothing
and is not an error.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from typing import Any

from capsync.vision import Classification, Detection

from .attrs import get_int, require_str
from .base import Resource, ResourceContext, capture_method
from .errors import NoCaptureToStore
from .registry import register
from .results import BinaryResult
from .vision_service import VisionModel, decode

ANY_LABEL = "*"


@register("rdk:component:camera", "filtered")
class FilteredCamera(Resource):
    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self.camera_name = require_str(self, self.attributes, "camera")
        self.vision_name = require_str(self, self.attributes, "vision")
        self.classification_thresholds = self._thresholds("classifications")
        self.object_thresholds = self._thresholds("objects")
        if not self.classification_thresholds and not self.object_thresholds:
            raise self.config_error("classifications", "or 'objects' must name at least one label")
        self.before = get_int(self, self.attributes, "window_frames_before", 0)
        self.after = get_int(self, self.attributes, "window_frames_after", 0)
        self._held: collections.deque[BinaryResult] = collections.deque(maxlen=self.before or 1)
        self._after_left = 0
        self._lock = threading.Lock()

    def _thresholds(self, key: str) -> dict[str, float]:
        value = self.attributes.get(key) or {}
        if not isinstance(value, Mapping) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
            for v in value.values()
        ):
            raise self.config_error(key, f"must map labels to confidences in [0, 1], got {value!r}")
        return {str(k): float(v) for k, v in value.items()}

    def is_hit(self, detections: list[Detection], classifications: list[Classification]) -> bool:
        """Whether a detection or classification reaches its label's threshold."""
        return _matches(
            ((c.class_name, c.confidence) for c in classifications), self.classification_thresholds
        ) or _matches(((d.class_name, d.confidence) for d in detections), self.object_thresholds)

    @capture_method("ReadImage")
    def read_image(self, params: Mapping[str, Any]) -> list[BinaryResult]:
        requested = time.time_ns()
        frame = self.context.dependency(self.camera_name).capture("ReadImage", params)
        if isinstance(frame, list):
            frame = frame[0]
        if not isinstance(frame, BinaryResult):
            raise TypeError(f"camera {self.camera_name!r} returned no image")
        received = time.time_ns()
        vision = self.context.dependency(self.vision_name)
        if not isinstance(vision, VisionModel):
            raise self.config_error("vision", f"{self.vision_name!r} is not a vision service")
        image = decode(frame.payload)
        detections = vision.detections(image) if self.object_thresholds else []
        classifications = vision.classifications(image) if self.classification_thresholds else []
        stamped = BinaryResult(frame.payload, frame.mime_type, frame.name, b"", requested, received)
        with self._lock:
            if self.is_hit(detections, classifications):
                kept = [*self._held, stamped]
                self._held.clear()
                self._after_left = self.after
                return kept
            if self._after_left > 0:
                self._after_left -= 1
                return [stamped]
            if self.before:
                self._held.append(stamped)
        raise NoCaptureToStore(f"{self.describe()}: nothing of interest in this frame")


def _matches(found: Any, thresholds: Mapping[str, float]) -> bool:
    for label, confidence in found:
        threshold = thresholds.get(label, thresholds.get(ANY_LABEL))
        if threshold is not None and confidence >= threshold:
            return True
    return False
