"""Capture from a remote part served by Viam's own Python SDK (tests/viam_peer.py)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import viam_peer as peer
from google.protobuf import json_format
from server_fixtures import run_capsync, subprocess_env
from sync_helpers import wait_for

from capsync import DataManager, read_capture_file

PEER_SCRIPT = Path(__file__).with_name("viam_peer.py")
REMOTE = "lab"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Peer:
    """The SDK remote in a subprocess; restartable on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER_SCRIPT), str(self.port)],
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(self._accepts, 30.0, 0.05), "the viam-sdk peer did not start"

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(name="remote_peer")
def remote_peer_fixture() -> Iterator[Peer]:
    p = Peer(free_port())
    p.start()
    try:
        yield p
    finally:
        p.kill()


def method(full_name: str, name: str, hz: float = 4.0, **params: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": full_name, "method": name, "capture_frequency_hz": hz}
    if params:
        entry["additional_params"] = params
    return entry


def remote_config(port: int, capture_dir: Path, methods: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "services": [
            {"name": "dm", "type": "data_manager", "attributes": {"capture_dir": str(capture_dir)}}
        ],
        "remotes": [
            {
                "name": REMOTE,
                "address": f"127.0.0.1:{port}",
                "insecure": True,
                # viam-sdk's server serves no AuthService: capsync calls it without a token.
                "auth": {
                    "entity": "key-id",
                    "credentials": {"type": "api-key", "payload": "key-secret"},
                },
                "service_configs": [
                    {"type": "data_manager", "attributes": {"capture_methods": methods}}
                ],
            }
        ],
    }


def records(capture_dir: Path, folder: str) -> tuple[list[Any], list[Any]]:
    """(headers, records) of every capture file under ``capture_dir/folder``."""
    headers, out = [], []
    for path in sorted((capture_dir / folder).glob("*.capture")):
        header, recs = read_capture_file(path)
        headers.append(header)
        out.extend(recs)
    return headers, out


def struct_of(record: Any) -> dict[str, Any]:
    return json_format.MessageToDict(record.struct)


SENSOR = "rdk:component:sensor/thermo"
BOARD = "rdk:component:board/esp32"
CAMERA = "rdk:component:camera/cam"
GPS = "rdk:component:movement_sensor/gps"
VISION = "rdk:service:vision/detector"


@pytest.mark.slow
def test_capsync_run_captures_every_remote_method(remote_peer: Peer, tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    gps_methods = ["Position", "LinearVelocity", "AngularVelocity", "LinearAcceleration",
                   "CompassHeading", "Orientation", "Readings"]  # fmt: skip
    methods = [
        method(SENSOR, "Readings"),
        method(SENSOR, "DoCommand", docommand_input={"ping": "pong"}),
        method(BOARD, "Analogs", reader_name="A1"),
        method(BOARD, "Gpios", pin_name="27"),
        method("rdk:component:sensor/missing", "Readings"),  # the remote fails this one
        method(CAMERA, "ReadImage", mime_type="image/jpeg"),
        method(CAMERA, "GetImages"),
        method(CAMERA, "NextPointCloud"),
        *(method(GPS, m) for m in gps_methods),
        method(VISION, "CaptureAllFromCamera", camera_name="cam", min_confidence_score=0.5),
        method(VISION, "GetDetectionsFromCamera", camera_name="cam"),
        method(VISION, "GetClassificationsFromCamera", camera_name="cam", n=1),
    ]
    config = tmp_path / "robot.json"
    config.write_text(json.dumps(remote_config(remote_peer.port, capture_dir, methods)))
    result = run_capsync("run", str(config), "--duration", "2.5", "--quiet")
    assert result.returncode == 0, result.stderr

    def tabular(folder: str) -> list[dict[str, Any]]:
        headers, recs = records(capture_dir, folder)
        assert recs, f"nothing captured in {folder}"
        api, name, method_name = folder.split("/")
        for h in headers:
            assert (h.component_type, h.component_name, h.method_name) == (
                api.replace("_", ":", 2),
                name,
                method_name,
            )
            assert h.file_extension == ".dat"
        return [struct_of(r) for r in recs]

    expected_readings = {"readings": {**peer.READINGS, "from_dm": True}}
    assert all(s == expected_readings for s in tabular("rdk_component_sensor/thermo/Readings"))
    assert all(
        s == {"docommand_output": {"echo": {"ping": "pong"}, "sensor": "thermo"}}
        for s in tabular("rdk_component_sensor/thermo/DoCommand")
    )
    assert all(s == peer.ANALOG for s in tabular("rdk_component_board/esp32/Analogs"))
    assert all(s == {"high": True} for s in tabular("rdk_component_board/esp32/Gpios"))
    # The remote has no sensor "missing": nothing stored for it, everything else captured.
    assert not list(capture_dir.glob("rdk_component_sensor/missing/Readings/*.capture"))
    assert "missing/Readings" in result.stderr
    gps = "rdk_component_movement_sensor/gps/"
    assert all(s == peer.POSITION for s in tabular(gps + "Position"))
    assert all(
        s == {"linear_velocity": peer.LINEAR_VELOCITY} for s in tabular(gps + "LinearVelocity")
    )
    assert all(
        s == {"angular_velocity": peer.ANGULAR_VELOCITY} for s in tabular(gps + "AngularVelocity")
    )
    assert all(
        s == {"linear_acceleration": peer.LINEAR_ACCELERATION}
        for s in tabular(gps + "LinearAcceleration")
    )
    assert all(s == {"value": peer.COMPASS_HEADING} for s in tabular(gps + "CompassHeading"))
    assert all(s == {"orientation": peer.ORIENTATION} for s in tabular(gps + "Orientation"))
    assert all(
        s == {"readings": {"compass": peer.COMPASS_HEADING, "from_dm": True}}
        for s in tabular(gps + "Readings")
    )
    detections = [
        {"x_min": a, "y_min": b, "x_max": c, "y_max": d, "confidence": conf, "class_name": label}
        for a, b, c, d, conf, label in peer.DETECTIONS
    ]
    vision = "rdk_service_vision/detector/"
    assert all(s == {"detections": detections} for s in tabular(vision + "GetDetectionsFromCamera"))
    assert all(
        s == {"classifications": [{"class_name": "cat", "confidence": 0.75}]}
        for s in tabular(vision + "GetClassificationsFromCamera")
    )

    # Binary methods: one file per reading, with the remote's exact bytes.
    headers, recs = records(capture_dir, "rdk_component_camera/cam/ReadImage")
    assert recs and all(r.binary == peer.jpeg_frame() for r in recs)
    assert all((h.file_extension, h.mime_type) == (".jpeg", "image/jpeg") for h in headers)
    headers, recs = records(capture_dir, "rdk_component_camera/cam/GetImages")
    assert {r.binary for r in recs} == {peer.png_frame(), peer.jpeg_frame()}
    headers, recs = records(capture_dir, "rdk_component_camera/cam/NextPointCloud")
    assert recs and all(r.binary == peer.POINT_CLOUD for r in recs)
    assert all(h.file_extension == ".pcd" for h in headers)


@pytest.mark.slow
def test_capture_all_from_remote_vision_decodes_with_viams_classes(
    remote_peer: Peer, tmp_path: Path
) -> None:
    from viam.gen.app.datasync.v1 import data_sync_pb2 as viam_sync

    from capsync.wire._wire_py import read_varint

    capture_dir = tmp_path / "capture"
    methods = [method(VISION, "CaptureAllFromCamera", 10.0, camera_name="cam",
                      min_confidence_score="0.5")]  # fmt: skip
    with DataManager.from_config(remote_config(remote_peer.port, capture_dir, methods)) as dm:
        assert wait_for(lambda: dm.stats()["detector/CaptureAllFromCamera"].files >= 2)
    files = sorted((capture_dir / "rdk_service_vision/detector/CaptureAllFromCamera").iterdir())
    assert files
    width, height = peer.IMAGE_SIZE
    for path in files:
        data = path.read_bytes()
        h_len, h_off = read_varint(data, 0)
        r_len, r_off = read_varint(data, h_off + h_len)
        assert r_off + r_len == len(data)
        header = viam_sync.DataCaptureMetadata.FromString(data[h_off : h_off + h_len])
        assert (header.file_extension, header.mime_type) == ("", "image/jpeg")
        assert header.type == viam_sync.DATA_TYPE_BINARY_SENSOR
        record = viam_sync.SensorData.FromString(data[r_off : r_off + r_len])
        assert record.binary == peer.jpeg_frame()
        assert record.metadata.mime_type == viam_sync.MIME_TYPE_IMAGE_JPEG
        (box,) = record.metadata.annotations.bboxes  # "faint" (0.2) is below 0.5
        assert (box.label, box.confidence) == ("red", 0.9)
        assert (box.x_min_normalized, box.y_min_normalized) == (4 / width, 2 / height)
        assert (box.x_max_normalized, box.y_max_normalized) == (12 / width, 10 / height)
        (label,) = record.metadata.annotations.classifications
        assert (label.label, label.confidence) == ("cat", 0.75)


@pytest.mark.slow
def test_remote_killed_and_restarted(remote_peer: Peer, tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    config = remote_config(remote_peer.port, capture_dir, [method(SENSOR, "Readings", 20.0)])
    local_hz = 50.0
    config["components"] = [
        {
            "name": "local",
            "type": "sensor",
            "model": "fake",
            "service_configs": [
                {
                    "type": "data_manager",
                    "attributes": {
                        "capture_methods": [
                            {"method": "Readings", "capture_frequency_hz": local_hz}
                        ]
                    },
                }
            ],
        }
    ]
    with DataManager.from_config(config) as dm:

        def remote_captures() -> int:
            return dm.stats()["thermo/Readings"].captures

        assert wait_for(lambda: remote_captures() >= 5)
        remote_peer.kill()
        down_ns = time.time_ns()
        assert wait_for(lambda: dm.stats()["thermo/Readings"].errors >= 5)
        before_restart = remote_captures()

        def local_captures() -> int:
            return dm.stats()["local/Readings"].captures

        # The outage lasts until the local collector has captured 20 more readings (0.4 s
        # at 50 Hz when idle): a collector held up by the dead remote never gets there.
        local_at_down = local_captures()
        assert wait_for(lambda: local_captures() >= local_at_down + 20, 30)
        up_ns = time.time_ns()
        remote_peer.start()
        assert wait_for(lambda: remote_captures() >= before_restart + 5, 15.0)
        stats = dm.stats()
    assert stats["thermo/Readings"].errors > 0  # the outage was counted
    _, local = records(capture_dir, "rdk_component_sensor/local/Readings")
    in_outage = [r for r in local if down_ns <= r.metadata.time_requested.ToNanoseconds() <= up_ns]
    # The local collector kept capturing while the remote was down.
    assert len(in_outage) >= 20
    _, remote = records(capture_dir, "rdk_component_sensor/thermo/Readings")
    after = [r for r in remote if r.metadata.time_requested.ToNanoseconds() > up_ns]
    assert after and all(struct_of(r)["readings"]["temperature_c"] == 21.5 for r in after)
