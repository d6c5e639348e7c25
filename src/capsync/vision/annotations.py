"""Detections and classifications as the ``Annotations`` of a captured image (SPEC §8).

rdk's CaptureAllFromCamera collector keeps a detection or classification only
when its confidence is at least ``min_confidence_score``; a box becomes a
``BoundingBox`` whose corners are the pixel corners divided by the image size.
"""

from __future__ import annotations

from collections.abc import Iterable

from capsync.proto import data_pb2

from .types import Classification, Detection


def annotations_message(
    detections: Iterable[Detection],
    classifications: Iterable[Classification],
    width: int,
    height: int,
    min_confidence: float = 0.0,
) -> data_pb2.Annotations:
    """The ``viam.app.data.v1.Annotations`` of an image ``width`` x ``height`` pixels."""
    message = data_pb2.Annotations()
    for d in detections:
        if d.confidence < min_confidence:
            continue
        message.bboxes.add(
            label=d.class_name,
            x_min_normalized=d.x_min / width,
            y_min_normalized=d.y_min / height,
            x_max_normalized=d.x_max / width,
            y_max_normalized=d.y_max / height,
            confidence=d.confidence,
        )
    for c in classifications:
        if c.confidence >= min_confidence:
            message.classifications.add(label=c.class_name, confidence=c.confidence)
    return message


def encode_annotations(
    detections: Iterable[Detection],
    classifications: Iterable[Classification],
    width: int,
    height: int,
    min_confidence: float = 0.0,
) -> bytes:
    """:func:`annotations_message`, serialized (what ``BinaryResult.annotations`` holds)."""
    message = annotations_message(detections, classifications, width, height, min_confidence)
    return message.SerializeToString()


def min_confidence_param(value: object) -> float:
    """``min_confidence_score`` from additional params (a number or a numeric string), 0..1."""
    if value is None or value == "":
        return 0.0
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"min_confidence_score must be a number, got {value!r}") from None
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"min_confidence_score must be between 0 and 1, got {score}")
    return score
