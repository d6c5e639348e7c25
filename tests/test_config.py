"""capsync.config: loading and checking the machine config (SPEC §1)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsync.config import (
    CaptureMethodConfig,
    CloudConfig,
    ConfigError,
    DataManagerConfig,
    MachineConfig,
    MongoCaptureConfig,
    ResourceConfig,
    RetentionPolicy,
    SyncConfig,
    load_config,
)

pytestmark = pytest.mark.wire_independent

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "robot.json"


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A known HOME and no VIAM_HOME, so default paths are predictable."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("VIAM_HOME", raising=False)
    return home


def dm_config(attributes: Any = None) -> dict[str, Any]:
    """A config with only a data_manager service named "dm"."""
    entry: dict[str, Any] = {"name": "dm", "type": "data_manager"}
    if attributes is not None:
        entry["attributes"] = attributes
    return {"services": [entry]}


def sensor_config(*methods: Any, **extra: Any) -> dict[str, Any]:
    """A config with a sensor "imu" capturing ``methods``."""
    sensor: dict[str, Any] = {
        "name": "imu",
        "type": "sensor",
        "model": "fake",
        "service_configs": [
            {"type": "data_manager", "attributes": {"capture_methods": list(methods)}}
        ],
        **extra,
    }
    return {"components": [sensor]}


def readings(**overrides: Any) -> dict[str, Any]:
    return {"method": "Readings", "capture_frequency_hz": 1, **overrides}


def error_of(source: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(source)
    return str(info.value)


# --- the example file ------------------------------------------------------------------


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.warnings == ()
    assert config.source_path == str(EXAMPLE)
    assert config.data_manager is not None
    assert config.data_manager.name == "data_manager-1"
    assert config.data_manager.tags == ("capsync-example",)
    assert config.cloud is not None and config.cloud.id
    assert config.sync is None
    got = [
        (
            t.api,
            t.resource_name,
            t.method.method,
            t.method.capture_frequency_hz,
            t.method.additional_params,
        )
        for t in config.capture_targets()
    ]
    assert got == [
        ("rdk:component:sensor", "sensor-1", "Readings", 10.0, {}),
        ("rdk:component:movement_sensor", "movement-sensor-1", "Position", 5.0, {}),
        ("rdk:component:movement_sensor", "movement-sensor-1", "LinearVelocity", 5.0, {}),
        ("rdk:component:board", "board-1", "Analogs", 2.0, {"reader_name": "a1"}),
        ("rdk:component:board", "board-1", "Gpios", 2.0, {"pin_name": "io7"}),
        ("rdk:component:camera", "camera-1", "ReadImage", 1.0, {"mime_type": "image/jpeg"}),
    ]
    assert all(t.method.enabled and t.method.tags for t in config.capture_targets())
    assert {c.model_name for c in config.components} == {"fake"}


def test_example_file_is_shaped_like_viam_server_configs() -> None:
    raw = json.loads(EXAMPLE.read_text())
    for component in raw["components"]:
        (service_config,) = component["service_configs"]
        assert service_config["type"] == "data_manager"
        assert service_config["attributes"]["capture_methods"]
    assert [s["type"] for s in raw["services"]] == ["data_manager"]


def test_path_string_and_dict_load_alike() -> None:
    from_path = load_config(str(EXAMPLE))
    from_dict = load_config(json.loads(EXAMPLE.read_text()))
    assert from_dict.source_path is None
    assert dataclasses.replace(from_path, source_path=None) == from_dict


# --- data_manager defaults and values ----------------------------------------------------


def test_every_data_manager_default(monkeypatch: pytest.MonkeyPatch, _home: Path) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    dm = load_config(dm_config()).data_manager
    assert dm == DataManagerConfig(
        name="dm",
        capture_dir=str(_home / ".viam" / "capture"),
        capture_disabled=False,
        sync_disabled=False,
        sync_interval_mins=0.1,
        tags=(),
        additional_sync_paths=(),
        file_last_modified_millis=10000.0,
        maximum_num_sync_threads=4,
        delete_every_nth_when_disk_full=5,
        disk_usage_deletion_threshold=0.9,
        capture_dir_deletion_threshold=0.5,
        maximum_capture_file_size_bytes=262144,
        selective_syncer_name="",
        mongo_capture_config=None,
        cache_size_kb=None,
        delete_data_on_part_deletion=False,
    )
    assert dm is not None
    assert dm.sync_interval_s == pytest.approx(6.0)
    assert dm.file_last_modified_s == pytest.approx(10.0)
    assert dataclasses.replace(DataManagerConfig(), name="dm") == dm


@pytest.mark.parametrize(("cpus", "threads"), [(1, 2), (2, 2), (3, 2), (6, 3), (16, 8), (None, 2)])
def test_default_sync_threads_is_half_the_cpus_and_at_least_two(
    monkeypatch: pytest.MonkeyPatch, cpus: int | None, threads: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    dm = load_config(dm_config({})).data_manager
    assert dm is not None and dm.maximum_num_sync_threads == threads


@pytest.mark.parametrize(
    "zero_means_default",
    [
        "sync_interval_mins",
        "file_last_modified_millis",
        "maximum_num_sync_threads",
        "delete_every_nth_when_disk_full",
        "disk_usage_deletion_threshold",
        "capture_dir_deletion_threshold",
        "maximum_capture_file_size_bytes",
        "cache_size_kb",
    ],
)
def test_zero_means_default(zero_means_default: str) -> None:
    assert (
        load_config(dm_config({zero_means_default: 0})).data_manager
        == load_config(dm_config({})).data_manager
    )


def test_every_data_manager_key_is_read(_home: Path) -> None:
    attributes = {
        "capture_dir": "/data/capture",
        "capture_disabled": True,
        "sync_disabled": True,
        "sync_interval_mins": 2.5,
        "tags": ["a", "B-2", "c_3"],
        "additional_sync_paths": ["/var/log/robot", "~/pictures"],
        "file_last_modified_millis": 500,
        "maximum_num_sync_threads": 3.0,
        "delete_every_nth_when_disk_full": 2,
        "disk_usage_deletion_threshold": 1,
        "capture_dir_deletion_threshold": 0.25,
        "maximum_capture_file_size_bytes": 1024,
        "selective_syncer_name": "wifi",
        "mongo_capture_config": {"uri": "mongodb://127.0.0.1:27017"},
        "cache_size_kb": 10,
        "delete_data_on_part_deletion": True,
    }
    config = load_config(dm_config(attributes))
    assert config.warnings == ()
    assert config.data_manager == DataManagerConfig(
        name="dm",
        capture_dir="/data/capture",
        capture_disabled=True,
        sync_disabled=True,
        sync_interval_mins=2.5,
        tags=("a", "B-2", "c_3"),
        additional_sync_paths=("/var/log/robot", str(_home / "pictures")),
        file_last_modified_millis=500.0,
        maximum_num_sync_threads=3,
        delete_every_nth_when_disk_full=2,
        disk_usage_deletion_threshold=1.0,
        capture_dir_deletion_threshold=0.25,
        maximum_capture_file_size_bytes=1024,
        selective_syncer_name="wifi",
        mongo_capture_config=MongoCaptureConfig(
            "mongodb://127.0.0.1:27017", "sensorData", "readings"
        ),
        cache_size_kb=10.0,
        delete_data_on_part_deletion=True,
    )
    assert isinstance(config.data_manager.maximum_num_sync_threads, int)


def test_mongo_database_and_collection() -> None:
    mongo = {"uri": "mongodb://h", "database": "robots", "collection": "imu"}
    dm = load_config(dm_config({"mongo_capture_config": mongo})).data_manager
    assert dm is not None
    assert dm.mongo_capture_config == MongoCaptureConfig("mongodb://h", "robots", "imu")


def test_no_data_manager_service_gives_none() -> None:
    assert load_config({"components": []}).data_manager is None
    assert load_config({}) == MachineConfig()


def test_only_one_data_manager() -> None:
    config = {
        "services": [{"name": "a", "type": "data_manager"}, {"name": "b", "type": "data_manager"}]
    }
    assert error_of(config) == 'services: only one data_manager service is supported, got "a", "b"'


# --- capture_dir ------------------------------------------------------------------------


@pytest.mark.parametrize("attributes", [{}, {"capture_dir": ""}, {"capture_dir": None}])
def test_capture_dir_default(attributes: dict[str, Any], _home: Path) -> None:
    dm = load_config(dm_config(attributes)).data_manager
    assert dm is not None and dm.capture_dir == str(_home / ".viam" / "capture")


def test_capture_dir_honours_viam_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIAM_HOME", str(tmp_path / "viam"))
    dm = load_config(dm_config({"capture_dir": ""})).data_manager
    assert dm is not None and dm.capture_dir == str(tmp_path / "viam" / "capture")
    assert DataManagerConfig().capture_dir == str(tmp_path / "viam" / "capture")


def test_capture_dir_expands_tilde(_home: Path) -> None:
    dm = load_config(dm_config({"capture_dir": "~/robot/capture"})).data_manager
    assert dm is not None and dm.capture_dir == str(_home / "robot" / "capture")


def test_capture_dir_is_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    dm = load_config(dm_config({"capture_dir": "rel/capture"})).data_manager
    assert dm is not None and dm.capture_dir == str(tmp_path / "rel" / "capture")


# --- sync_interval_mins -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "expected"),
    [(0, 0.1), (0.00005, 0.1), (0.00009, 0.1), (0.0002, 0.0002), (1, 1.0)],
)
def test_sync_interval_near_zero_means_default(configured: float, expected: float) -> None:
    dm = load_config(dm_config({"sync_interval_mins": configured})).data_manager
    assert dm is not None and dm.sync_interval_mins == pytest.approx(expected)
    assert dm.sync_interval_s == pytest.approx(expected * 60)


# --- bad data_manager values: each names the key and the service --------------------------

BAD_DM_VALUES = [
    ("capture_dir", 3, "capture_dir must be a string, got 3"),
    ("capture_disabled", "yes", 'capture_disabled must be true or false, got "yes"'),
    ("capture_disabled", 1, "capture_disabled must be true or false, got 1"),
    ("sync_disabled", "false", 'sync_disabled must be true or false, got "false"'),
    ("sync_interval_mins", "soon", 'sync_interval_mins must be a number >= 0, got "soon"'),
    ("sync_interval_mins", -1, "sync_interval_mins must be a number >= 0, got -1"),
    ("sync_interval_mins", True, "sync_interval_mins must be a number >= 0, got true"),
    ("sync_interval_mins", float("nan"), "sync_interval_mins must be a number >= 0, got NaN"),
    ("tags", "robot", 'tags must be a list of strings, got "robot"'),
    ("tags", [1], "tags[0] must be a string, got 1"),
    (
        "tags",
        ["ok", "bad tag"],
        'tags[1] must be a tag of letters, digits, "_" and "-" only, got "bad tag"',
    ),
    ("tags", ["a/b"], 'tags[0] must be a tag of letters, digits, "_" and "-" only, got "a/b"'),
    ("tags", [""], 'tags[0] must be a tag of letters, digits, "_" and "-" only, got ""'),
    ("additional_sync_paths", "/x", 'additional_sync_paths must be a list of strings, got "/x"'),
    ("additional_sync_paths", ["/x", None], "additional_sync_paths[1] must be a string, got null"),
    ("file_last_modified_millis", -5, "file_last_modified_millis must be a number >= 0, got -5"),
    (
        "file_last_modified_millis",
        "10s",
        'file_last_modified_millis must be a number >= 0, got "10s"',
    ),
    ("maximum_num_sync_threads", 3.5, "maximum_num_sync_threads must be an integer >= 0, got 3.5"),
    ("maximum_num_sync_threads", -1, "maximum_num_sync_threads must be an integer >= 0, got -1"),
    ("maximum_num_sync_threads", "4", 'maximum_num_sync_threads must be an integer >= 0, got "4"'),
    (
        "delete_every_nth_when_disk_full",
        2.5,
        "delete_every_nth_when_disk_full must be an integer >= 0, got 2.5",
    ),
    (
        "delete_every_nth_when_disk_full",
        -5,
        "delete_every_nth_when_disk_full must be an integer >= 0, got -5",
    ),
    (
        "disk_usage_deletion_threshold",
        1.5,
        "disk_usage_deletion_threshold must be a number <= 1, got 1.5",
    ),
    (
        "disk_usage_deletion_threshold",
        -0.1,
        "disk_usage_deletion_threshold must be a number >= 0, got -0.1",
    ),
    (
        "disk_usage_deletion_threshold",
        "high",
        'disk_usage_deletion_threshold must be a number >= 0, got "high"',
    ),
    (
        "capture_dir_deletion_threshold",
        2,
        "capture_dir_deletion_threshold must be a number <= 1, got 2",
    ),
    (
        "capture_dir_deletion_threshold",
        False,
        "capture_dir_deletion_threshold must be a number >= 0, got false",
    ),
    (
        "maximum_capture_file_size_bytes",
        1.5,
        "maximum_capture_file_size_bytes must be an integer >= 0, got 1.5",
    ),
    (
        "maximum_capture_file_size_bytes",
        -1,
        "maximum_capture_file_size_bytes must be an integer >= 0, got -1",
    ),
    (
        "maximum_capture_file_size_bytes",
        "big",
        'maximum_capture_file_size_bytes must be an integer >= 0, got "big"',
    ),
    ("selective_syncer_name", 5, "selective_syncer_name must be a string, got 5"),
    (
        "mongo_capture_config",
        "mongodb://h",
        'mongo_capture_config must be an object, got "mongodb://h"',
    ),
    ("mongo_capture_config", {}, "mongo_capture_config.uri is required"),
    (
        "mongo_capture_config",
        {"uri": 5},
        "mongo_capture_config.uri must be a non-empty string, got 5",
    ),
    (
        "mongo_capture_config",
        {"uri": ""},
        'mongo_capture_config.uri must be a non-empty string, got ""',
    ),
    (
        "mongo_capture_config",
        {"uri": "m", "database": 3},
        "mongo_capture_config.database must be a string, got 3",
    ),
    (
        "mongo_capture_config",
        {"uri": "m", "collection": []},
        "mongo_capture_config.collection must be a string, got []",
    ),
    ("cache_size_kb", 0.5, "cache_size_kb must be at least 1 (KB), got 0.5"),
    ("cache_size_kb", "big", 'cache_size_kb must be a number >= 0, got "big"'),
    ("cache_size_kb", -1, "cache_size_kb must be a number >= 0, got -1"),
    (
        "delete_data_on_part_deletion",
        "true",
        'delete_data_on_part_deletion must be true or false, got "true"',
    ),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_DM_VALUES)
def test_bad_data_manager_value_names_key_and_service(key: str, value: Any, message: str) -> None:
    assert error_of(dm_config({key: value})) == f'data_manager "dm": {message}'


def test_every_data_manager_key_has_a_bad_value_case() -> None:
    keys = {f.name for f in dataclasses.fields(DataManagerConfig)} - {"name"}
    assert keys == {key for key, _, _ in BAD_DM_VALUES}


def test_data_manager_attributes_must_be_an_object() -> None:
    assert error_of(dm_config([1])) == 'data_manager "dm": attributes must be an object, got [1]'


def test_integral_floats_are_integers() -> None:
    dm = load_config(dm_config({"delete_every_nth_when_disk_full": 7.0})).data_manager
    assert dm is not None and dm.delete_every_nth_when_disk_full == 7
    assert isinstance(dm.delete_every_nth_when_disk_full, int)


# --- capture methods --------------------------------------------------------------------


def test_capture_method_fields() -> None:
    method = readings(
        capture_frequency_hz=20,
        additional_params={"mime_type": "image/png", "n": 3},
        tags=["x", "y"],
        capture_queue_size=10,
        capture_buffer_size=8192,
        retention_policy={"days": 5, "binary_limit_gb": 1.5, "tabular_limit_gb": 2},
        cache_size_kb=4,
    )
    (target,) = load_config(sensor_config(method)).capture_targets()
    assert target.resource_name == "imu"
    assert target.api == "rdk:component:sensor"
    assert target.resource is not None and target.resource.name == "imu"
    assert target.remote is None
    assert target.method == CaptureMethodConfig(
        method="Readings",
        capture_frequency_hz=20.0,
        additional_params={"mime_type": "image/png", "n": 3},
        disabled=False,
        tags=("x", "y"),
        capture_queue_size=10,
        capture_buffer_size=8192,
        retention_policy=RetentionPolicy(days=5, binary_limit_gb=1.5, tabular_limit_gb=2.0),
        cache_size_kb=4.0,
    )


def test_capture_method_defaults() -> None:
    (target,) = load_config(sensor_config(readings())).capture_targets()
    assert target.method == CaptureMethodConfig(method="Readings", capture_frequency_hz=1.0)
    assert target.method.capture_queue_size == 250
    assert target.method.additional_params == {}
    assert target.method.enabled


def test_capture_queue_size_zero_means_default() -> None:
    (target,) = load_config(sensor_config(readings(capture_queue_size=0))).capture_targets()
    assert target.method.capture_queue_size == 250


def test_retention_policy_next_to_capture_methods_applies_to_each() -> None:
    config = sensor_config(readings(), readings(method="Position", retention_policy={"days": 1}))
    config["components"][0]["service_configs"][0]["attributes"]["retention_policy"] = {"days": 9}
    first, second = load_config(config).capture_targets()
    assert first.method.retention_policy == RetentionPolicy(days=9)
    assert second.method.retention_policy == RetentionPolicy(days=1)


@pytest.mark.parametrize(
    ("method", "enabled"),
    [
        (readings(), True),
        (readings(capture_frequency_hz=1e-6), True),
        (readings(disabled=True), False),
        (readings(capture_frequency_hz=0), False),
        (readings(capture_frequency_hz=-2), False),
        (readings(capture_frequency_hz=1e-7), False),
    ],
)
def test_disabled_and_zero_frequency_methods(method: dict[str, Any], enabled: bool) -> None:
    config = load_config(sensor_config(method))
    assert [t.method.enabled for t in config.capture_targets()] == [enabled]
    assert len(config.capture_targets(enabled_only=True)) == int(enabled)


def test_the_example_message_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.json").write_text(json.dumps(sensor_config(readings(capture_frequency_hz="fast"))))
    with pytest.raises(ConfigError) as info:
        load_config("config.json")
    assert str(info.value) == (
        'config.json: sensor "imu": capture_methods[0]: '
        'capture_frequency_hz must be a number, got "fast"'
    )
    assert info.value.source == "config.json"
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)


BAD_METHODS = [
    ({"capture_frequency_hz": 1}, "method is required"),
    (readings(method=""), 'method must be a non-empty string, got ""'),
    (readings(method=7), "method must be a non-empty string, got 7"),
    ({"method": "Readings"}, "capture_frequency_hz is required"),
    (readings(capture_frequency_hz="fast"), 'capture_frequency_hz must be a number, got "fast"'),
    (readings(capture_frequency_hz=True), "capture_frequency_hz must be a number, got true"),
    (readings(additional_params="x"), 'additional_params must be an object, got "x"'),
    (readings(additional_params=["a"]), 'additional_params must be an object, got ["a"]'),
    (readings(disabled="no"), 'disabled must be true or false, got "no"'),
    (readings(tags="t"), 'tags must be a list of strings, got "t"'),
    (
        readings(tags=["a b"]),
        'tags[0] must be a tag of letters, digits, "_" and "-" only, got "a b"',
    ),
    (readings(capture_queue_size=-1), "capture_queue_size must be an integer >= 0, got -1"),
    (readings(capture_queue_size=2.5), "capture_queue_size must be an integer >= 0, got 2.5"),
    (readings(capture_buffer_size="4k"), 'capture_buffer_size must be an integer >= 0, got "4k"'),
    (readings(retention_policy=5), "retention_policy must be an object, got 5"),
    (
        readings(retention_policy={"days": -1}),
        "retention_policy.days must be an integer >= 0, got -1",
    ),
    (
        readings(retention_policy={"binary_limit_gb": "1"}),
        'retention_policy.binary_limit_gb must be a number >= 0, got "1"',
    ),
    (readings(cache_size_kb=0.5), "cache_size_kb must be at least 1 (KB), got 0.5"),
    (readings(cache_size_kb=0), "cache_size_kb must be at least 1 (KB), got 0"),
    (readings(cache_size_kb="1"), 'cache_size_kb must be a number >= 0, got "1"'),
]


@pytest.mark.parametrize(("method", "message"), BAD_METHODS)
def test_bad_capture_method_names_resource_index_and_key(
    method: dict[str, Any], message: str
) -> None:
    assert (
        error_of(sensor_config(readings(), method))
        == f'sensor "imu": capture_methods[1]: {message}'
    )


def test_capture_method_must_be_an_object() -> None:
    assert (
        error_of(sensor_config("Readings"))
        == 'sensor "imu": capture_methods[0] must be an object, got "Readings"'
    )


def test_capture_methods_must_be_a_list() -> None:
    config = sensor_config()
    config["components"][0]["service_configs"][0]["attributes"]["capture_methods"] = {}
    message = 'sensor "imu": service_configs[0].attributes.capture_methods must be a list, got {}'
    assert error_of(config) == message


def test_service_configs_shape_errors() -> None:
    assert (
        error_of(sensor_config(service_configs=[3]))
        == 'sensor "imu": service_configs[0] must be an object, got 3'
    )
    assert (
        error_of(sensor_config(service_configs=[{}]))
        == 'sensor "imu": service_configs[0].type is required'
    )
    assert (
        error_of(sensor_config(service_configs={}))
        == 'sensor "imu": service_configs must be a list, got {}'
    )


def test_other_service_configs_are_left_alone() -> None:
    config = sensor_config(service_configs=[{"type": "vision", "attributes": {"anything": 1}}])
    loaded = load_config(config)
    assert loaded.capture_targets() == [] and loaded.warnings == ()


def test_two_data_manager_service_configs_are_told_apart() -> None:
    entry = {"type": "data_manager", "attributes": {"capture_methods": [readings()]}}
    bad = {"type": "data_manager", "attributes": {"capture_methods": [readings(disabled=1)]}}
    message = (
        'sensor "imu": service_configs[1].capture_methods[0]: disabled must be true or false, got 1'
    )
    assert error_of(sensor_config(service_configs=[entry, bad])) == message
    other = {
        "type": "data_manager",
        "attributes": {"capture_methods": [readings(method="Position")]},
    }
    assert len(load_config(sensor_config(service_configs=[entry, other])).capture_targets()) == 2
    twice = error_of(sensor_config(service_configs=[entry, entry]))
    assert twice.startswith(
        'sensor "imu": service_configs[1].capture_methods[0] captures Readings again '
        "(already service_configs[0].capture_methods[0])"
    )


# --- resources --------------------------------------------------------------------------


def test_resource_fields() -> None:
    component: dict[str, Any] = {
        "name": "lidar",
        "namespace": "acme",
        "type": "lidar",
        "model": "acme:demo:spinny",
        "attributes": {"port": "/dev/ttyUSB0"},
        "depends_on": ["board-1"],
        "frame": {"parent": "world"},
    }
    config = load_config({"components": [component]})
    assert config.components == (
        ResourceConfig(
            name="lidar",
            type="lidar",
            kind="component",
            namespace="acme",
            model="acme:demo:spinny",
            attributes={"port": "/dev/ttyUSB0"},
            depends_on=("board-1",),
        ),
    )
    (lidar,) = config.components
    assert lidar.api == "acme:component:lidar"
    assert lidar.model_name == "spinny"
    assert config.warnings == ()
    component["attributes"]["port"] = "changed"
    assert lidar.attributes == {"port": "/dev/ttyUSB0"}


def test_api_triplet_instead_of_type() -> None:
    config = load_config(
        {"services": [{"name": "v", "api": "rdk:service:vision", "model": "mlmodel"}]}
    )
    (vision,) = config.services
    assert (vision.kind, vision.namespace, vision.type, vision.api) == (
        "service",
        "rdk",
        "vision",
        "rdk:service:vision",
    )


@pytest.mark.parametrize(
    ("component", "message"),
    [
        ({"type": "sensor"}, "components[0]: name is required"),
        ({"name": "", "type": "sensor"}, 'components[0]: name must be a non-empty string, got ""'),
        (
            {"name": "a/b", "type": "sensor"},
            'components[0]: name must be a name without "/" or "\\", got "a/b"',
        ),
        ({"name": "imu"}, 'components[0] "imu": type is required'),
        ({"name": "imu", "type": 3}, 'components[0] "imu": type must be a string, got 3'),
        (
            {"name": "imu", "api": "sensor"},
            'components[0] "imu": api must be an API such as "rdk:component:sensor", got "sensor"',
        ),
        (
            {"name": "imu", "api": "rdk:service:vision"},
            'components[0] "imu": api must be a component API, got "rdk:service:vision"',
        ),
        (
            {"name": "imu", "type": "camera", "api": "rdk:component:sensor"},
            'components[0] "imu": type "camera" does not match api "rdk:component:sensor"',
        ),
        (
            {"name": "imu", "type": "sensor", "attributes": []},
            'sensor "imu": attributes must be an object, got []',
        ),
        (
            {"name": "imu", "type": "sensor", "depends_on": "board"},
            'sensor "imu": depends_on must be a list of strings, got "board"',
        ),
        (
            {"name": "imu", "type": "sensor", "model": 1},
            'sensor "imu": model must be a string, got 1',
        ),
    ],
)
def test_bad_resource(component: dict[str, Any], message: str) -> None:
    assert error_of({"components": [component]}) == message


def test_resource_list_shape_errors() -> None:
    assert error_of({"components": {}}) == "components must be a list, got {}"
    assert error_of({"services": ["dm"]}) == 'services[0] must be an object, got "dm"'


def test_duplicate_resource_names() -> None:
    twice = {"components": [{"name": "a", "type": "sensor"}, {"name": "a", "type": "sensor"}]}
    assert error_of(twice) == 'components[1]: name "a" is used twice for rdk:component:sensor'
    load_config({"components": [{"name": "a", "type": "sensor"}, {"name": "a", "type": "camera"}]})


# --- remotes ----------------------------------------------------------------------------


def esp_remote(*methods: Any) -> dict[str, Any]:
    return {
        "remotes": [
            {
                "name": "esp-home",
                "address": "esp-home-main.example.viam.cloud:80",
                "secret": "REDACTED",
                "service_configs": [
                    {"type": "data_manager", "attributes": {"capture_methods": list(methods)}}
                ],
            }
        ]
    }


def test_remote_capture_methods_by_full_name() -> None:
    analogs = {
        "method": "Analogs",
        "capture_frequency_hz": 1,
        "cache_size_kb": 10,
        "name": "rdk:component:board/my-esp32",
        "additional_params": {"reader_name": "A1"},
        "disabled": False,
    }
    config = load_config(
        esp_remote(analogs, {**analogs, "method": "Gpios", "additional_params": {"pin_name": "27"}})
    )
    assert config.warnings == ()
    (remote,) = config.remotes
    assert (remote.name, remote.address, remote.insecure) == (
        "esp-home",
        "esp-home-main.example.viam.cloud:80",
        False,
    )
    targets = config.capture_targets()
    assert [(t.resource_name, t.api, t.method.method, t.resource, t.remote) for t in targets] == [
        ("my-esp32", "rdk:component:board", "Analogs", None, "esp-home"),
        ("my-esp32", "rdk:component:board", "Gpios", None, "esp-home"),
    ]
    assert targets[0].method.name == "rdk:component:board/my-esp32"


def test_remote_targets_come_after_local_ones() -> None:
    config = sensor_config(readings())
    config.update(esp_remote(readings(name="rdk:component:sensor/far")))
    assert [t.resource_name for t in load_config(config).capture_targets()] == ["imu", "far"]


FULL_NAME = 'name must be a full resource name such as "rdk:component:board/my-esp32"'


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (readings(), "name is required"),
        (
            readings(name="my-esp32"),
            FULL_NAME + ', got "my-esp32"',
        ),
        (
            readings(name="rdk:board/my-esp32"),
            FULL_NAME + ', got "rdk:board/my-esp32"',
        ),
        (
            readings(name="rdk:component:board/"),
            FULL_NAME + ', got "rdk:component:board/"',
        ),
    ],
)
def test_remote_capture_method_needs_a_full_name(method: dict[str, Any], message: str) -> None:
    assert error_of(esp_remote(method)) == f'remote "esp-home": capture_methods[0]: {message}'


def test_bad_remote() -> None:
    assert error_of({"remotes": [{"address": "x"}]}) == "remotes[0]: name is required"
    assert (
        error_of({"remotes": [{"name": "r", "insecure": "yes"}]})
        == 'remote "r": insecure must be true or false, got "yes"'
    )


# --- cloud and sync -----------------------------------------------------------------------


def test_cloud_section() -> None:
    cloud = {
        "id": "part-1",
        "secret": "s3cret",
        "app_address": "https://app.example:443",
        "fqdn": "x",
    }
    config = load_config({"cloud": cloud})
    assert config.cloud == CloudConfig("part-1", "s3cret", "https://app.example:443")
    assert config.warnings == ()
    assert "s3cret" not in repr(config)
    assert load_config({"cloud": {"id": "p"}}).cloud == CloudConfig(
        "p", "", "https://app.viam.com:443"
    )
    assert error_of({"cloud": {"secret": "s"}}) == "cloud.id is required"
    assert error_of({"cloud": "x"}) == 'cloud must be an object, got "x"'


def test_sync_section(_home: Path) -> None:
    sync = {
        "address": "localhost:8080",
        "api_key_id": "key-id",
        "api_key": "key-secret",
        "insecure": True,
        "ca_file": "~/ca.pem",
        "part_id": "part-1",
        "max_backoff_s": 30,
    }
    config = load_config({"sync": sync})
    assert config.sync == SyncConfig(
        "localhost:8080", "key-id", "key-secret", True, str(_home / "ca.pem"), "part-1", 30.0
    )
    assert "key-secret" not in repr(config)
    assert load_config({"sync": {}}).sync == SyncConfig()
    assert SyncConfig().max_backoff_s == 60.0
    assert load_config({}).sync is None


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ({"insecure": "no"}, 'sync.insecure must be true or false, got "no"'),
        ({"max_backoff_s": "1m"}, 'sync.max_backoff_s must be a number >= 0, got "1m"'),
        ({"address": 8080}, "sync.address must be a string, got 8080"),
        ({"api_key_id": "id"}, "sync.api_key is required when api_key_id or api_key is given"),
        ({"api_key": "k"}, "sync.api_key_id is required when api_key_id or api_key is given"),
    ],
)
def test_bad_sync_section(sync: dict[str, Any], message: str) -> None:
    assert error_of({"sync": sync}) == message


# --- unknown keys -----------------------------------------------------------------------


def test_unknown_keys_warn_once_and_do_not_fail(caplog: pytest.LogCaptureFixture) -> None:
    config = sensor_config(
        readings(frequncy_hz=3), readings(method="Position", capture_directory="/x"), fancy=True
    )
    config["services"] = [
        {
            "name": "dm",
            "type": "data_manager",
            "attributes": {"sync_interval": 1, "mongo_capture_config": {"uri": "m", "db": "x"}},
        }
    ]
    config["sync"] = {"adress": "x"}
    config["surprise"] = 1
    config["modules"] = [{"name": "m"}]
    config["packages"] = []
    config["network"] = {}
    config["components"][0]["service_configs"][0]["attributes"]["retention"] = {}
    with caplog.at_level(logging.WARNING, logger="capsync.config"):
        loaded = load_config(config)
    assert loaded.warnings == (
        'sensor "imu": unknown key "service_configs[0].attributes.retention"',
        'sensor "imu": capture_methods[0]: unknown key "frequncy_hz"',
        'sensor "imu": capture_methods[1]: unknown key "capture_directory"',
        'sensor "imu": unknown key "fancy"',
        'data_manager "dm": unknown key "mongo_capture_config.db"',
        'data_manager "dm": unknown key "sync_interval"',
        'unknown key "sync.adress"',
        'unknown top-level key "surprise"',
    )
    logged = [r.getMessage() for r in caplog.records if r.name == "capsync.config"]
    assert logged == list(loaded.warnings)
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert len(loaded.capture_targets()) == 2


def test_warnings_logged_with_the_file_name(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    path = tmp_path / "robot.json"
    path.write_text(json.dumps({"surprise": 1}))
    with caplog.at_level(logging.WARNING, logger="capsync.config"):
        config = load_config(path)
    assert config.warnings == ('unknown top-level key "surprise"',)
    assert [r.getMessage() for r in caplog.records] == [f'{path}: unknown top-level key "surprise"']


def test_viam_server_keys_are_accepted_silently() -> None:
    config: dict[str, Any] = {
        key: {}
        for key in (
            "modules",
            "packages",
            "processes",
            "agent",
            "network",
            "auth",
            "debug",
            "fragments",
            "jobs",
            "maintenance",
            "revision",
            "log",
        )
    }
    config["disable_partial_start"] = True
    config["remotes"] = [{"name": "r", "address": "a", "auth": {}, "frame": {}}]
    config["components"] = [
        {"name": "c", "type": "camera", "frame": {}, "log_configuration": {"level": "debug"}}
    ]
    assert load_config(config).warnings == ()


# --- file errors ------------------------------------------------------------------------


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "components": [\n    {"name": "x",}\n  ]\n}\n')
    message = error_of(path)
    assert message.startswith(f"{path}: invalid JSON at line 3, column 18: ")
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    assert error_of(str(path)) == f"{path}: cannot read the config: No such file or directory"


def test_directory_is_not_a_config(tmp_path: Path) -> None:
    assert error_of(tmp_path).startswith(f"{tmp_path}: cannot read the config: ")


def test_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    assert error_of(path) == f"{path}: the config must be a JSON object, got [1, 2]"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("")
    assert error_of(path) == f"{path}: invalid JSON at line 1, column 1: Expecting value"


def test_dict_errors_have_no_file_prefix() -> None:
    assert error_of({"components": 1}) == "components must be a list, got 1"


# --- the objects ------------------------------------------------------------------------


def test_config_objects_are_frozen_and_hashable() -> None:
    config = load_config(EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.components[0].name = "x"  # type: ignore[misc]
    assert len({t for t in config.capture_targets()}) == 6
    assert hash(config) == hash(load_config(EXAMPLE))


def test_config_error_is_a_value_error_and_pickles() -> None:
    err = ConfigError('sensor "imu": bad', "robot.json")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == 'robot.json: sensor "imu": bad'
    assert err.in_file("other.json").message == err.message


# --- robustness: any JSON loads or fails with ConfigError, never anything else -------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
DM_KEYS = [f.name for f in dataclasses.fields(DataManagerConfig) if f.name != "name"]
METHOD_KEYS = [f.name for f in dataclasses.fields(CaptureMethodConfig)]


def loads_or_config_error(config: dict[str, Any]) -> None:
    try:
        load_config(config)
    except ConfigError as err:
        assert "\n" not in str(err)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(DM_KEYS), value=JSON)
def test_any_data_manager_value(key: str, value: Any) -> None:
    loads_or_config_error(dm_config({key: value}))


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(METHOD_KEYS), value=JSON)
def test_any_capture_method_value(key: str, value: Any) -> None:
    loads_or_config_error(sensor_config(readings(**{key: value})))
    loads_or_config_error(esp_remote({**readings(name="rdk:component:board/b"), key: value}))


@settings(max_examples=300, deadline=None)
@given(section=st.sampled_from(["components", "services", "remotes", "cloud", "sync"]), value=JSON)
def test_any_section_value(section: str, value: Any) -> None:
    loads_or_config_error({section: value})
    loads_or_config_error({section: [value]})


def test_a_method_configured_twice_on_one_resource_is_one_clear_error() -> None:
    message = error_of(sensor_config(readings(), readings(capture_frequency_hz=5)))
    assert message == (
        'sensor "imu": capture_methods[1] captures Readings again (already capture_methods[0]); '
        "capture a method once per resource, or disable one of them"
    )
    assert "\n" not in message
    # A disabled second entry (or one at 0 Hz) captures nothing: no conflict, as in viam-server.
    config = load_config(
        sensor_config(readings(), readings(disabled=True), readings(capture_frequency_hz=0))
    )
    assert len(config.capture_targets(enabled_only=True)) == 1
