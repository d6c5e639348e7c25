"""The vision service (color_detector, color-histogram classifier) and the filtered camera."""

from __future__ import annotations

import collections
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sync_helpers import wait_for

from capsync import DataManager, read_capture_file
from capsync.resources import (
    BinaryResult,
    NoCaptureToStore,
    Resource,
    ResourceConfigError,
    ResourceContext,
    build_resource,
)
from capsync.vision.classifier import (
    MODEL_TYPE,
    ModelFileError,
    load_model,
    save_model,
    train,
)
from capsync.vision.color_detector import ColorDetector, hue_name, segments

RED = (230, 20, 20)
SQUARE = (10, 6, 30, 22)  # x_min, y_min, x_max, y_max (max exclusive)
SIZE = (48, 32)


def frame(square: tuple[int, int, int, int] | None = SQUARE, color: Any = RED) -> Image.Image:
    image = Image.new("RGB", SIZE, (250, 250, 250))
    if square is not None:
        x0, y0, x1, y1 = square
        image.paste(color, (x0, y0, x1, y1))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- color_detector ------------------------------------------------------------------------


def detector(**attrs: Any) -> ColorDetector:
    return ColorDetector.from_attributes(
        attrs.pop("detect_color", "#FF0000"), attrs.pop("hue_tolerance_pct", 0.1), **attrs
    )


def test_color_detector_boxes_a_square_and_nothing_in_a_blank_frame() -> None:
    d = detector(segment_size_px=50)
    (found,) = d.detect(np.asarray(frame()))
    assert (found.x_min, found.y_min, found.x_max, found.y_max) == SQUARE
    assert (found.class_name, found.confidence) == ("red", 1.0)
    assert d.detect(np.asarray(frame(None))) == []
    # Another color is not this one; a segment below segment_size_px is dropped.
    assert d.detect(np.asarray(frame(color=(20, 20, 230)))) == []
    assert detector(segment_size_px=321).detect(np.asarray(frame())) == []
    assert len(detector(segment_size_px=320).detect(np.asarray(frame()))) == 1


