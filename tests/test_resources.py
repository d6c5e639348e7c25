"""The resource registry and the built-in models (capsync.resources)."""

from __future__ import annotations

import io
import math
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from capsync.resources import (
    BINARY_METHODS,
    BinaryResult,
    DataUnavailableError,
    EndOfData,
    ModelImportError,
    Resource,
    ResourceConfigError,
    ResourceContext,
    UnknownModelError,
    UnknownTypeError,
    UnsupportedMethodError,
    api_for_type,
    build_resource,
    capture_method,
    is_binary_method,
    known_models,
    register,
    unregister,
)
from capsync.resources.pcd import encode_pcd, parse_pcd_header

pytestmark = pytest.mark.wire_independent

SENSOR = "rdk:component:sensor"
CAMERA = "rdk:component:camera"


@pytest.fixture
def built() -> Iterator[list[Resource]]:
    """Resources to close after the test."""
    resources: list[Resource] = []
    yield resources
    for resource in resources:
        resource.close()


def make(
    built: list[Resource],
    api: str,
    model: str,
    attributes: Mapping[str, Any] | None = None,
    context: ResourceContext | None = None,
    name: str = "r1",
) -> Resource:
    resource = build_resource(api, model, name, attributes or {}, context or ResourceContext())
    built.append(resource)
    return resource


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def decode_image(result: BinaryResult) -> Image.Image:
    """The decoded image; ``.format`` says what the payload was."""
    with Image.open(io.BytesIO(bytes(result.payload))) as img:
        img.load()
        copy = img.copy()
        copy.format = img.format
        return copy


def pcd_points(payload: bytes | memoryview) -> np.ndarray:
    header, offset = parse_pcd_header(payload)
    assert header["VERSION"] == ".7"
    assert header["FIELDS"] == "x y z"
    assert header["SIZE"] == "4 4 4"
    assert header["TYPE"] == "F F F"
    assert header["COUNT"] == "1 1 1"
    assert header["DATA"] == "binary"
    assert header["HEIGHT"] == "1"
    n = int(header["POINTS"])
    assert int(header["WIDTH"]) == n
    body = bytes(payload)[offset:]
    assert len(body) == n * 12
    return np.frombuffer(body, dtype="<f4").reshape(n, 3)


