"""DataManager wiring of disk-pressure deletion and micro-server rings, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mongo_fixtures import client_for
from sync_helpers import machine_config, server_items, wait_for
from tmpfs_fixtures import FirehoseCamera

import capsync
from capsync.resources import register, unregister


@pytest.fixture(autouse=True, scope="module")
def firehose_model():
    register("rdk:component:camera", "test:models:firehose", replace=True)(FirehoseCamera)
    yield
    unregister("rdk:component:camera", "test:models:firehose")


def camera(hz: float, **method: object) -> dict:
    return {
        "name": "cam",
        "type": "camera",
        "model": "test:models:firehose",
        "service_configs": [
            {
                "type": "data_manager",
                "attributes": {
                    "capture_methods": [
                        {
                            "method": "ReadImage",
                            "capture_frequency_hz": hz,
                            "additional_params": {"mime_type": "image/jpeg"},
                            **method,
                        }
                    ]
                },
            }
        ],
    }


def sensor(hz: float, **method: object) -> dict:
    return {
        "name": "temp",
        "type": "sensor",
        "model": "fake",
        "service_configs": [
            {
                "type": "data_manager",
                "attributes": {
                    "capture_methods": [
                        {"method": "Readings", "capture_frequency_hz": hz, **method}
                    ]
                },
            }
        ],
    }


def test_data_manager_deletes_under_disk_pressure_on_a_real_small_disk(tmpfs: Path) -> None:
    capture_dir = tmpfs / "capture"
    config = machine_config(
        capture_dir,
        components=[camera(100.0)],
        sync_disabled=True,
        disk_usage_deletion_threshold=0.6,
        capture_dir_deletion_threshold=0.3,
    )
    with capsync.DataManager(
        capsync.config.load_config(config), deletion_interval_s=0.2
    ).start() as manager:
        assert wait_for(
            lambda: (stats := manager.deletion_stats()) is not None and stats.deleted_files > 10,
            timeout_s=30,
        )
        stats = manager.stats()["cam/ReadImage"]
        assert stats.captures > 0
    deleted = manager.deletion_stats()
    assert deleted is None  # stopped with the service
    for path in capture_dir.rglob("*.capture"):
        capsync.read_capture_file(path)  # every remaining file is whole


def test_no_deletion_while_capture_is_disabled(tmp_path: Path) -> None:
    config = machine_config(tmp_path, components=[sensor(5.0)], capture_disabled=True)
    with capsync.DataManager(capsync.config.load_config(config)).start() as manager:
        assert manager.deletion_stats() is None
    config = machine_config(tmp_path, components=[sensor(5.0)], sync_disabled=True)
    with capsync.DataManager(capsync.config.load_config(config)).start() as manager:
        assert manager.deletion_stats() is not None


def test_micro_server_collector_uploads_its_ring_and_writes_no_files(
    tmp_path: Path,
    ingest_server,
) -> None:
    capture_dir = tmp_path / "capture"
    config = machine_config(
        capture_dir,
        ingest_server,
        components=[sensor(50.0, cache_size_kb=4)],
        sync_interval_mins=0.005,
    )
    with capsync.DataManager(capsync.config.load_config(config)).start() as manager:
        assert wait_for(lambda: len(server_items(ingest_server.data_dir)) >= 40, timeout_s=30)
        rings = manager.ring_stats()
        assert list(rings) == ["temp/Readings"]
        assert rings["temp/Readings"]["upload"].requests_ok >= 1
    assert list(capture_dir.rglob("*.capture")) == [] and list(capture_dir.rglob("*.prog")) == []
    items = server_items(ingest_server.data_dir)
    stamps = [item["time_requested_ns"] for item in items]
    assert len(stamps) == len(set(stamps))  # each reading exactly once
    assert {item["method_name"] for item in items} == {"Readings"}


def test_micro_server_ring_keeps_readings_while_the_server_is_away(tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    config = machine_config(
        capture_dir,
        address="127.0.0.1:1",
        components=[sensor(100.0, cache_size_kb=2)],
        sync_interval_mins=0.002,
    )
    with capsync.DataManager(capsync.config.load_config(config)).start() as manager:

        def ring() -> Any:
            return manager.ring_stats()["temp/Readings"]["ring"]

        # A 2 KB ring at 100 Hz fills within a second: then the oldest go, counted.
        assert wait_for(lambda: ring().overwritten_records > 0, 30), ring()
        assert ring().records > 0
        assert ring().confirmed_records == 0  # nothing reached a server


def test_data_manager_also_captures_tabular_readings_into_mongodb(
    tmp_path: Path,
    mongo_uri: str,
    mongo_db: str,
) -> None:
    capture_dir = tmp_path / "capture"
    config = machine_config(
        capture_dir,
        components=[sensor(50.0)],
        sync_disabled=True,
        mongo_capture_config={"uri": mongo_uri, "database": mongo_db},
    )
    with capsync.DataManager(capsync.config.load_config(config)).start() as manager:
        assert wait_for(lambda: manager.stats()["temp/Readings"].captures >= 15, 30)
        assert manager.mongo_stats() is not None
    with client_for(mongo_uri) as client:
        collection = client[mongo_db]["readings"]
        documents = list(collection.find({}, {"_id": 0}).sort("time_requested", 1))
    on_disk = [
        r for p in sorted(capture_dir.rglob("*.capture")) for r in capsync.read_capture_file(p)[1]
    ]
    assert len(documents) == len(on_disk) >= 15
    assert {d["component_name"] for d in documents} == {"temp"}
    assert documents[0]["component_type"] == "rdk:component:sensor"
    assert documents[0]["method_name"] == "Readings"
    assert set(documents[0]["data"]) == {"readings"}


def test_reconfigure_moves_a_collector_into_and_out_of_micro_server_mode(tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    plain = machine_config(capture_dir, components=[sensor(20.0)], sync_disabled=True)
    ringed = machine_config(
        capture_dir, components=[sensor(20.0, cache_size_kb=16)], sync_disabled=True
    )
    with capsync.DataManager(capsync.config.load_config(plain)).start() as manager:
        assert manager.ring_stats() == {}
        manager.reconfigure(capsync.config.load_config(ringed))
        assert list(manager.ring_stats()) == ["temp/Readings"]  # rebuilt as a ring, not retimed
        manager.reconfigure(capsync.config.load_config(plain))
        assert manager.ring_stats() == {}


def test_close_closes_the_collectors_together_within_one_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from capsync.service.collector import Collector

    components = [dict(sensor(10.0), name=f"temp{i}") for i in range(3)]
    config = machine_config(tmp_path / "capture", components=components, sync_disabled=True)
    all_closing = threading.Barrier(3, timeout=5.0)  # passes only if the closes overlap
    seen: list[tuple[str, float, bool]] = []
    real_close = Collector.close

    def close(self: Collector, timeout_s: float = 30.0) -> None:
        try:
            all_closing.wait()
            together = True
        except threading.BrokenBarrierError:
            together = False
        seen.append((self.label, timeout_s, together))
        real_close(self, timeout_s)

    monkeypatch.setattr(Collector, "close", close)
    manager = capsync.DataManager(capsync.config.load_config(config), close_timeout_s=7.0)
    manager.start()
    manager.close()
    assert sorted(label for label, _, _ in seen) == [f"temp{i}/Readings" for i in range(3)]
    assert all(together for _, _, together in seen)
    assert all(timeout_s <= 7.0 for _, timeout_s, _ in seen)