def test_color_detector_hue_wraps_around_red_and_labels_like_rdk() -> None:
    # #FF0010 has a hue just under 360; pure red (hue 0) is within 10% of it.
    (found,) = detector(detect_color="#FF0010", segment_size_px=50).detect(np.asarray(frame()))
    assert found.class_name == "red"
    assert detector(detect_color="#0000FF", label="sky").label == "sky"
    assert [hue_name(h) for h in (0, 20, 60, 120, 240, 350)] == [
        "red", "orange", "yellow", "green", "blue", "red",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"detect_color": "red"}, "must be a color"),
        ({"detect_color": "#808080"}, "grayscale"),
        ({"detect_color": "#100000"}, "too dark"),
        ({"hue_tolerance_pct": 0.0}, "hue_tolerance_pct"),
        ({"hue_tolerance_pct": 1.5}, "hue_tolerance_pct"),
    ],
)
def test_color_detector_rejects_what_rdk_rejects(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detector(**attrs)


def brute_force_segments(mask: np.ndarray) -> list[tuple[int, tuple[int, int, int, int]]]:
    seen = np.zeros_like(mask)
    out = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        stack, pixels = [(y0, x0)], []
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            pixels.append((y, x))
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                if inside and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        ys, xs = zip(*pixels, strict=True)
        out.append((len(pixels), (min(xs), min(ys), max(xs) + 1, max(ys) + 1)))
    return sorted(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_segments_match_a_flood_fill(height: int, width: int, data: st.DataObject) -> None:
    bits = data.draw(st.lists(st.booleans(), min_size=height * width, max_size=height * width))
    mask = np.array(bits, dtype=bool).reshape(height, width)
    assert sorted(segments(mask)) == brute_force_segments(mask)


# --- the classifier -----------------------------------------------------------------------


def test_classifier_trains_saves_loads_and_classifies(tmp_path: Path) -> None:
    examples = [(frame(None, None), "empty"), (frame(), "red")]
    examples += [(frame((5, 5, 40, 30)), "red"), (frame((0, 0, 4, 4)), "empty")]
    path = save_model(train(examples, bins=4), tmp_path / "model")
    document = json.loads(path.read_text())
    assert document["type"] == MODEL_TYPE
    assert document["labels"] == ["empty", "red"]
    assert np.asarray(document["centroids"]).shape == (2, 12)
    model = load_model(tmp_path / "model")
    best, other = model.classify(frame((8, 4, 38, 28)))
    assert (best.class_name, other.class_name) == ("red", "empty")
    assert best.confidence > 0.5 > other.confidence
    assert abs(best.confidence + other.confidence - 1.0) < 1e-9
    (only,) = model.classify(frame(None), n=1)
    assert only.class_name == "empty"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "other"}, '"type" must be'),
        ({"type": MODEL_TYPE, "labels": [], "bins": 2, "centroids": []}, '"labels"'),
        ({"type": MODEL_TYPE, "labels": ["a"], "bins": 0, "centroids": [[]]}, '"bins"'),
        ({"type": MODEL_TYPE, "labels": ["a"], "bins": 2, "centroids": [[1, 2]]}, "6 numbers"),
    ],
)
def test_bad_model_files_are_named(tmp_path: Path, document: Any, message: str) -> None:
    (tmp_path / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(tmp_path)
    assert str(tmp_path / "model.json") in str(info.value)


# --- the vision service and the filtered camera, as resources -----------------------------


class FrameCamera(Resource):
    """Serves the given frames in turn (PNG)."""

    api = "rdk:component:camera"

    def __init__(self, frames: list[Image.Image]) -> None:
        super().__init__("cam", {}, ResourceContext())
        self.frames = collections.deque(png(f) for f in frames)

    def capture(self, method: str, additional_params: Any = None) -> Any:
        assert method == "ReadImage"
        return BinaryResult(self.frames.popleft(), "image/png")


def machine(resources: dict[str, Resource]) -> ResourceContext:
    def resolve(name: str) -> Resource:
        try:
            return resources[name]
        except KeyError:
            raise LookupError(name) from None

    return ResourceContext(resolve=resolve)


COLOR_DETECTOR = {"detect_color": "#FF0000", "hue_tolerance_pct": 0.1, "segment_size_px": 50}


def test_vision_service_detections_and_classifications_as_tabular(tmp_path: Path) -> None:
    resources: dict[str, Resource] = {"cam": FrameCamera([frame(), frame(None), frame()])}
    context = machine(resources)
    vision = build_resource("rdk:service:vision", "color_detector", "det", COLOR_DETECTOR, context)
    params = {"camera_name": "cam"}
    found = vision.capture("GetDetectionsFromCamera", params)
    width, height = SIZE
    assert found == {
        "detections": [
            {
                "x_min": 10, "y_min": 6, "x_max": 30, "y_max": 22, "confidence": 1.0,
                "class_name": "red", "x_min_normalized": 10 / width,
                "y_min_normalized": 6 / height, "x_max_normalized": 30 / width,
                "y_max_normalized": 22 / height,
            }
        ]
    }  # fmt: skip
    assert vision.capture("GetDetectionsFromCamera", params) == {"detections": []}
    save_model(train([(frame(None), "empty"), (frame(), "red")], bins=4), tmp_path / "m")
    classifier = build_resource(
        "rdk:service:vision",
        "color_histogram_classifier",
        "cls",
        {"model_path": str(tmp_path / "m"), "camera_name": "cam"},
        context,
    )
    (label,) = classifier.capture("GetClassificationsFromCamera", {"n": 1})["classifications"]
    assert label["class_name"] == "red"
    with pytest.raises(ResourceConfigError, match="model_path"):
        build_resource(
            "rdk:service:vision",
            "color_histogram_classifier",
            "bad",
            {"model_path": str(tmp_path / "nope")},
            context,
        )


def filtered(frames: list[Image.Image], **attrs: Any) -> Resource:
    resources: dict[str, Resource] = {"cam": FrameCamera(frames)}
    context = machine(resources)
    resources["det"] = build_resource(
        "rdk:service:vision", "color_detector", "det", COLOR_DETECTOR, context
    )
    attributes = {"camera": "cam", "vision": "det", "objects": {"red": 0.5}, **attrs}
    return build_resource("rdk:component:camera", "filtered", "interesting", attributes, context)


def kept_frames(camera: Resource, n: int) -> list[int]:
    """Which of ``n`` ticks' frames the camera kept, by the index of the frame."""
    kept: list[int] = []
    for tick in range(n):
        try:
            results = camera.capture("ReadImage", {})
        except NoCaptureToStore:
            continue
        # Frames held back come out with their own times, oldest first, then this one.
        times = [r.time_requested_ns for r in results]
        assert times == sorted(times)
        kept.extend(range(tick - len(results) + 1, tick + 1))
    return kept


def test_filtered_camera_keeps_only_frames_with_a_hit() -> None:
    hits = {3, 9}
    frames = [frame() if i in hits else frame(None) for i in range(12)]
    assert kept_frames(filtered(frames), 12) == [3, 9]


def test_filtered_camera_keeps_a_window_around_each_hit() -> None:
    hits = {3, 9}
    frames = [frame() if i in hits else frame(None) for i in range(12)]
    camera = filtered(frames, window_frames_before=2, window_frames_after=1)
    assert kept_frames(camera, 12) == [1, 2, 3, 4, 7, 8, 9, 10]


def test_filtered_camera_on_classifications_with_a_threshold(tmp_path: Path) -> None:
    save_model(train([(frame(None), "empty"), (frame(), "red")], bins=4), tmp_path / "m")
    frames = [frame(None), frame(), frame(None)]
    resources: dict[str, Resource] = {"cam": FrameCamera(frames)}
    context = machine(resources)
    resources["cls"] = build_resource(
        "rdk:service:vision",
        "color_histogram_classifier",
        "cls",
        {"model_path": str(tmp_path / "m")},
        context,
    )
    attributes = {"camera": "cam", "vision": "cls", "classifications": {"red": 0.6}}
    camera = build_resource("rdk:component:camera", "filtered", "f", attributes, context)
    assert kept_frames(camera, 3) == [1]


def test_filtered_camera_needs_labels() -> None:
    with pytest.raises(ResourceConfigError, match="classifications"):
        filtered([], objects={})


# --- through the data manager: capture files ---------------------------------------------


def write_frames(folder: Path, hits: set[int], n: int) -> None:
    folder.mkdir()
    for i in range(n):
        (frame() if i in hits else frame(None)).save(folder / f"frame{i:02d}.png")


def dm_config(capture_dir: Path, frames_dir: Path) -> dict[str, Any]:
    def methods(*entries: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"type": "data_manager", "attributes": {"capture_methods": list(entries)}}]

    return {
        "components": [
            {"name": "cam", "type": "camera", "model": "image_dir",
             "attributes": {"path": str(frames_dir), "loop": False}},
            {"name": "interesting", "type": "camera", "model": "filtered",
             "attributes": {"camera": "cam2", "vision": "det", "objects": {"red": 0.5}},
             "service_configs": methods(
                 {"method": "ReadImage", "capture_frequency_hz": 40,
                  "additional_params": {"mime_type": "image/png"}})},
            {"name": "cam2", "type": "camera", "model": "image_dir",
             "attributes": {"path": str(frames_dir), "loop": False}},
        ],
        "services": [
            {"name": "dm", "type": "data_manager", "attributes": {"capture_dir": str(capture_dir)}},
            {"name": "det", "type": "vision", "model": "color_detector",
             "attributes": COLOR_DETECTOR,
             "service_configs": methods(
                 {"method": "CaptureAllFromCamera", "capture_frequency_hz": 40,
                  "additional_params": {"camera_name": "cam", "mime_type": "image/png",
                                        "min_confidence_score": 0.5}})},
        ],
    }  # fmt: skip