def is_json_like(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, list):
        return all(is_json_like(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json_like(v) for k, v in value.items())
    return False


# --- registry -----------------------------------------------------------------------------


def test_known_models_lists_the_builtins() -> None:
    models = known_models()
    assert models[SENSOR] == [
        "rdk:builtin:fake",
        "rdk:builtin:host",
        "rdk:builtin:replay",
        "rdk:builtin:wifi-rssi",
    ]
    assert models[CAMERA] == ["rdk:builtin:fake", "rdk:builtin:filtered", "rdk:builtin:image_dir"]
    assert models["rdk:service:vision"] == [
        "rdk:builtin:color_detector",
        "rdk:builtin:color_histogram_classifier",
    ]
    assert models["rdk:component:board"] == ["rdk:builtin:fake"]
    assert models["rdk:component:movement_sensor"] == ["rdk:builtin:fake"]
    assert known_models("camera") == {CAMERA: models[CAMERA]}
    assert known_models("rdk:component:arm") == {"rdk:component:arm": []}


def test_api_for_type() -> None:
    assert api_for_type("sensor") == SENSOR
    assert api_for_type("movement_sensor") == "rdk:component:movement_sensor"
    assert api_for_type("vision", kind="service") == "rdk:service:vision"
    assert api_for_type("thermo", namespace="acme") == "acme:component:thermo"
    with pytest.raises(ValueError, match="bare name"):
        api_for_type("rdk:component:sensor")


@pytest.mark.parametrize("api", ["sensor", SENSOR])
@pytest.mark.parametrize("model", ["fake", "rdk:builtin:fake"])
def test_model_and_api_spellings(built: list[Resource], api: str, model: str) -> None:
    sensor = make(built, api, model)
    assert sensor.api == SENSOR
    assert sensor.model == "rdk:builtin:fake"
    assert sensor.name == "r1"


def test_unknown_model_names_it_and_lists_known_models() -> None:
    with pytest.raises(UnknownModelError) as info:
        build_resource("sensor", "fakee", "s", {}, ResourceContext())
    message = str(info.value)
    assert "fakee" in message and SENSOR in message
    for model in known_models(SENSOR)[SENSOR]:
        assert model in message
    assert isinstance(info.value, LookupError)


def test_an_api_without_models_is_an_unknown_type_not_an_unknown_model() -> None:
    with pytest.raises(UnknownTypeError, match=r"unknown component type 'arm' .*known .*sensor"):
        build_resource("arm", "fake", "a", {}, ResourceContext())


def test_bad_model_string() -> None:
    with pytest.raises(ValueError, match="model must be"):
        build_resource("sensor", "a:b", "s", {}, ResourceContext())


def test_register_decorator(built: list[Resource]) -> None:
    @register("sensor", "acme:test:thermo")
    class Thermo(Resource):
        @capture_method("Readings")
        def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
            return {"celsius": 21.5, "unit": self.attributes.get("unit", "C")}

        def do_command(self, command: dict[str, Any]) -> dict[str, Any]:
            return {"got": command}

    try:
        assert Thermo.api == SENSOR and Thermo.model == "acme:test:thermo"
        assert "acme:test:thermo" in known_models(SENSOR)[SENSOR]
        thermo = make(built, SENSOR, "acme:test:thermo", {"unit": "K"})
        assert isinstance(thermo, Thermo)
        assert thermo.methods() == frozenset({"Readings", "DoCommand"})
        assert thermo.capture("Readings", {}) == {"celsius": 21.5, "unit": "K"}
        assert thermo.capture("DoCommand", {"docommand_input": {"x": 1}}) == {"got": {"x": 1}}

        class Other(Resource):
            pass

        with pytest.raises(ValueError, match="already registered"):
            register(SENSOR, "acme:test:thermo")(Other)
        register(SENSOR, "acme:test:thermo", replace=True)(Other)
        assert type(make(built, SENSOR, "acme:test:thermo")) is Other
    finally:
        unregister(SENSOR, "acme:test:thermo")
    assert "acme:test:thermo" not in known_models(SENSOR)[SENSOR]


def test_build_requires_super_init() -> None:
    @register(SENSOR, "acme:test:lazy")
    class Lazy(Resource):
        def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext):
            pass

    try:
        with pytest.raises(TypeError, match=r"must call super\(\).__init__"):
            build_resource(SENSOR, "acme:test:lazy", "s", {}, ResourceContext())
    finally:
        unregister(SENSOR, "acme:test:lazy")


def test_register_rejects_non_resources() -> None:
    with pytest.raises(TypeError, match="Resource subclass"):
        register(SENSOR, "acme:test:bad")(object)  # type: ignore[type-var]


PLUGIN = """
from capsync.resources import Resource, capture_method

class Thermo(Resource):
    @capture_method("Readings")
    def readings(self, params):
        return {"celsius": float(self.attributes.get("celsius", 20.0))}

class NotAResource:
    pass

class Camera(Resource):
    api = "rdk:component:camera"
"""


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "capsync_test_plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sensors.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "capsync_test_plugin_pkg.sensors"


def test_python_import_path(built: list[Resource], plugin_module: str) -> None:
    model = f"python:{plugin_module}:Thermo"
    thermo = make(built, "sensor", model, {"celsius": 25})
    assert thermo.capture("Readings", {}) == {"celsius": 25.0}
    assert thermo.model == model and thermo.api == SENSOR
    assert thermo.capture("DoCommand", {}) == {}


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("capsync_no_such_module_xyz:Thermo", "cannot import module"),
        ("{mod}:Missing", "has no attribute"),
        ("{mod}:NotAResource", "not a subclass"),
        ("{mod}:Camera", "implements rdk:component:camera"),
        ("{mod}", "expected"),
    ],
)
def test_python_import_errors_name_the_path(plugin_module: str, target: str, problem: str) -> None:
    model = "python:" + target.format(mod=plugin_module)
    with pytest.raises(ModelImportError) as info:
        build_resource("sensor", model, "s", {}, ResourceContext())
    assert problem in str(info.value)
    assert model in str(info.value)


