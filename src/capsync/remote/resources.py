"""Resources of a remote part: each capture method calls the remote's Viam API.

One class per API capsync knows (sensor, board, camera, movement sensor, vision
service); every API answers ``DoCommand`` (and ``Readings`` where the API has
GetReadings). Results have the same shapes as the local models' (SPEC §8), so
the collectors and capture files are the same as for a local resource.

Built by the data manager from a ``remotes[]`` entry with
:func:`remote_resource_config`; the attributes carry how to reach the remote.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from capsync.config import RemoteConfig, ResourceConfig
from capsync.proto.viam.common.v1 import common_pb2
from capsync.proto.viam.component.board.v1 import board_pb2
from capsync.proto.viam.component.camera.v1 import camera_pb2
from capsync.proto.viam.component.movementsensor.v1 import movementsensor_pb2 as ms_pb2
from capsync.proto.viam.service.vision.v1 import vision_pb2
from capsync.resources import (
    MIME_PCD,
    BinaryResult,
    Resource,
    ResourceContext,
    capture_method,
    normalize_mime_type,
)
from capsync.vision import Classification, Detection, encode_annotations, min_confidence_param

from .api import from_data_management, method_path
from .connection import DEFAULT_CALL_TIMEOUT_S, POOL, RemoteConnection, RemoteSettings

REMOTE_MODEL = "capsync:builtin:remote"
_SETTINGS_KEYS = ("address", "insecure", "ca_file", "auth_entity", "auth_type", "auth_payload")


def remote_resource_config(remote: RemoteConfig, api: str, name: str) -> ResourceConfig:
    """The resource config the data manager builds resource ``api``/``name`` of ``remote`` from.

    Build it with :func:`build_remote_resource` (remote models are not in the model
    registry: they are not something a config can name).
    """
    namespace, kind, type_ = api.split(":")
    return ResourceConfig(
        name=name,
        type=type_,
        kind="service" if kind == "service" else "component",
        namespace=namespace,
        model=REMOTE_MODEL,
        attributes={
            "remote": remote.name,
            "address": remote.address,
            "insecure": remote.insecure,
            "ca_file": remote.ca_file,
            "auth_entity": remote.auth_entity,
            "auth_type": remote.auth_type,
            "auth_payload": remote.auth_payload,
        },
    )


class RemoteResource(Resource):
    """A resource on a remote part, reached over gRPC (see :mod:`capsync.remote.connection`).

    Attributes: ``address`` (required), ``insecure``, ``ca_file``, ``auth_entity``,
    ``auth_type``, ``auth_payload``, ``remote`` (its name, for messages) and
    ``call_timeout_s`` (the deadline of every call, default 2 s).
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        if not self.attributes.get("address"):
            raise self.config_error("address", "is required for a remote resource")
        self.remote = str(self.attributes.get("remote") or self.attributes["address"])
        self.timeout_s = float(self.attributes.get("call_timeout_s") or DEFAULT_CALL_TIMEOUT_S)
        settings = RemoteSettings(
            **{k: self.attributes[k] for k in _SETTINGS_KEYS if self.attributes.get(k)}
        )
        try:
            self._connection: RemoteConnection | None = POOL.acquire(settings)
        except OSError as exc:  # the CA file
            raise self.config_error("ca_file", f"cannot be read: {exc.strerror or exc}") from None

    def call(self, method: str, request: Message, response_type: type[Any]) -> Any:
        """Call ``method`` of this resource's API on the remote, bounded by ``call_timeout_s``."""
        connection = self._connection
        if connection is None:
            raise RuntimeError(f"{self.describe()} is closed")
        return connection.call(
            method_path(self.api, method), request, response_type, self.timeout_s
        )

    def do_command(self, command: dict[str, Any]) -> dict[str, Any]:
        request = common_pb2.DoCommandRequest(name=self.name)
        request.command.update(command)
        response = self.call("DoCommand", request, common_pb2.DoCommandResponse)
        return json_format.MessageToDict(response.result)

    def remote_readings(self) -> dict[str, Any]:
        request = common_pb2.GetReadingsRequest(name=self.name, extra=from_data_management())
        response = self.call("GetReadings", request, common_pb2.GetReadingsResponse)
        return {key: _value(value) for key, value in response.readings.items()}

    def describe(self) -> str:
        return f"{super().describe()} on remote {self.attributes.get('remote', '?')!r}"

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            POOL.release(connection)


def _value(value: struct_pb2.Value) -> Any:
    return json_format.MessageToDict(value)


def _vector(v: common_pb2.Vector3) -> dict[str, float]:
    return {"x": v.x, "y": v.y, "z": v.z}