def test_capture_all_from_camera_and_filtered_camera_files(tmp_path: Path) -> None:
    from viam.gen.app.datasync.v1 import data_sync_pb2 as viam_sync

    frames_dir, capture_dir = tmp_path / "frames", tmp_path / "capture"
    hits, n = {1, 4}, 6
    write_frames(frames_dir, hits, n)
    with DataManager.from_config(dm_config(capture_dir, frames_dir)) as dm:

        def done() -> bool:  # both cameras ran out of frames (loop: false)
            stats = dm.stats()
            return all(
                stats[k].finished for k in ("det/CaptureAllFromCamera", "interesting/ReadImage")
            )

        assert wait_for(done)
        stats = dm.stats()
    assert stats["interesting/ReadImage"].errors == 0  # frames without a hit are no error

    folder = capture_dir / "rdk_service_vision" / "det" / "CaptureAllFromCamera"
    files = sorted(folder.glob("*.capture"))
    assert len(files) == n
    boxes = []
    for path in files:
        header, (record,) = read_capture_file(path)
        assert (header.file_extension, header.mime_type) == ("", "image/png")
        viam_record = viam_sync.SensorData.FromString(record.SerializeToString())
        boxes.append([(b.label, b.confidence) for b in viam_record.metadata.annotations.bboxes])
        if boxes[-1]:
            (box,) = viam_record.metadata.annotations.bboxes
            width, height = SIZE
            assert (box.x_min_normalized, box.y_max_normalized) == (10 / width, 22 / height)
    assert boxes == [[("red", 1.0)] if i in hits else [] for i in range(n)]

    kept = sorted((capture_dir / "rdk_component_camera" / "interesting" / "ReadImage").iterdir())
    assert [next(read_capture_file(p)[1]).binary for p in kept] == [
        (frames_dir / f"frame{i:02d}.png").read_bytes() for i in sorted(hits)
    ]


