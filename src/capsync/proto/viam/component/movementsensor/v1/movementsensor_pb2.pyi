from capsync.proto.viam.common.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetPositionRequest(_message.Message):
    __slots__ = ("name", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetPositionResponse(_message.Message):
    __slots__ = ("coordinate", "altitude_m")
    COORDINATE_FIELD_NUMBER: _ClassVar[int]
    ALTITUDE_M_FIELD_NUMBER: _ClassVar[int]
    coordinate: _common_pb2.GeoPoint
    altitude_m: float
    def __init__(self, coordinate: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., altitude_m: _Optional[float] = ...) -> None: ...

class GetLinearVelocityResponse(_message.Message):
    __slots__ = ("linear_velocity",)
    LINEAR_VELOCITY_FIELD_NUMBER: _ClassVar[int]
    linear_velocity: _common_pb2.Vector3
    def __init__(self, linear_velocity: _Optional[_Union[_common_pb2.Vector3, _Mapping]] = ...) -> None: ...

class GetAngularVelocityResponse(_message.Message):
    __slots__ = ("angular_velocity",)
    ANGULAR_VELOCITY_FIELD_NUMBER: _ClassVar[int]
    angular_velocity: _common_pb2.Vector3
    def __init__(self, angular_velocity: _Optional[_Union[_common_pb2.Vector3, _Mapping]] = ...) -> None: ...

class GetLinearAccelerationResponse(_message.Message):
    __slots__ = ("linear_acceleration",)
    LINEAR_ACCELERATION_FIELD_NUMBER: _ClassVar[int]
    linear_acceleration: _common_pb2.Vector3
    def __init__(self, linear_acceleration: _Optional[_Union[_common_pb2.Vector3, _Mapping]] = ...) -> None: ...

class GetCompassHeadingResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: float
    def __init__(self, value: _Optional[float] = ...) -> None: ...

class GetOrientationResponse(_message.Message):
    __slots__ = ("orientation",)
    ORIENTATION_FIELD_NUMBER: _ClassVar[int]
    orientation: _common_pb2.Orientation
    def __init__(self, orientation: _Optional[_Union[_common_pb2.Orientation, _Mapping]] = ...) -> None: ...
