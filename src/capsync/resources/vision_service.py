"""Vision services: a base class any Python model can subclass, and the built-in models.

=========================== ===============================================================
model                       what it finds
=========================== ===============================================================
color_detector              boxes around regions of ``detect_color`` (Viam's attributes)
color_histogram_classifier  labels from a model directory (``model_path``, see
                            :mod:`capsync.vision.classifier`)
=========================== ===============================================================

Every vision service captures ``CaptureAllFromCamera`` (the camera's image with
what the model found as its annotations), ``GetDetectionsFromCamera`` and
``GetClassificationsFromCamera`` (tabular). Additional params: ``camera_name``
(default: the service's ``camera_name`` attribute), ``mime_type`` (asked of the
camera, default ``image/jpeg``), ``min_confidence_score`` (CaptureAllFromCamera)
and ``n`` (GetClassificationsFromCamera, default all).

Your own model::

    @register("rdk:service:vision", "acme:vision:ripeness")
    class Ripeness(VisionModel):
        def classifications(self, image, n=0):
            return [Classification("ripe", 0.9)]
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from capsync.vision import (
    Classification,
    Detection,
    encode_annotations,
    min_confidence_param,
)
from capsync.vision.classifier import ModelFileError, load_model
from capsync.vision.color_detector import ColorDetector, ColorDetectorError

from .attrs import get_int, get_str, require_str
from .base import Resource, ResourceContext, capture_method
from .registry import register
from .results import MIME_JPEG, BinaryResult, normalize_mime_type

VISION_API = "rdk:service:vision"


class VisionModel(Resource):
    """A vision service: override :meth:`detections` and/or :meth:`classifications`."""

    api = VISION_API

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self.default_camera = get_str(self, self.attributes, "camera_name", None)

    # ----- what a model implements (``image`` is a PIL image) -----------------------------

    def detections(self, image: Any) -> list[Detection]:
        return []

    def classifications(self, image: Any, n: int = 0) -> list[Classification]:
        return []

    # ----- capture methods ----------------------------------------------------------------

    def frame(self, params: Mapping[str, Any]) -> BinaryResult:
        """One image from the camera named in ``params`` (or the default camera)."""
        camera_name = get_str(self, params, "camera_name", self.default_camera)
        if camera_name is None:
            raise self.config_error("camera_name", "is required (additional_params or attribute)")
        camera = self.context.dependency(camera_name)
        mime = normalize_mime_type(get_str(self, params, "mime_type", MIME_JPEG) or MIME_JPEG)
        result = camera.capture("ReadImage", {"mime_type": mime})
        if isinstance(result, list):
            result = result[0]
        if not isinstance(result, BinaryResult):
            raise TypeError(f"camera {camera_name!r} returned no image")
        return result

    @capture_method("CaptureAllFromCamera")
    def capture_all_from_camera(self, params: Mapping[str, Any]) -> BinaryResult:
        try:
            min_confidence = min_confidence_param(params.get("min_confidence_score"))
        except ValueError as exc:
            raise self.config_error("min_confidence_score", str(exc)) from None
        frame = self.frame(params)
        image = decode(frame.payload)
        annotations = encode_annotations(
            self.detections(image),
            self.classifications(image),
            image.width,
            image.height,
            min_confidence,
        )
        return BinaryResult(frame.payload, frame.mime_type, "", annotations)

    @capture_method("GetDetectionsFromCamera")
    def detections_from_camera(self, params: Mapping[str, Any]) -> dict[str, Any]:
        image = decode(self.frame(params).payload)
        return {
            "detections": [d.as_dict(image.width, image.height) for d in self.detections(image)]
        }

    @capture_method("GetClassificationsFromCamera")
    def classifications_from_camera(self, params: Mapping[str, Any]) -> dict[str, Any]:
        n = get_int(self, params, "n", 0)
        image = decode(self.frame(params).payload)
        return {"classifications": [c.as_dict() for c in self.classifications(image, n)]}


def decode(payload: bytes | memoryview) -> Any:
    """A PIL image of encoded bytes, loaded."""
    from PIL import Image

    image = Image.open(io.BytesIO(bytes(payload)))
    image.load()
    return image


@register(VISION_API, "color_detector")
class ColorDetectorService(VisionModel):
    """Viam's attributes: ``detect_color`` ("#RRGGBB", required), ``hue_tolerance_pct``
    (required, (0, 1]), ``segment_size_px`` (default 5000), ``saturation_cutoff_pct``,
    ``value_cutoff_pct``, ``label``, ``camera_name``."""

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        color = require_str(self, self.attributes, "detect_color")
        numbers = {}
        for key in ("hue_tolerance_pct", "saturation_cutoff_pct", "value_cutoff_pct"):
            value = self.attributes.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.config_error(key, f"must be a number, got {value!r}")
            numbers[key] = float(value)
        try:
            self.detector = ColorDetector.from_attributes(
                color,
                numbers["hue_tolerance_pct"],
                get_int(self, self.attributes, "segment_size_px", 0),
                numbers["saturation_cutoff_pct"],
                numbers["value_cutoff_pct"],
                get_str(self, self.attributes, "label", "") or "",
            )
        except ColorDetectorError as exc:
            raise self.config_error(exc.key, exc.problem) from None

    def detections(self, image: Any) -> list[Detection]:
        return self.detector.detect(np.asarray(image.convert("RGB")))


@register(VISION_API, "color_histogram_classifier")
class ClassifierService(VisionModel):
    """Attributes: ``model_path`` (a model directory or its ``model.json``, relative to the
    config file), ``camera_name``."""

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        path = context.resolve_path(require_str(self, self.attributes, "model_path"))
        try:
            self.classifier = load_model(path)
        except ModelFileError as exc:
            raise self.config_error("model_path", str(exc)) from None

    def classifications(self, image: Any, n: int = 0) -> list[Classification]:
        return self.classifier.classify(image, n)
