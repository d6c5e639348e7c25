"""What a vision model finds: detections (boxes in pixels) and classifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Detection:
    """An axis-aligned box in pixels (``x_max``/``y_max`` exclusive) with a label."""

    x_min: int
    y_min: int
    x_max: int
    y_max: int
    confidence: float
    class_name: str

    def as_dict(self, width: int, height: int) -> dict[str, Any]:
        """Viam's ``Detection`` message as a struct (pixel and normalized corners)."""
        return {
            "x_min": self.x_min,
            "y_min": self.y_min,
            "x_max": self.x_max,
            "y_max": self.y_max,
            "confidence": self.confidence,
            "class_name": self.class_name,
            "x_min_normalized": self.x_min / width,
            "y_min_normalized": self.y_min / height,
            "x_max_normalized": self.x_max / width,
            "y_max_normalized": self.y_max / height,
        }


@dataclass(frozen=True, slots=True)
class Classification:
    """A label for a whole image."""

    class_name: str
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {"class_name": self.class_name, "confidence": self.confidence}
