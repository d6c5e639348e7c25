"""A dataset of annotated images as Viam's training scripts read it (SPEC §9).

``<out>/dataset.jsonl`` holds one JSON object per image::

    {"image_path": "<out>/images/<id>.jpeg",
     "classification_annotations": [{"annotation_label": "red"}],
     "bounding_box_annotations": [{"annotation_label": "cup", "x_min_normalized": 0.1,
                                   "y_min_normalized": 0.2, "x_max_normalized": 0.5,
                                   "y_max_normalized": 0.6}]}

and the images sit under ``<out>/images/``. Classification labels are the
image's classifications and its tags (Viam's training takes tags as labels),
each once. ``image_path`` is absolute, as in the files Viam's cloud hands a
training script.

The records come from :func:`dataset_records`, the one place that knows how
a dataset's images are found in the store.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capsync.server.blobs import UnsafePathError, check_extension
from capsync.server.stores.base import BlobRecord, ItemFilter, Store

DATASET_FILE = "dataset.jsonl"
IMAGES_FOLDER = "images"
_BOX_KEYS = ("x_min_normalized", "y_min_normalized", "x_max_normalized", "y_max_normalized")


def dataset_records(store: Store, dataset_id: str) -> Iterator[BlobRecord]:
    """The binary records in dataset ``dataset_id``, oldest first, with their annotations."""
    for record in store.query(ItemFilter(kind="binary")):
        if isinstance(record, BlobRecord) and dataset_id in record.dataset_ids:
            yield record


def classification_labels(record: BlobRecord) -> list[str]:
    """The labels of an image: its classifications, then its tags, each once."""
    labels: dict[str, None] = {}
    for item in record.annotations.get("classifications") or []:
        label = item.get("label", "")
        if label:
            labels[label] = None
    for tag in record.tags:
        labels[tag] = None
    return list(labels)


def bounding_boxes(record: BlobRecord) -> list[dict[str, Any]]:
    boxes = []
    for box in record.annotations.get("bboxes") or []:
        entry: dict[str, Any] = {"annotation_label": box.get("label", "")}
        for key in _BOX_KEYS:
            entry[key] = float(box.get(key, 0.0))  # protobuf's JSON leaves out zeros
        boxes.append(entry)
    return boxes


def dataset_line(record: BlobRecord, image_path: str) -> dict[str, Any]:
    return {
        "image_path": image_path,
        "classification_annotations": [
            {"annotation_label": label} for label in classification_labels(record)
        ],
        "bounding_box_annotations": bounding_boxes(record),
    }


@dataclass
class DatasetResult:
    dataset_file: Path
    images: int = 0
    missing: list[str] = field(default_factory=list)  # ids whose payload file was gone
    failed: dict[str, str] = field(default_factory=dict)  # id -> why it could not be written


def export_dataset(
    store: Store,
    dataset_id: str,
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
) -> DatasetResult:
    """Copy the images of ``dataset_id`` to ``out/images`` and write ``out/dataset.jsonl``."""
    root = Path(data_dir).absolute()
    target = Path(out).absolute()
    images = target / IMAGES_FOLDER
    images.mkdir(parents=True, exist_ok=True)
    result = DatasetResult(dataset_file=target / DATASET_FILE)
    with open(result.dataset_file, "w", encoding="utf-8") as stream:
        for record in dataset_records(store, dataset_id):
            try:
                extension = check_extension(record.file_extension)
            except UnsafePathError:
                extension = ""
            destination = images / f"{record.id}{extension}"
            try:
                shutil.copyfile(root.joinpath(*record.path.split("/")), destination)
            except FileNotFoundError:
                result.missing.append(record.id)
                continue
            except OSError as exc:  # one image that cannot be written does not stop the export
                result.failed[record.id] = f"{destination.name}: {exc.strerror or exc}"
                continue
            stream.write(json.dumps(dataset_line(record, str(destination))) + "\n")
            result.images += 1
    return result