def test_unsupported_method_names_resource_model_and_methods(built: list[Resource]) -> None:
    sensor = make(built, "sensor", "fake", name="temp")
    with pytest.raises(UnsupportedMethodError) as info:
        sensor.capture("ReadImage", {})
    message = str(info.value)
    assert "'temp'" in message and "rdk:builtin:fake" in message
    assert "ReadImage" in message and "DoCommand" in message and "Readings" in message


def test_binary_methods() -> None:
    assert {
        "ReadImage",
        "GetImages",
        "NextPointCloud",
        "PointCloudMap",
        "CaptureAllFromCamera",
        "GetAudio",
    } == BINARY_METHODS
    assert is_binary_method("ReadImage") and not is_binary_method("Readings")


def test_resolve_path() -> None:
    context = ResourceContext(config_dir="/etc/robot")
    assert context.resolve_path("images") == Path("/etc/robot/images")
    assert context.resolve_path("/data/x") == Path("/data/x")
    assert ResourceContext().resolve_path("images") == Path("images")


# --- every built-in model's every method ----------------------------------------------------

VECTOR = {"x", "y", "z"}


def check_position(r: dict[str, Any]) -> None:
    assert set(r) == {"coordinate", "altitude_m"}
    assert set(r["coordinate"]) == {"latitude", "longitude"}
    assert -90 <= r["coordinate"]["latitude"] <= 90
    assert -180 <= r["coordinate"]["longitude"] <= 180


def check_movement_readings(r: dict[str, Any]) -> None:
    assert set(r) == {
        "position",
        "altitude",
        "linear_velocity",
        "angular_velocity",
        "linear_acceleration",
        "compass",
        "orientation",
    }
    assert r["position"]["_type"] == "geopoint" and {"lat", "lng"} <= set(r["position"])
    assert r["orientation"]["_type"] == "orientation_vector_degrees"


TABULAR_SHAPES: dict[str, Any] = {
    "Position": check_position,
    "LinearVelocity": lambda r: (
        set(r) == {"linear_velocity"} and set(r["linear_velocity"]) == VECTOR
    ),
    "AngularVelocity": lambda r: set(r["angular_velocity"]) == VECTOR and len(r) == 1,
    "LinearAcceleration": lambda r: set(r["linear_acceleration"]) == VECTOR and len(r) == 1,
    "CompassHeading": lambda r: set(r) == {"value"} and 0 <= r["value"] < 360,
    "Orientation": lambda r: set(r["orientation"]) == {"o_x", "o_y", "o_z", "theta"},
    "Analogs": lambda r: (
        set(r) == {"value", "min_range", "max_range", "step_size"} and isinstance(r["value"], int)
    ),
    "Gpios": lambda r: set(r) == {"high"} and isinstance(r["high"], bool),
}


def write_fixtures(tmp_path: Path) -> ResourceContext:
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png_bytes((255, 0, 0)))
    (images / "b.pcd").write_bytes(encode_pcd(np.zeros((5, 3))))
    (tmp_path / "rows.csv").write_text("t,temp,label\n0,20.5,ok\n1,21.0,hot\n")
    (tmp_path / "wireless").write_text(WIRELESS)
    return ResourceContext(capture_dir=str(tmp_path), config_dir=str(tmp_path))


BUILTINS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("sensor", "fake", {}, {"Readings", "DoCommand"}),
    ("sensor", "host", {}, {"Readings", "DoCommand"}),
    ("sensor", "replay", {"path": "rows.csv"}, {"Readings", "DoCommand"}),
    ("sensor", "wifi-rssi", {"proc_path": "{tmp}/wireless"}, {"Readings", "DoCommand"}),
    (
        "movement_sensor",
        "fake",
        {},
        {
            "Position",
            "LinearVelocity",
            "AngularVelocity",
            "LinearAcceleration",
            "CompassHeading",
            "Orientation",
            "Readings",
            "DoCommand",
        },
    ),
    ("board", "fake", {}, {"Analogs", "Gpios", "DoCommand"}),
    ("camera", "fake", {}, {"ReadImage", "GetImages", "NextPointCloud", "DoCommand"}),
    (
        "camera",
        "image_dir",
        {"path": "images"},
        {"ReadImage", "GetImages", "NextPointCloud", "DoCommand"},
    ),
]
PARAMS = {"Analogs": {"reader_name": "a1"}, "Gpios": {"pin_name": "37"}}