def test_features_are_the_training_scripts() -> None:
    """The description ``examples/train_color_classifier.py`` (capsync train) computes."""
    from capsync.vision.classifier import features

    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 256, (50, 90, 3), dtype=np.uint8))
    bins = 6
    pixels = np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.uint8)
    expected = np.concatenate(
        [np.histogram(pixels[:, :, c], bins=bins, range=(0, 256))[0] / (64 * 64) for c in range(3)]
    )
    assert np.array_equal(features(image, bins), expected)


def test_a_python_vision_model_from_the_registry() -> None:
    from viam.gen.app.datasync.v1 import data_sync_pb2 as viam_sync

    from capsync.resources import VisionModel, register, unregister
    from capsync.vision import Classification, Detection

    @register("rdk:service:vision", "acme:vision:ripeness")
    class Ripeness(VisionModel):
        def detections(self, image: Any) -> list[Detection]:
            return [Detection(0, 0, image.width // 2, image.height, 0.7, "fruit")]

        def classifications(self, image: Any, n: int = 0) -> list[Classification]:
            return [Classification("ripe", 0.9), Classification("rotten", 0.05)][: n or None]

    try:
        resources: dict[str, Resource] = {"cam": FrameCamera([frame()])}
        context = machine(resources)
        vision = build_resource(
            "rdk:service:vision", "acme:vision:ripeness", "ripe", {"camera_name": "cam"}, context
        )
        result = vision.capture("CaptureAllFromCamera", {"min_confidence_score": "0.1"})
        assert result.payload == png(frame()) and result.mime_type == "image/png"
        annotations = viam_sync.SensorMetadata.FromString(
            b"\x22" + bytes([len(result.annotations)]) + result.annotations
        ).annotations
        (box,) = annotations.bboxes
        assert (box.label, box.x_max_normalized, box.y_max_normalized) == ("fruit", 0.5, 1.0)
        assert [(c.label, c.confidence) for c in annotations.classifications] == [("ripe", 0.9)]
    finally:
        unregister("rdk:service:vision", "acme:vision:ripeness")


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        (
            {"detect_color": "red"},
            """'detect_color' must be a color such as "#FF0000", got 'red'""",
        ),
        (
            {"hue_tolerance_pct": 2},
            "'hue_tolerance_pct' must be more than 0 and at most 1, got 2.0",
        ),
        ({"segment_size_px": "big"}, "'segment_size_px' must be an integer >= 0, got 'big'"),
    ],
)
def test_bad_color_detector_attributes_name_the_key(attrs: dict[str, Any], message: str) -> None:
    with pytest.raises(ResourceConfigError) as info:
        build_resource("rdk:service:vision", "color_detector", "det", {**COLOR_DETECTOR, **attrs})
    assert str(info.value) == f"vision 'det' (model rdk:builtin:color_detector): {message}"


def test_a_model_from_the_training_example_script_loads_and_classifies(tmp_path: Path) -> None:
    """The format agreed with ``capsync train``: examples/train_color_classifier.py writes it."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "examples" / "train_color_classifier.py"
    lines = []
    for i, (square, label) in enumerate([(SQUARE, "red"), (None, "empty")] * 3):
        path = tmp_path / f"img{i}.png"
        frame(square).save(path)
        entry = {
            "image_path": str(path),
            "classification_annotations": [{"annotation_label": label}],
        }
        lines.append(json.dumps(entry))
    (tmp_path / "dataset.jsonl").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, str(script), f"--dataset_file={tmp_path / 'dataset.jsonl'}",
         f"--model_output_directory={tmp_path / 'model'}", "--bins=4"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    model = load_model(tmp_path / "model")
    assert model.labels == ("empty", "red")
    assert model.classify(frame((12, 8, 32, 24)), n=1)[0].class_name == "red"
    assert model.classify(frame(None), n=1)[0].class_name == "empty"