def _param(resource: Resource, params: Mapping[str, Any], key: str, method: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise resource.config_error(key, f"is required in additional_params of {method}")
    return value


class RemoteGeneric(RemoteResource):
    """Any other API: DoCommand, and Readings for APIs with GetReadings (power sensor, ...)."""

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.remote_readings()


class RemoteSensor(RemoteResource):
    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.remote_readings()


class RemoteBoard(RemoteResource):
    @capture_method("Analogs")
    def analogs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        request = board_pb2.ReadAnalogReaderRequest(
            board_name=self.name,
            analog_reader_name=_param(self, params, "reader_name", "Analogs"),
            extra=from_data_management(),
        )
        r = self.call("ReadAnalogReader", request, board_pb2.ReadAnalogReaderResponse)
        return {
            "value": r.value,
            "min_range": r.min_range,
            "max_range": r.max_range,
            "step_size": r.step_size,
        }

    @capture_method("Gpios")
    def gpios(self, params: Mapping[str, Any]) -> dict[str, Any]:
        request = board_pb2.GetGPIORequest(
            name=self.name,
            pin=_param(self, params, "pin_name", "Gpios"),
            extra=from_data_management(),
        )
        return {"high": self.call("GetGPIO", request, board_pb2.GetGPIOResponse).high}


class RemoteCamera(RemoteResource):
    def _images(self) -> list[camera_pb2.Image]:
        request = camera_pb2.GetImagesRequest(name=self.name, extra=from_data_management())
        images = list(self.call("GetImages", request, camera_pb2.GetImagesResponse).images)
        if not images:
            raise RuntimeError(f"{self.describe()}: GetImages returned no image")
        return images

    @capture_method("ReadImage")
    def read_image(self, params: Mapping[str, Any]) -> BinaryResult:
        wanted = normalize_mime_type(str(params.get("mime_type") or ""))
        images = self._images()
        chosen = next((i for i in images if normalize_mime_type(i.mime_type) == wanted), images[0])
        return BinaryResult(chosen.image, normalize_mime_type(chosen.mime_type), chosen.source_name)

    @capture_method("GetImages")
    def get_images(self, params: Mapping[str, Any]) -> list[BinaryResult]:
        return [
            BinaryResult(i.image, normalize_mime_type(i.mime_type), i.source_name)
            for i in self._images()
        ]

    @capture_method("NextPointCloud")
    def next_point_cloud(self, params: Mapping[str, Any]) -> BinaryResult:
        request = camera_pb2.GetPointCloudRequest(
            name=self.name, mime_type=MIME_PCD, extra=from_data_management()
        )
        response = self.call("GetPointCloud", request, camera_pb2.GetPointCloudResponse)
        return BinaryResult(response.point_cloud, MIME_PCD)


class RemoteMovementSensor(RemoteResource):
    def _get(self, method: str, response_type: type[Any]) -> Any:
        request = ms_pb2.GetPositionRequest(name=self.name, extra=from_data_management())
        return self.call(method, request, response_type)

    @capture_method("Position")
    def position(self, params: Mapping[str, Any]) -> dict[str, Any]:
        r = self._get("GetPosition", ms_pb2.GetPositionResponse)
        return {
            "coordinate": {"latitude": r.coordinate.latitude, "longitude": r.coordinate.longitude},
            "altitude_m": r.altitude_m,
        }

    @capture_method("LinearVelocity")
    def linear_velocity(self, params: Mapping[str, Any]) -> dict[str, Any]:
        r = self._get("GetLinearVelocity", ms_pb2.GetLinearVelocityResponse)
        return {"linear_velocity": _vector(r.linear_velocity)}

    @capture_method("AngularVelocity")
    def angular_velocity(self, params: Mapping[str, Any]) -> dict[str, Any]:
        r = self._get("GetAngularVelocity", ms_pb2.GetAngularVelocityResponse)
        return {"angular_velocity": _vector(r.angular_velocity)}

    @capture_method("LinearAcceleration")
    def linear_acceleration(self, params: Mapping[str, Any]) -> dict[str, Any]:
        r = self._get("GetLinearAcceleration", ms_pb2.GetLinearAccelerationResponse)
        return {"linear_acceleration": _vector(r.linear_acceleration)}

    @capture_method("CompassHeading")
    def compass_heading(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"value": self._get("GetCompassHeading", ms_pb2.GetCompassHeadingResponse).value}

    @capture_method("Orientation")
    def orientation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        o = self._get("GetOrientation", ms_pb2.GetOrientationResponse).orientation
        return {"orientation": {"o_x": o.o_x, "o_y": o.o_y, "o_z": o.o_z, "theta": o.theta}}

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.remote_readings()


class RemoteVision(RemoteResource):
    @capture_method("CaptureAllFromCamera")
    def capture_all_from_camera(self, params: Mapping[str, Any]) -> BinaryResult:
        min_confidence = self._min_confidence(params)
        request = vision_pb2.CaptureAllFromCameraRequest(
            name=self.name,
            camera_name=_param(self, params, "camera_name", "CaptureAllFromCamera"),
            return_image=True,
            return_detections=True,
            return_classifications=True,
            return_object_point_clouds=False,
            extra=from_data_management(),
        )
        r = self.call("CaptureAllFromCamera", request, vision_pb2.CaptureAllFromCameraResponse)
        if not r.HasField("image") or not r.image.image:
            raise RuntimeError(f"{self.describe()}: the vision service returned no image")
        payload = r.image.image
        width, height = _image_size(payload)
        annotations = encode_annotations(
            [_detection(d, width, height) for d in r.detections],
            [Classification(c.class_name, c.confidence) for c in r.classifications],
            width,
            height,
            min_confidence,
        )
        return BinaryResult(payload, normalize_mime_type(r.image.mime_type), "", annotations)

    @capture_method("GetDetectionsFromCamera")
    def detections_from_camera(self, params: Mapping[str, Any]) -> dict[str, Any]:
        request = vision_pb2.GetDetectionsFromCameraRequest(
            name=self.name,
            camera_name=_param(self, params, "camera_name", "GetDetectionsFromCamera"),
            extra=from_data_management(),
        )
        r = self.call(
            "GetDetectionsFromCamera", request, vision_pb2.GetDetectionsFromCameraResponse
        )
        return {"detections": [_detection_dict(d) for d in r.detections]}

    @capture_method("GetClassificationsFromCamera")
    def classifications_from_camera(self, params: Mapping[str, Any]) -> dict[str, Any]:
        request = vision_pb2.GetClassificationsFromCameraRequest(
            name=self.name,
            camera_name=_param(self, params, "camera_name", "GetClassificationsFromCamera"),
            n=int(params.get("n") or 1),
            extra=from_data_management(),
        )
        r = self.call(
            "GetClassificationsFromCamera",
            request,
            vision_pb2.GetClassificationsFromCameraResponse,
        )
        return {
            "classifications": [
                {"class_name": c.class_name, "confidence": c.confidence} for c in r.classifications
            ]
        }

    def _min_confidence(self, params: Mapping[str, Any]) -> float:
        try:
            return min_confidence_param(params.get("min_confidence_score"))
        except ValueError as exc:
            raise self.config_error("min_confidence_score", str(exc)) from None


_CLASSES: dict[str, type[RemoteResource]] = {
    "rdk:component:sensor": RemoteSensor,
    "rdk:component:board": RemoteBoard,
    "rdk:component:camera": RemoteCamera,
    "rdk:component:movement_sensor": RemoteMovementSensor,
    "rdk:service:vision": RemoteVision,
}


def build_remote_resource(
    config: ResourceConfig, context: ResourceContext | None = None
) -> RemoteResource:
    """The resource of a :func:`remote_resource_config`; an API capsync has no class for
    gets :class:`RemoteGeneric` (DoCommand, and Readings where the API has GetReadings)."""
    cls = _CLASSES.get(config.api, RemoteGeneric)
    resource = cls(config.name, config.attributes, context or ResourceContext())
    resource.api = config.api
    resource.model = REMOTE_MODEL
    return resource


def _image_size(payload: bytes) -> tuple[int, int]:
    from PIL import Image  # only the header is read

    with Image.open(io.BytesIO(payload)) as image:
        return image.size


_DETECTION_FIELDS = ("x_min", "y_min", "x_max", "y_max")
_NORMALIZED_FIELDS = (
    "x_min_normalized",
    "y_min_normalized",
    "x_max_normalized",
    "y_max_normalized",
)


def _detection_dict(d: vision_pb2.Detection) -> dict[str, Any]:
    """A detection as a struct: the corners it has (as numbers), confidence and class."""
    out: dict[str, Any] = {k: getattr(d, k) for k in _DETECTION_FIELDS if d.HasField(k)}
    out.update({"confidence": d.confidence, "class_name": d.class_name})
    out.update({k: getattr(d, k) for k in _NORMALIZED_FIELDS if d.HasField(k)})
    return out


def _detection(d: vision_pb2.Detection, width: int, height: int) -> Detection:
    """A remote detection in pixels (from its normalized corners when it sent no pixels)."""
    if d.HasField("x_min") and d.HasField("x_max"):
        box = (d.x_min, d.y_min, d.x_max, d.y_max)
    else:
        box = (
            round(d.x_min_normalized * width),
            round(d.y_min_normalized * height),
            round(d.x_max_normalized * width),
            round(d.y_max_normalized * height),
        )
    return Detection(*box, confidence=d.confidence, class_name=d.class_name)