@pytest.mark.parametrize(("type_", "model", "attributes", "methods"), BUILTINS)
def test_builtin_methods_return_the_right_shape(
    built: list[Resource],
    tmp_path: Path,
    type_: str,
    model: str,
    attributes: dict[str, Any],
    methods: set[str],
) -> None:
    context = write_fixtures(tmp_path)
    attributes = {
        k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in attributes.items()
    }
    resource = make(built, type_, model, attributes, context)
    assert resource.methods() == methods
    for method in sorted(methods):
        result = resource.capture(method, PARAMS.get(method, {}))
        if method == "GetImages":
            assert isinstance(result, list) and len(result) == 1
            assert isinstance(result[0], BinaryResult) and result[0].name == "r1"
            assert result[0].mime_type in {"image/jpeg", "image/png"}
        elif method in BINARY_METHODS:
            assert isinstance(result, BinaryResult) and len(result.payload) > 0
        else:
            assert isinstance(result, dict) and is_json_like(result), (method, result)
            check = TABULAR_SHAPES.get(method)
            if check is not None:
                assert check(result) is not False, (method, result)
    assert resource.capture("DoCommand", {"docommand_input": {"ping": 1}}) == {"ping": 1}
    assert resource.capture("DoCommand", {"command": {"ping": 2}}) == {"ping": 2}
    assert resource.capture("DoCommand", {}) == {}
    with pytest.raises(ResourceConfigError, match="docommand_input"):
        resource.capture("DoCommand", {"docommand_input": 5})
    resource.close()
    resource.close()


def test_movement_sensor_readings(built: list[Resource]) -> None:
    check_movement_readings(make(built, "movement_sensor", "fake").capture("Readings", {}))  # type: ignore[arg-type]


# --- fake sensor ----------------------------------------------------------------------------


def test_fake_sensor_keys_and_changing_values(built: list[Resource]) -> None:
    sensor = make(built, "sensor", "fake")
    first = sensor.capture("Readings", {})
    assert isinstance(first, dict) and list(first) == ["a", "b", "c", "d", "e", "f"]
    previous = first
    for _ in range(100):
        current = sensor.capture("Readings", {})
        assert isinstance(current, dict)
        assert all(current[k] != previous[k] for k in current)
        assert all(isinstance(v, float) for v in current.values())
        previous = current

    custom = make(built, "sensor", "fake", {"keys": ["temp", "humidity"]})
    assert list(custom.capture("Readings", {})) == ["temp", "humidity"]  # type: ignore[arg-type]


@pytest.mark.parametrize("keys", [[], "abc", ["a", "a"], ["a", 3]])
def test_fake_sensor_bad_keys(keys: Any) -> None:
    with pytest.raises(ResourceConfigError, match=r"sensor 's'.*'keys'"):
        build_resource("sensor", "fake", "s", {"keys": keys}, ResourceContext())


def test_fake_sensor_is_cheap(built: list[Resource]) -> None:
    capture = make(built, "sensor", "fake").capture
    params: dict[str, Any] = {}
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        capture("Readings", params)
    per_call_us = (time.perf_counter() - start) / n * 1e6
    assert per_call_us < 50, per_call_us  # a few µs normally; generous for slow CI machines


# --- fake board -----------------------------------------------------------------------------


def test_fake_board(built: list[Resource]) -> None:
    board = make(built, "board", "fake", {"analogs": [{"name": "a1", "pin": "32"}]})
    analog = board.capture("Analogs", {"reader_name": "a1"})
    assert isinstance(analog, dict)
    assert 0 <= analog["value"] <= 4095
    assert analog["min_range"] == 0.0 and analog["max_range"] == pytest.approx(3.3)
    assert analog["step_size"] == pytest.approx(3.3 / 4095)
    with pytest.raises(ResourceConfigError, match="not a configured analog"):
        board.capture("Analogs", {"reader_name": "a2"})
    with pytest.raises(ResourceConfigError, match=r"reader_name.*required"):
        board.capture("Analogs", {})
    with pytest.raises(ResourceConfigError, match=r"pin_name.*required"):
        board.capture("Gpios", {})
    states = [board.capture("Gpios", {"pin_name": "8"}) for _ in range(4)]
    assert states == [{"high": False}, {"high": True}, {"high": False}, {"high": True}]


