from capsync.proto.viam.component.camera.v1 import camera_pb2 as _camera_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDetectionsFromCameraRequest(_message.Message):
    __slots__ = ("name", "camera_name", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    camera_name: str
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., camera_name: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetDetectionsFromCameraResponse(_message.Message):
    __slots__ = ("detections",)
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    def __init__(self, detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ...) -> None: ...

class GetClassificationsFromCameraRequest(_message.Message):
    __slots__ = ("name", "camera_name", "n", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    camera_name: str
    n: int
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., camera_name: _Optional[str] = ..., n: _Optional[int] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetClassificationsFromCameraResponse(_message.Message):
    __slots__ = ("classifications",)
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    classifications: _containers.RepeatedCompositeFieldContainer[Classification]
    def __init__(self, classifications: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("x_min", "y_min", "x_max", "y_max", "confidence", "class_name", "x_min_normalized", "y_min_normalized", "x_max_normalized", "y_max_normalized")
    X_MIN_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_FIELD_NUMBER: _ClassVar[int]
    X_MAX_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    X_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    X_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    x_min: int
    y_min: int
    x_max: int
    y_max: int
    confidence: float
    class_name: str
    x_min_normalized: float
    y_min_normalized: float
    x_max_normalized: float
    y_max_normalized: float
    def __init__(self, x_min: _Optional[int] = ..., y_min: _Optional[int] = ..., x_max: _Optional[int] = ..., y_max: _Optional[int] = ..., confidence: _Optional[float] = ..., class_name: _Optional[str] = ..., x_min_normalized: _Optional[float] = ..., y_min_normalized: _Optional[float] = ..., x_max_normalized: _Optional[float] = ..., y_max_normalized: _Optional[float] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("class_name", "confidence")
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    class_name: str
    confidence: float
    def __init__(self, class_name: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class CaptureAllFromCameraRequest(_message.Message):
    __slots__ = ("name", "camera_name", "return_image", "return_classifications", "return_detections", "return_object_point_clouds", "return_detections_3d", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    RETURN_IMAGE_FIELD_NUMBER: _ClassVar[int]
    RETURN_CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    RETURN_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    RETURN_OBJECT_POINT_CLOUDS_FIELD_NUMBER: _ClassVar[int]
    RETURN_DETECTIONS_3D_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    camera_name: str
    return_image: bool
    return_classifications: bool
    return_detections: bool
    return_object_point_clouds: bool
    return_detections_3d: bool
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., camera_name: _Optional[str] = ..., return_image: _Optional[bool] = ..., return_classifications: _Optional[bool] = ..., return_detections: _Optional[bool] = ..., return_object_point_clouds: _Optional[bool] = ..., return_detections_3d: _Optional[bool] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CaptureAllFromCameraResponse(_message.Message):
    __slots__ = ("image", "detections", "classifications", "extra")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    image: _camera_pb2.Image
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    classifications: _containers.RepeatedCompositeFieldContainer[Classification]
    extra: _struct_pb2.Struct
    def __init__(self, image: _Optional[_Union[_camera_pb2.Image, _Mapping]] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., classifications: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
