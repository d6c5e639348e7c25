"""Train a color classifier on a capsync/Viam dataset: no downloaded weights, numpy + Pillow.

Run as Viam's training service (or ``capsync train``) runs a script::

    python examples/train_color_classifier.py --dataset_file=DIR/dataset.jsonl \
        --model_output_directory=MODEL_DIR [--bins=8]

Each image is resized to 64x64 and described by its normalized R, G and B
histograms (``bins`` bins per channel, each histogram summing to 1, the three
concatenated). The model is one centroid per label, the mean description of
the images with that label (an image with several labels counts for each).
It is written as ``MODEL_DIR/model.json``::

    {"type": "capsync.color_histogram_classifier", "labels": [...], "bins": N,
     "centroids": [[...], ...]}

which the vision service's classifier model loads; a new image is classified
as the label of the nearest centroid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

MODEL_TYPE = "capsync.color_histogram_classifier"
IMAGE_SIDE = 64


def describe(image: Image.Image, bins: int) -> np.ndarray:
    """The concatenated normalized per-channel histograms of ``image`` at 64x64."""
    pixels = np.asarray(image.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE)), dtype=np.uint8)
    parts = []
    for channel in range(3):
        counts, _ = np.histogram(pixels[:, :, channel], bins=bins, range=(0, 256))
        parts.append(counts / counts.sum())
    return np.concatenate(parts)


def train(dataset_file: Path, bins: int) -> dict:
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    with open(dataset_file, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            entry = json.loads(line)
            labels = [a["annotation_label"] for a in entry.get("classification_annotations", [])]
            if not labels:
                continue
            image_path = Path(entry["image_path"])
            if not image_path.is_absolute():
                image_path = dataset_file.parent / image_path
            with Image.open(image_path) as image:
                features = describe(image, bins)
            for label in labels:
                sums[label] = sums.get(label, 0) + features
                counts[label] = counts.get(label, 0) + 1
    labels = sorted(sums)
    return {
        "type": MODEL_TYPE,
        "labels": labels,
        "bins": bins,
        "centroids": [(sums[label] / counts[label]).tolist() for label in labels],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_file", required=True, type=Path)
    parser.add_argument("--model_output_directory", required=True, type=Path)
    parser.add_argument("--bins", type=int, default=8)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring arguments: {' '.join(unknown)}", file=sys.stderr)
    model = train(args.dataset_file, args.bins)
    if not model["labels"]:
        print(f"{args.dataset_file}: no labelled images to train on", file=sys.stderr)
        return 1
    args.model_output_directory.mkdir(parents=True, exist_ok=True)
    target = args.model_output_directory / "model.json"
    target.write_text(json.dumps(model), encoding="utf-8")
    print(f"trained {len(model['labels'])} labels: {', '.join(model['labels'])} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