# --- fake camera ----------------------------------------------------------------------------


@pytest.mark.parametrize(("mime", "fmt"), [("image/jpeg", "JPEG"), ("image/png", "PNG")])
def test_fake_camera_frames_are_real_and_differ(built: list[Resource], mime: str, fmt: str) -> None:
    camera = make(built, "camera", "fake", {"width": 64, "height": 48})
    frames = [camera.capture("ReadImage", {"mime_type": mime}) for _ in range(3)]
    for frame in frames:
        assert isinstance(frame, BinaryResult) and frame.mime_type == mime
        img = decode_image(frame)
        assert img.format == fmt and img.size == (64, 48)
    payloads = {bytes(f.payload) for f in frames if isinstance(f, BinaryResult)}
    assert len(payloads) == 3


def test_fake_camera_defaults(built: list[Resource]) -> None:
    camera = make(built, "camera", "fake")
    frame = camera.capture("ReadImage", {})
    assert isinstance(frame, BinaryResult) and frame.mime_type == "image/jpeg"
    assert decode_image(frame).size == (320, 240)
    lazy = camera.capture("ReadImage", {"mime_type": "image/png+lazy"})
    assert isinstance(lazy, BinaryResult) and lazy.mime_type == "image/png"
    with pytest.raises(ResourceConfigError, match="image/webp"):
        camera.capture("ReadImage", {"mime_type": "image/webp"})
    assert camera.capture("GetImages", {"filter_source_names": ["other"]}) == []


def test_fake_camera_point_clouds(built: list[Resource]) -> None:
    camera = make(built, "camera", "fake", {"num_points": 1000})
    clouds = [
        camera.capture("NextPointCloud", {}),
        camera.capture("ReadImage", {"mime_type": "pointcloud/pcd"}),
    ]
    points = []
    for cloud in clouds:
        assert isinstance(cloud, BinaryResult) and cloud.mime_type == "pointcloud/pcd"
        xyz = pcd_points(cloud.payload)
        assert xyz.shape == (1000, 3) and np.isfinite(xyz).all()
        points.append(xyz)
    assert not np.array_equal(points[0], points[1])


@pytest.mark.parametrize(
    "attrs", [{"width": 0}, {"height": "big"}, {"width": 3.5}, {"num_points": -1}]
)
def test_fake_camera_bad_attributes(attrs: dict[str, Any]) -> None:
    with pytest.raises(ResourceConfigError, match=f"camera 'c'.*{next(iter(attrs))}"):
        build_resource("camera", "fake", "c", attrs, ResourceContext())


