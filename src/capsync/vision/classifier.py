"""A nearest-centroid image classifier on color histograms, and its model file.

The model is a directory holding ``model.json`` (written by ``capsync train``'s
example script, or by :func:`save_model`)::

    {"type": "capsync.color_histogram_classifier",
     "labels": ["apple", "leaf"],           # one per centroid
     "bins": 8,                              # histogram bins per channel
     "centroids": [[...3*bins floats...], ...],
     "image_size_px": 64,                    # optional, default 64
     "temperature": 0.05}                    # optional, default 0.05

Features (:func:`features`): the image in RGB, resized to ``image_size_px``
square (Pillow's default filter); per channel, a histogram of ``bins`` equal
bins over 0..255 normalized to sum 1; the three concatenated (R, G, B). This
is exactly what ``examples/train_color_classifier.py`` (``capsync train``)
computes, so its models load here unchanged. A
label's centroid is the mean feature of its training images. Classifying
measures the Euclidean distance to every centroid; confidences are
``softmax(-distance / temperature)``, highest first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .types import Classification

MODEL_TYPE = "capsync.color_histogram_classifier"
MODEL_FILE = "model.json"
DEFAULT_IMAGE_SIZE_PX = 64
DEFAULT_TEMPERATURE = 0.05


class ModelFileError(ValueError):
    """A model file that cannot be read or has the wrong shape; the message names it."""


def features(image: Any, bins: int, image_size_px: int = DEFAULT_IMAGE_SIZE_PX) -> np.ndarray:
    """The feature vector (3 * ``bins`` floats) of a PIL image."""
    rgb = image.convert("RGB").resize((image_size_px, image_size_px))
    pixels = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    index = (pixels.astype(np.int32) * bins) >> 8  # bin of each channel value
    out = np.empty(3 * bins, dtype=np.float64)
    for channel in range(3):
        counts = np.bincount(index[:, channel], minlength=bins).astype(np.float64)
        out[channel * bins : (channel + 1) * bins] = counts / max(1, len(pixels))
    return out


@dataclass(frozen=True)
class ColorHistogramClassifier:
    labels: tuple[str, ...]
    bins: int
    centroids: np.ndarray  # (len(labels), 3 * bins)
    image_size_px: int = DEFAULT_IMAGE_SIZE_PX
    temperature: float = DEFAULT_TEMPERATURE

    def classify(self, image: Any, n: int = 0) -> list[Classification]:
        """Every label (or the best ``n``) with its confidence, most confident first."""
        feature = features(image, self.bins, self.image_size_px)
        distances = np.linalg.norm(self.centroids - feature, axis=1)
        logits = -distances / self.temperature
        weights = np.exp(logits - logits.max())
        confidences = weights / weights.sum()
        order = np.argsort(-confidences, kind="stable")
        if n > 0:
            order = order[:n]
        return [Classification(self.labels[i], float(confidences[i])) for i in order]

    def as_json(self) -> dict[str, Any]:
        return {
            "type": MODEL_TYPE,
            "labels": list(self.labels),
            "bins": self.bins,
            "centroids": self.centroids.tolist(),
            "image_size_px": self.image_size_px,
            "temperature": self.temperature,
        }


def train(
    examples: Iterable[tuple[Any, str]],
    bins: int = 8,
    image_size_px: int = DEFAULT_IMAGE_SIZE_PX,
) -> ColorHistogramClassifier:
    """A classifier from (PIL image, label) pairs: one centroid per label, labels sorted."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for image, label in examples:
        f = features(image, bins, image_size_px)
        sums[label] = sums.get(label, 0) + f
        counts[label] = counts.get(label, 0) + 1
    if not sums:
        raise ValueError("no training images")
    labels = tuple(sorted(sums))
    centroids = np.stack([sums[label] / counts[label] for label in labels])
    return ColorHistogramClassifier(labels, bins, centroids, image_size_px)


def save_model(model: ColorHistogramClassifier, directory: str | os.PathLike[str]) -> Path:
    """Write ``directory/model.json``; return its path."""
    path = Path(directory) / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model.as_json()))
    return path


def load_model(path: str | os.PathLike[str]) -> ColorHistogramClassifier:
    """The classifier of a model directory (or its ``model.json``); ModelFileError if bad."""
    file = Path(path)
    if file.is_dir():
        file = file / MODEL_FILE
    try:
        document = json.loads(file.read_text())
    except OSError as exc:
        raise ModelFileError(f"{file}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelFileError(f"{file}: not JSON: {exc}") from None
    return model_from_json(document, str(file))


def model_from_json(document: Any, source: str = "model") -> ColorHistogramClassifier:
    if not isinstance(document, Mapping) or document.get("type") != MODEL_TYPE:
        raise ModelFileError(f'{source}: "type" must be "{MODEL_TYPE}"')
    labels = document.get("labels")
    bins = document.get("bins")
    centroids = document.get("centroids")
    if (
        not isinstance(labels, Sequence)
        or not labels
        or not all(isinstance(x, str) for x in labels)
    ):
        raise ModelFileError(f'{source}: "labels" must be a non-empty list of strings')
    if not isinstance(bins, int) or isinstance(bins, bool) or not 1 <= bins <= 256:
        raise ModelFileError(f'{source}: "bins" must be an integer from 1 to 256')
    try:
        array = np.asarray(centroids, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f'{source}: "centroids" must be a list of lists of numbers') from None
    if array.shape != (len(labels), 3 * bins):
        raise ModelFileError(
            f'{source}: "centroids" must be {len(labels)} lists of {3 * bins} numbers '
            f"(one per label, 3 * bins each)"
        )
    size = document.get("image_size_px", DEFAULT_IMAGE_SIZE_PX)
    temperature = document.get("temperature", DEFAULT_TEMPERATURE)
    if not isinstance(size, int) or size < 1:
        raise ModelFileError(f'{source}: "image_size_px" must be a positive integer')
    if not isinstance(temperature, int | float) or temperature <= 0:
        raise ModelFileError(f'{source}: "temperature" must be a positive number')
    return ColorHistogramClassifier(tuple(labels), bins, array, size, float(temperature))
