"""Viam's gRPC service names for resource APIs, and the ``extra`` data management sends."""

from __future__ import annotations

from google.protobuf import struct_pb2

_SERVICES = {
    "rdk:component:sensor": "viam.component.sensor.v1.SensorService",
    "rdk:component:board": "viam.component.board.v1.BoardService",
    "rdk:component:camera": "viam.component.camera.v1.CameraService",
    "rdk:component:movement_sensor": "viam.component.movementsensor.v1.MovementSensorService",
    "rdk:service:vision": "viam.service.vision.v1.VisionService",
}


def service_name(api: str) -> str:
    """The gRPC service of a resource API, e.g. ``rdk:component:movement_sensor`` ->
    ``viam.component.movementsensor.v1.MovementSensorService``.

    APIs capsync does not list follow Viam's pattern (``power_sensor`` ->
    ``viam.component.powersensor.v1.PowerSensorService``).
    """
    known = _SERVICES.get(api)
    if known is not None:
        return known
    _namespace, kind, type_ = api.split(":")
    camel = "".join(part.capitalize() for part in type_.split("_"))
    return f"viam.{kind}.{type_.replace('_', '')}.v1.{camel}Service"


def method_path(api: str, method: str) -> str:
    """The full gRPC path of ``method`` of ``api``'s service."""
    return f"/{service_name(api)}/{method}"


def from_data_management() -> struct_pb2.Struct:
    """``extra = {"fromDataManagement": true}``, as rdk's collectors send it."""
    extra = struct_pb2.Struct()
    extra.update({"fromDataManagement": True})
    return extra
