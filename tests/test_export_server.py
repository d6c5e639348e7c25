"""``capsync data export --format mcap|parquet``, ``--dataset`` and ``capsync train``,
on a data dir filled through a real server."""

from __future__ import annotations

import io
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from mcap.reader import make_reader
from PIL import Image
from server_fixtures import (
    AUTH,
    binary_request,
    run_capsync,
    start_server,
    tabular_request,
    write_keys,
)

from capsync.cli import main
from capsync.proto import data_sync_pb2
from capsync.server.query import open_store
from capsync.server.stores.base import BlobRecord, ItemFilter, TabularRecord

pytestmark = pytest.mark.wire_independent

S = 1_000_000_000
T0 = 1_714_564_800 * S
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATASET = "ds-colors"
RED, BLUE = (220, 30, 20), (20, 40, 230)


def _jpeg(color: tuple[int, int, int], seed: int) -> bytes:
    """A noisy image of mostly ``color``, so no two are alike."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(color, 25, size=(48, 64, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG")
    return out.getvalue()


def _thermo(i: int) -> dict[str, Any]:
    return {"readings": {"temp": 20.5 + i, "unit": "C", "probe": {"ok": i % 2 == 0, "v": -i}}}


def _image_request(payload: bytes, ns: int, label: str, box: bool) -> Any:
    request = binary_request(payload, ns, tags=[label], dataset_ids=[DATASET])
    annotations = request.sensor_contents[0].metadata.annotations
    if box:
        annotations.bboxes.add(
            id="b1",
            label=f"{label}-blob",
            x_min_normalized=0.0,
            y_min_normalized=0.25,
            x_max_normalized=0.5,
            y_max_normalized=1.0,
        )
        annotations.classifications.add(label="bright")
        annotations.classifications.add(label=label)  # also a tag: listed once
    return request


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("exports")
    keys = write_keys(tmp_path / "keys.json")
    server = start_server(tmp_path / "data", tmp_path, keys_file=keys)
    try:
        stub = server.stub()
        requests = [
            tabular_request([(T0 + i * S, _thermo(i)) for i in range(40)], tags=["lab"]),
            tabular_request([(T0 + i * S, _thermo(i)) for i in range(5)], part_id="part-2"),
            tabular_request(
                [(T0 + i * S + 1, {"x": i * 0.5, "y": -1.0}) for i in range(30)],
                component_type="rdk:component:movement_sensor",
                component_name="imu",
                method_name="LinearAcceleration",
            ),
        ]
        for i in range(6):
            color, label = (RED, "red") if i % 2 == 0 else (BLUE, "blue")
            requests.append(_image_request(_jpeg(color, i), T0 + i * S, label, box=i == 0))
        requests.append(binary_request(_jpeg(RED, 99), T0 + 50 * S, tags=["red"]))  # no dataset
        png = binary_request(b"\x89PNG\r\n\x1a\nnot really", T0 + 51 * S, file_extension="")
        png.sensor_contents[0].metadata.mime_type = data_sync_pb2.MIME_TYPE_IMAGE_PNG
        requests.append(png)
        for request in requests:
            stub.DataCaptureUpload(request, metadata=AUTH, timeout=10)
    finally:
        assert server.stop() == 0
    return server.data_dir


def _records(data_dir: Path, **criteria: Any) -> list[Any]:
    with open_store(data_dir) as store:
        return list(store.query(ItemFilter(**criteria)))


# --- MCAP ----------------------------------------------------------------------------


def test_data_export_mcap_matches_the_store(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.mcap"
    assert (
        main(["data", "export", "--data", str(data_dir), "--format", "mcap", "--out", str(out)])
        == 0
    )
    records = _records(data_dir)
    expected: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for record in records:
        expected[record.part_id, record.component_name, record.method_name].append(record)
    with open(out, "rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        messages = list(reader.iter_messages(log_time_order=False))
    topics = {c.topic for c in summary.channels.values()}
    assert topics == {f"/{p}/{c}/{m}" for p, c, m in expected}
    assert summary.statistics.message_count == len(records)
    got: dict[str, list[Any]] = defaultdict(list)
    for _, channel, message in messages:
        got[channel.topic].append(message)
    for (part, component, method), rows in expected.items():
        found = sorted(got[f"/{part}/{component}/{method}"], key=lambda m: m.sequence)
        assert [m.log_time for m in found] == [r.time_received_ns for r in rows]
        assert [m.publish_time for m in found] == [r.time_requested_ns for r in rows]
        for message, record in zip(found, rows, strict=True):
            if isinstance(record, TabularRecord):
                assert json.loads(message.data) == record.data
            else:
                image = CompressedImage.FromString(message.data)
                payload = data_dir.joinpath(*record.path.split("/")).read_bytes()
                assert image.data == payload
                assert image.format == ("png" if record.mime_type == "image/png" else "jpeg")


def test_data_export_mcap_filters(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "imu.mcap"
    assert (
        main(
            [
                "data",
                "export",
                "--data",
                str(data_dir),
                "--format",
                "mcap",
                "--component",
                "imu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with open(out, "rb") as stream:
        summary = make_reader(stream).get_summary()
    assert [c.topic for c in summary.channels.values()] == ["/part-1/imu/LinearAcceleration"]
    assert summary.statistics.message_count == 30


# --- Parquet -------------------------------------------------------------------------


def test_data_export_parquet_reads_back_in_duckdb(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "parquet"
    assert (
        main(["data", "export", "--data", str(data_dir), "--format", "parquet", "--out", str(out)])
        == 0
    )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert files == [
        "part-1/rdk_component_movement_sensor/imu/LinearAcceleration.parquet",
        "part-1/rdk_component_sensor/thermo/Readings.parquet",
        "part-2/rdk_component_sensor/thermo/Readings.parquet",
    ]
    thermo = duckdb.sql(
        f"SELECT * FROM read_parquet('{out}/part-1/rdk_component_sensor/thermo/Readings.parquet')"
        " ORDER BY time_requested"
    )
    columns = thermo.columns
    rows = thermo.fetchall()
    assert columns[:7] == [
        "time_requested",
        "time_received",
        "part_id",
        "component_type",
        "component_name",
        "method_name",
        "tags",
    ]
    assert set(columns[7:]) == {
        "readings.temp",
        "readings.unit",
        "readings.probe.ok",
        "readings.probe.v",
    }
    types = dict(zip(columns, thermo.types, strict=True))
    assert str(types["readings.temp"]) == "DOUBLE"
    assert str(types["readings.probe.ok"]) == "BOOLEAN"
    assert str(types["time_requested"]) in ("TIMESTAMPTZ_NS", "TIMESTAMP WITH TIME ZONE")
    stored = [r for r in _records(data_dir, part_id="part-1", component="thermo")]
    assert len(rows) == len(stored) == 40
    epoch_ns = duckdb.sql(
        f"SELECT epoch_ns(time_requested), epoch_ns(time_received) FROM read_parquet("
        f"'{out}/part-1/rdk_component_sensor/thermo/Readings.parquet') ORDER BY 1"
    ).fetchall()
    for row, times, record in zip(rows, epoch_ns, stored, strict=True):
        values = dict(zip(columns, row, strict=True))
        assert times == (record.time_requested_ns, record.time_received_ns)
        assert values["tags"] == list(record.tags)
        assert values["component_name"] == "thermo"
        reading = record.data["readings"]
        assert values["readings.temp"] == reading["temp"]
        assert values["readings.unit"] == reading["unit"]
        assert values["readings.probe.ok"] == reading["probe"]["ok"]
        assert values["readings.probe.v"] == reading["probe"]["v"]
    total = duckdb.sql(
        f"SELECT count(*), sum(\"x\") FROM read_parquet('{out}/**/*.parquet', union_by_name=true)"
    ).fetchall()[0]
    assert total[0] == 75 and math.isclose(total[1], sum(i * 0.5 for i in range(30)))


def test_parquet_schema_change_starts_a_new_file(tmp_path: Path) -> None:
    from capsync.export.parquet_export import export_parquet

    def record(i: int, data: dict[str, Any]) -> TabularRecord:
        return TabularRecord(
            id=str(i),
            upload_id="u",
            part_id="p",
            component_type="rdk:component:sensor",
            component_name="s",
            method_name="Readings",
            tags=(),
            time_requested_ns=i,
            time_received_ns=i + 1,
            mime_type="",
            data=data,
        )

    records = [record(i, {"readings": {"a": float(i)}}) for i in range(5)]
    records += [record(5 + i, {"readings": {"a": 1.0, "b": "new"}}) for i in range(3)]
    records += [record(8, {"readings": {"a": 2.0}})]
    result = export_parquet(records, tmp_path, batch_rows=2)
    assert [p.name for p in result.files] == ["Readings.parquet", "Readings.1.parquet"]
    rows = duckdb.sql(
        f'SELECT time_requested, "readings.a", "readings.b" FROM read_parquet('
        f"'{tmp_path}/**/*.parquet', union_by_name=true) ORDER BY time_requested"
    ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [
        (0.0, None),
        (1.0, None),
        (2.0, None),
        (3.0, None),
        (4.0, None),
        (1.0, "new"),
        (1.0, "new"),
        (1.0, "new"),
        (2.0, None),
    ]


# --- datasets and training -----------------------------------------------------------


def test_dataset_export_matches_annotations(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert (
        main(["data", "export", "--data", str(data_dir), "--dataset", DATASET, "--out", str(out)])
        == 0
    )
    lines = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]
    members = [r for r in _records(data_dir, kind="binary") if DATASET in r.dataset_ids]
    assert len(lines) == len(members) == 6
    for line, record in zip(lines, members, strict=True):
        assert isinstance(record, BlobRecord)
        image = Path(line["image_path"])
        assert image.is_absolute() and image.parent == out / "images"
        assert image.read_bytes() == data_dir.joinpath(*record.path.split("/")).read_bytes()
        label = record.tags[0]
        if record.time_requested_ns == T0:
            assert line["classification_annotations"] == [
                {"annotation_label": "bright"},
                {"annotation_label": label},
            ]
            assert line["bounding_box_annotations"] == [
                {
                    "annotation_label": f"{label}-blob",
                    "x_min_normalized": 0.0,
                    "y_min_normalized": 0.25,
                    "x_max_normalized": 0.5,
                    "y_max_normalized": 1.0,
                }
            ]
        else:
            assert line["classification_annotations"] == [{"annotation_label": label}]
            assert line["bounding_box_annotations"] == []


def test_a_dataset_image_that_cannot_be_written_is_reported_and_the_rest_exported(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    args = ["data", "export", "--data", str(data_dir), "--dataset", DATASET, "--out", str(out)]
    assert main(args) == 0
    images = sorted((out / "images").iterdir())
    blocked = images[0]
    blocked.unlink()
    blocked.mkdir()  # that image can no longer be written there
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"item {blocked.stem} not exported" in err and "1 failed" in err
    lines = [json.loads(line) for line in (out / "dataset.jsonl").read_text().splitlines()]
    assert len(lines) == len(images) - 1
    assert str(blocked) not in {line["image_path"] for line in lines}


def _classify(model_dir: Path, image: Image.Image) -> str:
    """The tiny reader of model.json (the format agreed with the vision service)."""
    model = json.loads((model_dir / "model.json").read_text())
    assert model["type"] == "capsync.color_histogram_classifier"
    bins = model["bins"]
    pixels = np.asarray(image.convert("RGB").resize((64, 64)))
    hist = np.concatenate(
        [np.histogram(pixels[:, :, c], bins=bins, range=(0, 256))[0] / (64 * 64) for c in range(3)]
    )
    distances = [np.linalg.norm(hist - np.array(c)) for c in model["centroids"]]
    return str(model["labels"][int(np.argmin(distances))])


def test_train_runs_the_example_script_and_its_model_classifies(
    data_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    script = EXAMPLES / "train_color_classifier.py"
    done = run_capsync(
        "train",
        "--data",
        str(data_dir),
        "--dataset",
        DATASET,
        "--script",
        str(script),
        "--args",
        "bins=6",
        "--out",
        str(model_dir),
    )
    assert done.returncode == 0, done.stderr
    assert "trained 3 labels: blue, bright, red" in done.stdout
    model = json.loads((model_dir / "model.json").read_text())
    assert model["bins"] == 6 and model["labels"] == ["blue", "bright", "red"]
    # "bright" was given to one red image only: drop it to classify red against blue.
    del model["centroids"][1], model["labels"][1]
    (model_dir / "model.json").write_text(json.dumps(model))
    assert all(len(c) == 18 and math.isclose(sum(c), 3.0) for c in model["centroids"])
    for seed in range(100, 106):
        for color, label in ((RED, "red"), (BLUE, "blue")):
            image = Image.open(io.BytesIO(_jpeg(color, seed)))
            assert _classify(model_dir, image) == label


def test_train_passes_arguments_and_returns_the_exit_code(data_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text(
        "import sys, json\n"
        "print(json.dumps(sys.argv[1:]))\n"
        "lines = open(sys.argv[1].split('=', 1)[1]).read().splitlines()\n"
        "print(len(lines), 'images', flush=True)\n"
        "sys.exit(3)\n"
    )
    model_dir = tmp_path / "m"
    done = run_capsync(
        "train",
        "--data",
        str(data_dir),
        "--dataset",
        DATASET,
        "--script",
        str(script),
        "--args",
        "epochs=2,lr=0.1",
        "--out",
        str(model_dir),
    )
    assert done.returncode == 3
    argv = json.loads(done.stdout.splitlines()[0])
    assert argv[0].startswith("--dataset_file=") and argv[0].endswith("/dataset.jsonl")
    assert argv[1:] == [f"--model_output_directory={model_dir}", "--epochs=2", "--lr=0.1"]
    assert done.stdout.splitlines()[1] == "6 images"


def test_train_bad_input_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    for args, needle in (
        (["--script", str(tmp_path / "missing.py")], "missing.py"),
        (["--script", str(EXAMPLES / "train_color_classifier.py"), "--args", "nokey"], "--args"),
    ):
        done = run_capsync(
            "train",
            "--data",
            str(data_dir),
            "--dataset",
            DATASET,
            "--out",
            str(tmp_path / "o"),
            *args,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], done.stderr


def test_example_script_standalone(tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    with open(tmp_path / "dataset.jsonl", "w") as out:
        for i in range(4):
            color, label = (RED, "red") if i % 2 else (BLUE, "blue")
            path = images / f"{i}.jpeg"
            path.write_bytes(_jpeg(color, i))
            out.write(
                json.dumps(
                    {
                        "image_path": f"imgs/{i}.jpeg",
                        "classification_annotations": [{"annotation_label": label}],
                        "bounding_box_annotations": [],
                    }
                )
            )
            out.write("\n")
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "train_color_classifier.py"),
            f"--dataset_file={tmp_path / 'dataset.jsonl'}",
            f"--model_output_directory={tmp_path / 'model'}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert _classify(tmp_path / "model", Image.open(io.BytesIO(_jpeg(RED, 50)))) == "red"


def test_export_format_mistakes_are_one_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, message, code in (
        (["data", "list", "--data", str(data_dir), "--format", "mcap"],
         "--format mcap is for data export", 2),
        (["data", "export", "--data", str(data_dir), "--format", "parquet", "--type", "binary",
          "--out", str(tmp_path / "p")],
         "--format parquet: only tabular readings go to Parquet (--type tabular)", 2),
        # data_cmd's own handling of a missing store (exit 1, like data list/export)
        (["data", "export", "--data", str(tmp_path / "nowhere"), "--format", "mcap",
          "--out", str(tmp_path / "x.mcap")],
         "no capsync data here", 1),
    ):  # fmt: skip
        assert main(argv) == code
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "x.mcap").exists()


def test_parquet_reads_with_pyarrow(data_dir: Path, tmp_path: Path) -> None:
    """pandas and polars read Parquet through pyarrow's reader (or one like it)."""
    import pyarrow.parquet as pq

    out = tmp_path / "pq"
    assert main(["data", "export", "--data", str(data_dir), "--format", "parquet",
                 "--component", "imu", "--out", str(out)]) == 0  # fmt: skip
    table = pq.read_table(
        out / "part-1/rdk_component_movement_sensor/imu/LinearAcceleration.parquet"
    )
    assert table.num_rows == 30
    assert table.column("x").to_pylist() == [i * 0.5 for i in range(30)]
    assert table.column("y").to_pylist() == [-1.0] * 30
    assert table.column("component_name").to_pylist() == ["imu"] * 30