def test_encode_pcd_roundtrip() -> None:
    points = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert np.array_equal(pcd_points(encode_pcd(points)), points.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_pcd(np.zeros((3, 2)))


# --- image_dir camera -----------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "recording"
    folder.mkdir()
    # Natural order: frame1, frame2, frame10 (not frame1, frame10, frame2).
    for name, color in [
        ("frame10.png", (0, 0, 255)),
        ("frame1.png", (255, 0, 0)),
        ("frame2.png", (0, 255, 0)),
    ]:
        (folder / name).write_bytes(png_bytes(color))
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.png").write_bytes(png_bytes((9, 9, 9)))
    return folder


def pixel(result: Any) -> tuple[int, ...]:
    assert isinstance(result, BinaryResult)
    return tuple(decode_image(result).convert("RGB").getpixel((0, 0)))  # type: ignore[arg-type]


def test_image_dir_cycles_in_order_and_loops(built: list[Resource], image_folder: Path) -> None:
    context = ResourceContext(config_dir=str(image_folder.parent))
    camera = make(built, "camera", "image_dir", {"path": "recording"}, context)
    assert camera.methods() == {"ReadImage", "GetImages", "DoCommand"}
    seen = [pixel(camera.capture("ReadImage", {})) for _ in range(7)]
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    assert seen == [red, green, blue, red, green, blue, red]
    first = camera.capture("ReadImage", {})
    assert isinstance(first, BinaryResult) and first.mime_type == "image/png"
    assert bytes(first.payload) == (image_folder / "frame2.png").read_bytes()


def test_image_dir_stops_at_the_end(built: list[Resource], image_folder: Path) -> None:
    camera = make(built, "camera", "image_dir", {"path": str(image_folder), "loop": False})
    for _ in range(3):
        camera.capture("GetImages", {})
    with pytest.raises(EndOfData, match="served all 3 files"):
        camera.capture("ReadImage", {})
    with pytest.raises(EndOfData):
        camera.capture("ReadImage", {})


def test_image_dir_transcodes_to_the_requested_mime_type(
    built: list[Resource], image_folder: Path
) -> None:
    camera = make(built, "camera", "image_dir", {"path": str(image_folder)})
    jpeg = camera.capture("ReadImage", {"mime_type": "image/jpeg"})
    assert isinstance(jpeg, BinaryResult) and jpeg.mime_type == "image/jpeg"
    assert decode_image(jpeg).format == "JPEG"
    with pytest.raises(ResourceConfigError, match=r"has no \.pcd files"):
        camera.capture("ReadImage", {"mime_type": "pointcloud/pcd"})


def test_image_dir_point_clouds(built: list[Resource], tmp_path: Path) -> None:
    for i in range(2):
        (tmp_path / f"cloud{i}.pcd").write_bytes(encode_pcd(np.full((i + 1, 3), i)))
    camera = make(built, "camera", "image_dir", {"path": str(tmp_path)})
    assert camera.methods() == {"ReadImage", "NextPointCloud", "DoCommand"}
    sizes = [len(pcd_points(camera.capture("NextPointCloud", {}).payload)) for _ in range(3)]  # type: ignore[union-attr]
    assert sizes == [1, 2, 1]
    with pytest.raises(ResourceConfigError, match="no image files"):
        camera.capture("ReadImage", {})


@pytest.mark.parametrize("make_folder", [False, True])
def test_image_dir_missing_or_empty_folder(tmp_path: Path, make_folder: bool) -> None:
    folder = tmp_path / "nothing"
    if make_folder:
        folder.mkdir()
        (folder / "readme.txt").write_text("no images")
    with pytest.raises(ResourceConfigError) as info:
        build_resource(
            "camera",
            "image_dir",
            "c",
            {"path": "nothing"},
            ResourceContext(config_dir=str(tmp_path)),
        )
    assert str(folder) in str(info.value)
    assert ("no .jpg" in str(info.value)) == make_folder


def test_image_dir_requires_path() -> None:
    with pytest.raises(ResourceConfigError, match="'path' is required"):
        build_resource("camera", "image_dir", "c", {}, ResourceContext())


# --- replay sensor --------------------------------------------------------------------------

CSV = "time,temp, label\n0,20.5,ok\n\n1,-3e2,hot\n2,nan,\n"


def test_replay_loops(built: list[Resource], tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text(CSV)
    sensor = make(
        built, "sensor", "replay", {"path": "log.csv"}, ResourceContext(config_dir=str(tmp_path))
    )
    rows = [sensor.capture("Readings", {}) for _ in range(4)]
    assert rows[0] == {"time": 0.0, "temp": 20.5, "label": "ok"}
    assert rows[1] == {"time": 1.0, "temp": -300.0, "label": "hot"}
    assert rows[2] == {"time": 2.0, "temp": "nan", "label": ""}
    assert rows[3] == rows[0]


def test_replay_stops(built: list[Resource], tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(CSV)
    sensor = make(built, "sensor", "replay", {"path": str(path), "loop": False})
    for _ in range(3):
        sensor.capture("Readings", {})
    with pytest.raises(EndOfData, match="end of"):
        sensor.capture("Readings", {})
    with pytest.raises(EndOfData):
        sensor.capture("Readings", {})


@pytest.mark.parametrize(
    ("content", "problem"), [(None, "cannot read"), ("a,b\n", "at least one data row")]
)
def test_replay_bad_files(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "log.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ResourceConfigError, match=problem) as info:
        build_resource("sensor", "replay", "s", {"path": str(path)}, ResourceContext())
    assert str(path) in str(info.value)


def test_replay_bad_loop_attribute(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text(CSV)
    with pytest.raises(ResourceConfigError, match="'loop' must be true or false"):
        build_resource(
            "sensor",
            "replay",
            "s",
            {"path": str(tmp_path / "log.csv"), "loop": "no"},
            ResourceContext(),
        )


# --- host sensor ----------------------------------------------------------------------------


def test_host_sensor_values_are_sane(built: list[Resource], tmp_path: Path) -> None:
    sensor = make(
        built, "sensor", "host", context=ResourceContext(capture_dir=str(tmp_path / "not-yet"))
    )
    readings = sensor.capture("Readings", {})
    assert isinstance(readings, dict) and is_json_like(readings)
    assert 0.0 <= readings["cpu_percent"] <= 100.0
    assert readings["cpu_count"] >= 1
    assert all(readings[k] >= 0 for k in ("load_1", "load_5", "load_15"))
    assert readings["memory_used_bytes"] > 0 and readings["memory_available_bytes"] > 0
    assert 0.0 <= readings["memory_percent"] <= 100.0
    assert readings["disk_path"] == str(tmp_path.resolve())
    assert readings["disk_total_bytes"] >= readings["disk_used_bytes"] > 0
    assert readings["disk_free_bytes"] > 0 and 0.0 <= readings["disk_percent"] <= 100.0
    assert readings["process_count"] >= 1 and readings["uptime_s"] > 0
    if "net_bytes_sent" in readings:
        assert readings["net_bytes_sent"] >= 0 and readings["net_bytes_recv"] >= 0
    for chip in readings.get("temperatures_c", {}).values():
        assert all(-50.0 < t < 200.0 for t in chip.values())


# --- wifi-rssi sensor -----------------------------------------------------------------------

WIRELESS = """\
Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
wlp2s0: 0000   58.  -52.  -256        0      0      0      0     41        0
 wlan1: 0000   70.  196.  161.        0      0      0      0      0        0
"""


def wifi(built: list[Resource], tmp_path: Path, text: str | None, **attrs: Any) -> Resource:
    path = tmp_path / "wireless"
    if text is not None:
        path.write_text(text)
    return make(built, "sensor", "wifi-rssi", {"proc_path": str(path), **attrs})


def test_wifi_reads_the_first_interface(built: list[Resource], tmp_path: Path) -> None:
    readings = wifi(built, tmp_path, WIRELESS).capture("Readings", {})
    assert readings == {
        "interface": "wlp2s0",
        "link_quality": 58.0,
        "signal_dbm": -52.0,
        "noise_dbm": None,
    }


def test_wifi_named_interface_and_unsigned_levels(built: list[Resource], tmp_path: Path) -> None:
    readings = wifi(built, tmp_path, WIRELESS, interface="wlan1").capture("Readings", {})
    assert readings == {
        "interface": "wlan1",
        "link_quality": 70.0,
        "signal_dbm": -60.0,
        "noise_dbm": -95.0,
    }
    with pytest.raises(DataUnavailableError, match=r"'eth0' is not in .* wlp2s0, wlan1"):
        wifi(built, tmp_path, WIRELESS, interface="eth0").capture("Readings", {})


def test_wifi_missing_file(built: list[Resource], tmp_path: Path) -> None:
    sensor = wifi(built, tmp_path, None)  # built fine: the error comes at call time
    with pytest.raises(DataUnavailableError, match=r"Wi-Fi signal is not available.*not exist"):
        sensor.capture("Readings", {})


def test_wifi_no_interface(built: list[Resource], tmp_path: Path) -> None:
    header_only = "\n".join(WIRELESS.splitlines()[:2]) + "\n"
    with pytest.raises(
        DataUnavailableError, match=r"Wi-Fi signal is not available.*no wireless interface"
    ):
        wifi(built, tmp_path, header_only).capture("Readings", {})
