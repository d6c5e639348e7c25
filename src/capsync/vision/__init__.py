"""Vision models that need no downloads: a color detector and a color-histogram classifier.

Pure numpy on decoded frames (Pillow decodes); no resource or service imports, so
resources and remotes both build on it.
"""

from __future__ import annotations

from .annotations import annotations_message, encode_annotations, min_confidence_param
from .types import Classification, Detection

__all__ = [
    "Classification",
    "Detection",
    "annotations_message",
    "encode_annotations",
    "min_confidence_param",
]
