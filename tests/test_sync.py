"""Sync (SPEC §4): capture files and arbitrary files uploaded to a real ``capsync serve``.

Every end-to-end test runs the ingest server as a process on loopback and
checks what arrived with :func:`capsync.server.query.list_items`: every
record exactly once, with identical values, and local files deleted only
once the server has them.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from server_fixtures import (
    ServerProcess,
    run_capsync,
    start_server,
    subprocess_env,
)
from sync_helpers import (
    BASE_NS,
    PART_ID,
    all_files,
    capture_files,
    file_keys,
    local_keys,
    machine_config,
    make_old,
    server_items,
    server_keys,
    wait_for,
    write_binary,
    write_config,
    write_tabular,
)

from capsync import wire
from capsync.config import load_config
from capsync.proto import data_sync_pb2
from capsync.resources import BinaryResult, Resource, capture_method, register, unregister
from capsync.service import DataManager
from capsync.sync import (
    SyncConfigError,
    Syncer,
    SyncSettings,
    UploadClient,
    resolve_target,
    upload_capture_file,
)
from capsync.sync.connection import normalize_address, open_channel
from capsync.sync.files import path_dataset_ids, path_tags, resume_path

FAST_SYNC_MINS = 0.005  # 0.3 s


def syncer_for(config: Mapping[str, Any], **options: Any) -> Syncer:
    machine = load_config(config)
    assert machine.data_manager is not None
    return Syncer(
        SyncSettings.from_config(machine.data_manager), resolve_target(machine), **options
    )


# --- test resources -------------------------------------------------------------------------


class Recorder(Resource):
    """Readings {"n": call number, "x": a float}; remembers every value it returned."""

    api = "rdk:component:sensor"
    model = "test:sync:recorder"
    returned: list[dict[str, Any]] = []  # noqa: RUF012 (shared on purpose)

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        value = {"n": len(Recorder.returned), "x": len(Recorder.returned) / 3.0}
        Recorder.returned.append(value)
        return value


class Snapper(Resource):
    """ReadImage: alternately a small and a >1 MB payload; remembers their digests."""

    api = "rdk:component:camera"
    model = "test:sync:snapper"
    digests: list[str] = []  # noqa: RUF012

    @capture_method("ReadImage")
    def read_image(self, params: Mapping[str, Any]) -> BinaryResult:
        size = 1_200_000 if len(Snapper.digests) % 2 else 2_000
        payload = os.urandom(size)
        Snapper.digests.append(hashlib.sha256(payload).hexdigest())
        return BinaryResult(payload=payload, mime_type="image/jpeg")


class Switch(Resource):
    """Readings {"should_sync": Switch.on}: the selective syncer."""

    api = "rdk:component:sensor"
    model = "test:sync:switch"
    on = False
    asked = 0  # how often the syncer asked

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        Switch.asked += 1
        return {"should_sync": Switch.on}


@pytest.fixture(autouse=True, scope="module")
def sync_models() -> Iterator[None]:
    register("rdk:component:sensor", "test:sync:recorder", replace=True)(Recorder)
    register("rdk:component:camera", "test:sync:snapper", replace=True)(Snapper)
    register("rdk:component:sensor", "test:sync:switch", replace=True)(Switch)
    yield
    unregister("rdk:component:sensor", "test:sync:recorder")
    unregister("rdk:component:camera", "test:sync:snapper")
    unregister("rdk:component:sensor", "test:sync:switch")


def component(name: str, type_: str, model: str, method: str, hz: float) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "model": model,
        "service_configs": [
            {
                "type": "data_manager",
                "attributes": {"capture_methods": [{"method": method, "capture_frequency_hz": hz}]},
            }
        ],
    }


# --- end to end -----------------------------------------------------------------------------


def test_capture_then_sync_stores_every_record_once_with_identical_values(
    tmp_path: Path, ingest_server: ServerProcess
) -> None:
    Recorder.returned = []
    Snapper.digests = []
    capture_dir = tmp_path / "capture"
    config = machine_config(
        capture_dir,
        ingest_server,
        components=[
            component("rec", "sensor", "test:sync:recorder", "Readings", 200),
            component("snap", "camera", "test:sync:snapper", "ReadImage", 4),
        ],
        sync_interval_mins=FAST_SYNC_MINS,
        tags=["e2e"],
    )
    manager = DataManager.from_config(config).start()
    try:
        # Scheduled passes upload while capture goes on.
        assert wait_for(lambda: uploaded_files(manager) >= 3, 10)
    finally:
        manager.close()
    # What a closing manager completed is left for the next run: sync it by hand.
    with syncer_for(config) as syncer:
        report = syncer.sync_once()
    assert report.complete, report.left
    assert capture_files(capture_dir) == []

    items = server_items(ingest_server.data_dir)
    tabular = [i for i in items if i["kind"] == "tabular"]
    assert sorted((i["data"]["readings"] for i in tabular), key=lambda d: d["n"]) == (
        Recorder.returned
    )
    binary = [i for i in items if i["kind"] == "binary"]
    assert sorted(i["sha256"] for i in binary) == sorted(Snapper.digests)
    assert {i["part_id"] for i in items} == {PART_ID}
    assert all("e2e" in i["tags"] for i in items)
    assert {i["component_name"] for i in binary} == {"snap"}


def uploaded_files(manager: DataManager) -> int:
    stats = manager.sync_stats()
    return 0 if stats is None else stats.files_uploaded


def test_server_killed_mid_sync_loses_and_duplicates_nothing(
    tmp_path: Path, api_keys_file: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path, keys_file=api_keys_file)
    capture_dir = tmp_path / "capture"
    paths = [write_tabular(capture_dir, f"s{i}", 2000, start_ns=BASE_NS + i) for i in range(5)]
    paths += [
        write_binary(capture_dir, f"cam{i}", os.urandom(1_300_000), requested_ns=BASE_NS + i)
        for i in range(3)
    ]
    expected = local_keys(paths)
    syncer = syncer_for(machine_config(capture_dir, server), request_max_bytes=4096)
    reports: list[Any] = []
    worker = threading.Thread(target=lambda: reports.append(syncer.sync_once(retry_for_s=60)))
    try:
        worker.start()
        assert wait_for(lambda: len(capture_files(capture_dir)) < len(paths), 20, 0.002)
        server.proc.kill()
        server.wait()
        during_outage = capture_files(capture_dir)
        assert during_outage, "the sync finished before the server was killed"
        time.sleep(0.5)
        assert capture_files(capture_dir) == during_outage  # nothing deleted unconfirmed
        assert worker.is_alive()  # still retrying, not given up
        server = start_server(
            data_dir, tmp_path, "--listen", f"127.0.0.1:{server.port}", keys_file=api_keys_file
        )
        worker.join(60)
        assert not worker.is_alive()
    finally:
        syncer.close()
        worker.join(10)
        server.stop()
    (report,) = reports
    assert report.complete, report.left
    assert server_keys(data_dir) == expected
    assert all_files(capture_dir) == []


def test_client_killed_mid_upload_keeps_the_file_and_resyncs_without_duplicates(
    tmp_path: Path, ingest_server: ServerProcess
) -> None:
    capture_dir = tmp_path / "capture"
    # Oldest first: the big tabular file takes several requests, so it has a resume record
    # from its first confirmed request until it is done (two requests are in flight at
    # once, so it needs several more than two for that to last).
    big = write_tabular(capture_dir, "big", 80_000)  # about 8 MB: eight requests
    make_old(big)
    paths = [big]
    paths += [write_tabular(capture_dir, f"s{i}", 300, start_ns=BASE_NS + i) for i in range(10)]
    paths.append(write_binary(capture_dir, "cam", os.urandom(3_000_000)))
    keys_by_file = {path: file_keys(path) for path in paths}
    config = write_config(
        tmp_path / "machine.json",
        machine_config(capture_dir, ingest_server, maximum_num_sync_threads=1),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "capsync", "sync", str(config), "--quiet"],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: resume_path(big).exists(), 30, 0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    remaining = set(capture_files(capture_dir))
    assert big in remaining
    stored = server_keys(ingest_server.data_dir)
    assert max(stored.values()) == 1
    for path, keys in keys_by_file.items():
        if path not in remaining:  # a deleted file is wholly on the server
            assert all(stored[key] == 1 for key in keys), path

    result = run_capsync("sync", str(config), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "synced" in result.stdout
    expected = collections.Counter(key for keys in keys_by_file.values() for key in keys)
    assert server_keys(ingest_server.data_dir) == expected
    assert all_files(capture_dir) == []


def test_wrong_key_is_rejected_and_every_file_kept(
    tmp_path: Path, ingest_server: ServerProcess
) -> None:
    capture_dir = tmp_path / "capture"
    paths = sorted([write_tabular(capture_dir, "s", 50), write_binary(capture_dir, "cam", b"jp")])
    config = write_config(
        tmp_path / "machine.json", machine_config(capture_dir, ingest_server, key="not-the-key")
    )
    result = run_capsync("sync", str(config), "--quiet")
    assert result.returncode == 1
    assert "refused the API key" in result.stderr
    assert "2 files left" in result.stderr
    # A scheduled pass keeps the files too, and waits rather than spins.
    syncer = syncer_for(json.loads(config.read_text()), retry_for_s=0.5)
    with syncer:
        report = syncer.sync_once()
    assert set(report.left) == {str(p) for p in paths}
    assert capture_files(capture_dir) == paths
    assert server_items(ingest_server.data_dir) == []


def test_tls_with_a_self_signed_certificate(tmp_path: Path, api_keys_file: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=capsync-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    data_dir = tmp_path / "data"
    server = start_server(
        data_dir, tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), keys_file=api_keys_file
    )
    try:
        capture_dir = tmp_path / "capture"
        paths = [write_tabular(capture_dir, "s", 200), write_binary(capture_dir, "c", b"img")]
        expected = local_keys(paths)
        # The system roots do not trust the certificate: nothing goes.
        untrusted = write_config(
            tmp_path / "untrusted.json", machine_config(capture_dir, server, insecure=False)
        )
        result = run_capsync("sync", str(untrusted), "--quiet", "--retry-for", "0")
        assert result.returncode == 1
        assert capture_files(capture_dir) == sorted(paths)
        trusted = write_config(
            tmp_path / "trusted.json",
            machine_config(capture_dir, server, insecure=False, ca_file=cert),
        )
        result = run_capsync("sync", str(trusted), "--quiet")
        assert result.returncode == 0, result.stderr
        assert server_keys(data_dir) == expected
        assert capture_files(capture_dir) == []
    finally:
        server.stop()


def test_corrupt_capture_files_go_to_failed_and_the_rest_syncs(
    tmp_path: Path, ingest_server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    from capsync.capture.header import build_header, encode_header

    capture_dir = tmp_path / "capture"
    good = [write_tabular(capture_dir, "good", 100), write_binary(capture_dir, "cam", b"jpeg")]
    frame = wire.wire().frame
    # Not a capture file at all.
    junk = capture_dir / "rdk_component_sensor" / "junk" / "Readings" / "junk.capture"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"\xff" * 64)
    # A record in the middle that does not parse.
    torn = write_tabular(capture_dir, "torn", 10)
    first_record = bytes(_first_frame(torn))
    torn.write_bytes(torn.read_bytes() + frame(b"\xff\xff\xff") + first_record)
    # Parses, but the server refuses it: a tabular header over binary records.
    liar = capture_dir / "rdk_component_sensor" / "liar" / "Readings" / "liar.capture"
    liar.parent.mkdir(parents=True)
    header = build_header(
        component_type="rdk:component:sensor", component_name="liar", method_name="Readings"
    )
    record = data_sync_pb2.SensorData(binary=b"not a struct")
    liar.write_bytes(frame(encode_header(header)) + frame(record.SerializeToString()))
    expected = local_keys(good)

    with caplog.at_level(logging.ERROR, logger="capsync.sync"):
        with syncer_for(machine_config(capture_dir, ingest_server)) as syncer:
            report = syncer.sync_once()
            again = syncer.sync_once()
    assert report.files_uploaded == 2
    assert set(report.moved) == {str(junk), str(torn), str(liar)}
    assert "does not parse" in report.moved[str(junk)]
    assert "does not parse" in report.moved[str(torn)]
    assert "INVALID_ARGUMENT" in report.moved[str(liar)]
    for path in (junk, torn, liar):
        moved = capture_dir / "failed" / path.relative_to(capture_dir)
        assert moved.exists(), moved
        assert any(
            str(path) in r.getMessage() and "failed" in r.getMessage() for r in caplog.records
        )
    assert again.files_total == 0  # failed/ is never synced
    assert server_keys(ingest_server.data_dir) == expected
    assert capture_files(capture_dir) == []


def _first_frame(path: Path) -> bytes:
    from capsync.capture.reader import read_header, scan_records

    data = path.read_bytes()
    offset = read_header(path).records_offset
    start, length = next(scan_records(path))
    return data[offset : start + length]


def test_arbitrary_files_carry_path_tags_and_dataset_ids(
    tmp_path: Path, ingest_server: ServerProcess
) -> None:
    extra = tmp_path / "extra"
    contents = {
        "tag=lab/dataset=ds-1/run.log": b"log line\n" * 100,
        "notes.txt": b"notes",
        "blob.bin": os.urandom(200_000),  # several 64 KiB chunks
    }
    for name, content in contents.items():
        (extra / name).parent.mkdir(parents=True, exist_ok=True)
        (extra / name).write_bytes(content)
    kept = {"empty.txt": b"", "x.prog": b"prog", "y.capture": b"cap", "fresh.txt": b"new"}
    for name, content in kept.items():
        (extra / name).write_bytes(content)
    for path in all_files(extra):
        if path.name != "fresh.txt":
            make_old(path)
    config = machine_config(
        tmp_path / "capture",
        ingest_server,
        additional_sync_paths=[str(extra)],
        tags=["robot-1"],
        file_last_modified_millis=60_000,
    )
    with syncer_for(config) as syncer:
        report = syncer.sync_once()
    assert report.complete and report.files_uploaded == 3
    items = {i["file_name"]: i for i in server_items(ingest_server.data_dir)}
    assert set(items) == set(contents)
    for name, content in contents.items():
        assert Path(items[name]["path"]).read_bytes() == content
        assert items[name]["kind"] == "file"
        assert items[name]["part_id"] == PART_ID
    assert sorted(items["tag=lab/dataset=ds-1/run.log"]["tags"]) == ["lab", "robot-1"]
    assert items["tag=lab/dataset=ds-1/run.log"]["dataset_ids"] == ["ds-1"]
    assert items["notes.txt"]["tags"] == ["robot-1"]
    assert items["notes.txt"]["dataset_ids"] == []
    assert sorted(p.relative_to(extra).as_posix() for p in all_files(extra)) == sorted(kept)


def test_selective_sync_follows_the_sensor(tmp_path: Path, ingest_server: ServerProcess) -> None:
    Switch.on = False
    Switch.asked = 0
    capture_dir = tmp_path / "capture"
    paths = [write_tabular(capture_dir, "s", 100)]
    expected = local_keys(paths)
    config = machine_config(
        capture_dir,
        ingest_server,
        components=[{"name": "gate", "type": "sensor", "model": "test:sync:switch"}],
        sync_interval_mins=FAST_SYNC_MINS,
        selective_syncer_name="gate",
    )
    with DataManager.from_config(config) as manager:
        assert wait_for(lambda: Switch.asked >= 3, 10)  # three intervals with should_sync false
        assert capture_files(capture_dir) == paths
        assert uploaded_files(manager) == 0
        Switch.on = True
        assert wait_for(lambda: not capture_files(capture_dir), 10)
    assert server_keys(ingest_server.data_dir) == expected


def test_sync_disabled_stops_scheduled_sync_not_a_manual_one(
    tmp_path: Path, ingest_server: ServerProcess
) -> None:
    capture_dir = tmp_path / "capture"
    paths = [write_tabular(capture_dir, "s", 100), write_binary(capture_dir, "c", b"x")]
    expected = local_keys(paths)
    config = machine_config(
        capture_dir, ingest_server, sync_interval_mins=FAST_SYNC_MINS, sync_disabled=True
    )
    with DataManager.from_config(config) as manager:
        time.sleep(0.8)
        assert capture_files(capture_dir) == sorted(paths)
        report = manager.sync_now()
        assert report.complete and report.files_uploaded == 2
    assert server_keys(ingest_server.data_dir) == expected


def test_reconfigure_turns_scheduled_sync_on(tmp_path: Path, ingest_server: ServerProcess) -> None:
    capture_dir = tmp_path / "capture"
    paths = [write_tabular(capture_dir, "s", 20)]
    expected = local_keys(paths)
    off = machine_config(
        capture_dir, ingest_server, sync_interval_mins=FAST_SYNC_MINS, sync_disabled=True
    )
    with DataManager.from_config(off) as manager:
        time.sleep(0.5)
        assert capture_files(capture_dir) == paths
        manager.reconfigure({**off, "services": [_without_sync_disabled(off["services"][0])]})
        assert wait_for(lambda: not capture_files(capture_dir), 10)
    assert server_keys(ingest_server.data_dir) == expected


def _without_sync_disabled(service: dict[str, Any]) -> dict[str, Any]:
    attributes = {k: v for k, v in service["attributes"].items() if k != "sync_disabled"}
    return {**service, "attributes": attributes}


@pytest.mark.wire_independent
def test_a_manager_without_a_sync_target_does_not_sync(tmp_path: Path) -> None:
    from capsync.service import ServiceError

    config = {
        "services": [
            {"name": "dm", "type": "data_manager", "attributes": {"capture_dir": str(tmp_path)}}
        ]
    }
    with DataManager.from_config(config) as manager:
        assert manager.sync_stats() is None
        assert manager.uploading() == frozenset()
        with pytest.raises(ServiceError, match="neither a sync nor a cloud section"):
            manager.sync_now()


# --- pieces ---------------------------------------------------------------------------------


@pytest.mark.wire_independent
def test_backoff_starts_at_200_ms_doubles_and_is_capped() -> None:
    from capsync._retry import Backoff

    backoff = Backoff(0.2, max_s=1.0, jitter=0.1)
    delays = [backoff.next() for _ in range(6)]
    for delay, nominal in zip(delays, [0.2, 0.4, 0.8, 1.0, 1.0, 1.0], strict=True):
        assert nominal * 0.9 <= delay <= nominal * 1.1
    backoff.reset()
    assert backoff.next() <= 0.22


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "injected"


def test_a_split_file_resumes_after_its_confirmed_requests(
    tmp_path: Path, ingest_server: ServerProcess
) -> None:
    capture_dir = tmp_path / "capture"
    path = write_tabular(capture_dir, "s", 2000)
    target = resolve_target(load_config(machine_config(capture_dir, ingest_server)))
    channel = open_channel(target)
    client = UploadClient(channel, target)
    sent: list[int] = []
    fail_at = [4]

    class Flaky:
        part_id = client.part_id

        def data_capture_upload_future(self, body: bytes) -> Any:
            request = data_sync_pb2.DataCaptureUploadRequest.FromString(body)
            sent.append(len(request.sensor_contents))
            if len(sent) == fail_at[0]:
                raise FakeRpcError(grpc.StatusCode.UNAVAILABLE)
            return client.data_capture_upload_future(body)

    try:
        with pytest.raises(grpc.RpcError):
            upload_capture_file(Flaky(), path, file_name="f", request_max_bytes=8192)  # type: ignore[arg-type]
        confirmed = sum(sent[:3])
        assert resume_path(path).exists()
        sent.clear()
        fail_at[0] = 0
        result = upload_capture_file(Flaky(), path, file_name="f", request_max_bytes=8192)  # type: ignore[arg-type]
    finally:
        channel.close()
    assert result.resumed_records == confirmed
    assert sum(sent) == result.records == 2000 - confirmed  # nothing confirmed is sent again
    assert server_keys(ingest_server.data_dir) == local_keys([path])


def test_an_unreachable_server_is_retried_with_growing_pauses(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    capture_dir = tmp_path / "capture"
    paths = [write_tabular(capture_dir, "a", 10), write_tabular(capture_dir, "b", 10)]
    config = machine_config(capture_dir, address=f"127.0.0.1:{port}", max_backoff_s=30)
    syncer = syncer_for(config, retry_for_s=2.5)
    calls = []
    real = syncer._client.data_capture_upload_future

    def counted(request: Any) -> Any:
        calls.append(time.monotonic())
        return real(request)

    syncer._client.data_capture_upload_future = counted  # type: ignore[method-assign]
    started = time.monotonic()
    with syncer:
        report = syncer.sync_once()
    elapsed = time.monotonic() - started
    assert set(report.left) == {str(p) for p in paths}
    assert all("cannot reach" in reason for reason in report.left.values())
    assert capture_files(capture_dir) == sorted(paths)
    # 1 s, then 2 s between tries (shared by both workers): a handful of calls, no spinning.
    assert 2 <= len(calls) <= 6
    assert elapsed < 5


@pytest.mark.wire_independent
def test_target_from_the_cloud_section() -> None:
    config = load_config(
        {"cloud": {"id": "part-9", "secret": "s3cret", "app_address": "https://app.example.com"}}
    )
    target = resolve_target(config)
    assert (target.address, target.part_id, target.key_id, target.key) == (
        "app.example.com:443", "part-9", "part-9", "s3cret",
    )  # fmt: skip
    assert not target.insecure
    assert target.metadata == (("key_id", "part-9"), ("key", "s3cret"))


@pytest.mark.wire_independent
def test_a_sync_section_overrides_the_cloud_section_field_by_field() -> None:
    config = load_config(
        {
            "cloud": {"id": "part-9", "secret": "s3cret"},
            "sync": {"address": "127.0.0.1:9000", "insecure": True, "max_backoff_s": 2},
        }
    )
    target = resolve_target(config)
    assert (target.address, target.part_id, target.key_id) == ("127.0.0.1:9000", "part-9", "part-9")
    assert target.insecure and target.max_backoff_s == 2


@pytest.mark.wire_independent
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"sync": {"address": "h:1", "part_id": "p"}}, "api_key"),
        ({"sync": {"address": "h:1", "api_key_id": "i", "api_key": "k"}}, "part_id"),
        ({"cloud": {"id": "p"}}, "cloud.secret"),
        ({"sync": {"address": "http://h:1", "part_id": "p", "api_key_id": "i", "api_key": "k"}},
         "insecure"),
        ({}, "neither a sync nor a cloud section"),
    ],
)  # fmt: skip
def test_an_incomplete_sync_config_names_what_is_missing(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(SyncConfigError, match=message):
        resolve_target(load_config(config))


@pytest.mark.wire_independent
def test_addresses_are_normalized() -> None:
    assert normalize_address("https://app.viam.com:443", insecure=False) == "app.viam.com:443"
    assert normalize_address("app.viam.com", insecure=False) == "app.viam.com:443"
    assert normalize_address("[::1]:8080", insecure=False) == "[::1]:8080"
    assert normalize_address("http://127.0.0.1:80/", insecure=True) == "127.0.0.1:80"
    with pytest.raises(SyncConfigError):
        normalize_address("host:notaport", insecure=False)


@pytest.mark.wire_independent
def test_tags_and_dataset_ids_come_from_folders() -> None:
    path = Path("/data/tag=lab/site/dataset=ds1/tag=night/dataset=ds2/file.txt")
    assert path_tags(path) == ("lab", "night")
    assert path_dataset_ids(path) == ("ds1", "ds2")
    assert path_tags(Path("/data/tag=bad tag/f")) == ()


@pytest.mark.wire_independent
def test_sync_command_without_a_target_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "machine.json",
        {"services": [{"name": "dm", "type": "data_manager", "attributes": {}}]},
    )
    result = run_capsync("sync", str(config))
    assert result.returncode == 2
    assert "neither a sync nor a cloud section" in result.stderr
