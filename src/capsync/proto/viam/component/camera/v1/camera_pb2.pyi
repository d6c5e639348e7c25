from capsync.proto.viam.app.data.v1 import data_pb2 as _data_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetImagesRequest(_message.Message):
    __slots__ = ("name", "filter_source_names", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_SOURCE_NAMES_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    filter_source_names: _containers.RepeatedScalarFieldContainer[str]
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., filter_source_names: _Optional[_Iterable[str]] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("source_name", "image", "mime_type", "annotations")
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    source_name: str
    image: bytes
    mime_type: str
    annotations: _data_pb2.Annotations
    def __init__(self, source_name: _Optional[str] = ..., image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., annotations: _Optional[_Union[_data_pb2.Annotations, _Mapping]] = ...) -> None: ...

class GetPointCloudRequest(_message.Message):
    __slots__ = ("name", "mime_type", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    mime_type: str
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., mime_type: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetPointCloudResponse(_message.Message):
    __slots__ = ("mime_type", "point_cloud")
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    POINT_CLOUD_FIELD_NUMBER: _ClassVar[int]
    mime_type: str
    point_cloud: bytes
    def __init__(self, mime_type: _Optional[str] = ..., point_cloud: _Optional[bytes] = ...) -> None: ...
