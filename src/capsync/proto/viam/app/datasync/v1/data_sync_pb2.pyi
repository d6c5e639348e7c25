import datetime

from capsync.proto.viam.app.data.v1 import data_pb2 as _data_pb2
from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_TYPE_UNSPECIFIED: _ClassVar[DataType]
    DATA_TYPE_BINARY_SENSOR: _ClassVar[DataType]
    DATA_TYPE_TABULAR_SENSOR: _ClassVar[DataType]
    DATA_TYPE_FILE: _ClassVar[DataType]

class MimeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MIME_TYPE_UNSPECIFIED: _ClassVar[MimeType]
    MIME_TYPE_IMAGE_JPEG: _ClassVar[MimeType]
    MIME_TYPE_IMAGE_PNG: _ClassVar[MimeType]
    MIME_TYPE_APPLICATION_PCD: _ClassVar[MimeType]
    MIME_TYPE_VIDEO_MP4: _ClassVar[MimeType]
DATA_TYPE_UNSPECIFIED: DataType
DATA_TYPE_BINARY_SENSOR: DataType
DATA_TYPE_TABULAR_SENSOR: DataType
DATA_TYPE_FILE: DataType
MIME_TYPE_UNSPECIFIED: MimeType
MIME_TYPE_IMAGE_JPEG: MimeType
MIME_TYPE_IMAGE_PNG: MimeType
MIME_TYPE_APPLICATION_PCD: MimeType
MIME_TYPE_VIDEO_MP4: MimeType

class DataCaptureMetadata(_message.Message):
    __slots__ = ("component_type", "component_name", "method_name", "type", "method_parameters", "file_extension", "tags", "mime_type")
    class MethodParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _any_pb2.Any
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...
    COMPONENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METHOD_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    FILE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    component_type: str
    component_name: str
    method_name: str
    type: DataType
    method_parameters: _containers.MessageMap[str, _any_pb2.Any]
    file_extension: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    mime_type: str
    def __init__(self, component_type: _Optional[str] = ..., component_name: _Optional[str] = ..., method_name: _Optional[str] = ..., type: _Optional[_Union[DataType, str]] = ..., method_parameters: _Optional[_Mapping[str, _any_pb2.Any]] = ..., file_extension: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., mime_type: _Optional[str] = ...) -> None: ...

class SensorMetadata(_message.Message):
    __slots__ = ("time_requested", "time_received", "mime_type", "annotations")
    TIME_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    TIME_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    time_requested: _timestamp_pb2.Timestamp
    time_received: _timestamp_pb2.Timestamp
    mime_type: MimeType
    annotations: _data_pb2.Annotations
    def __init__(self, time_requested: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_received: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mime_type: _Optional[_Union[MimeType, str]] = ..., annotations: _Optional[_Union[_data_pb2.Annotations, _Mapping]] = ...) -> None: ...

class SensorData(_message.Message):
    __slots__ = ("metadata", "struct", "binary")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STRUCT_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    metadata: SensorMetadata
    struct: _struct_pb2.Struct
    binary: bytes
    def __init__(self, metadata: _Optional[_Union[SensorMetadata, _Mapping]] = ..., struct: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., binary: _Optional[bytes] = ...) -> None: ...

class UploadMetadata(_message.Message):
    __slots__ = ("part_id", "component_type", "component_name", "method_name", "type", "file_name", "method_parameters", "file_extension", "tags", "dataset_ids", "mime_type", "file_create_time", "file_modify_time")
    class MethodParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _any_pb2.Any
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    FILE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DATASET_IDS_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FILE_MODIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    type: DataType
    file_name: str
    method_parameters: _containers.MessageMap[str, _any_pb2.Any]
    file_extension: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    dataset_ids: _containers.RepeatedScalarFieldContainer[str]
    mime_type: str
    file_create_time: _timestamp_pb2.Timestamp
    file_modify_time: _timestamp_pb2.Timestamp
    def __init__(self, part_id: _Optional[str] = ..., component_type: _Optional[str] = ..., component_name: _Optional[str] = ..., method_name: _Optional[str] = ..., type: _Optional[_Union[DataType, str]] = ..., file_name: _Optional[str] = ..., method_parameters: _Optional[_Mapping[str, _any_pb2.Any]] = ..., file_extension: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., dataset_ids: _Optional[_Iterable[str]] = ..., mime_type: _Optional[str] = ..., file_create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., file_modify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DataCaptureUploadRequest(_message.Message):
    __slots__ = ("metadata", "sensor_contents")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SENSOR_CONTENTS_FIELD_NUMBER: _ClassVar[int]
    metadata: UploadMetadata
    sensor_contents: _containers.RepeatedCompositeFieldContainer[SensorData]
    def __init__(self, metadata: _Optional[_Union[UploadMetadata, _Mapping]] = ..., sensor_contents: _Optional[_Iterable[_Union[SensorData, _Mapping]]] = ...) -> None: ...

class DataCaptureUploadResponse(_message.Message):
    __slots__ = ("file_id", "binary_data_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    binary_data_id: str
    def __init__(self, file_id: _Optional[str] = ..., binary_data_id: _Optional[str] = ...) -> None: ...

class FileData(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class FileUploadRequest(_message.Message):
    __slots__ = ("metadata", "file_contents")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FILE_CONTENTS_FIELD_NUMBER: _ClassVar[int]
    metadata: UploadMetadata
    file_contents: FileData
    def __init__(self, metadata: _Optional[_Union[UploadMetadata, _Mapping]] = ..., file_contents: _Optional[_Union[FileData, _Mapping]] = ...) -> None: ...

class FileUploadResponse(_message.Message):
    __slots__ = ("file_id", "binary_data_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    binary_data_id: str
    def __init__(self, file_id: _Optional[str] = ..., binary_data_id: _Optional[str] = ...) -> None: ...

class DataCaptureUploadMetadata(_message.Message):
    __slots__ = ("upload_metadata", "sensor_metadata")
    UPLOAD_METADATA_FIELD_NUMBER: _ClassVar[int]
    SENSOR_METADATA_FIELD_NUMBER: _ClassVar[int]
    upload_metadata: UploadMetadata
    sensor_metadata: SensorMetadata
    def __init__(self, upload_metadata: _Optional[_Union[UploadMetadata, _Mapping]] = ..., sensor_metadata: _Optional[_Union[SensorMetadata, _Mapping]] = ...) -> None: ...

class StreamingDataCaptureUploadRequest(_message.Message):
    __slots__ = ("metadata", "data")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    metadata: DataCaptureUploadMetadata
    data: bytes
    def __init__(self, metadata: _Optional[_Union[DataCaptureUploadMetadata, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class StreamingDataCaptureUploadResponse(_message.Message):
    __slots__ = ("file_id", "binary_data_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    binary_data_id: str
    def __init__(self, file_id: _Optional[str] = ..., binary_data_id: _Optional[str] = ...) -> None: ...
