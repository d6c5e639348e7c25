from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Annotations(_message.Message):
    __slots__ = ("bboxes", "classifications")
    BBOXES_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    bboxes: _containers.RepeatedCompositeFieldContainer[BoundingBox]
    classifications: _containers.RepeatedCompositeFieldContainer[Classification]
    def __init__(self, bboxes: _Optional[_Iterable[_Union[BoundingBox, _Mapping]]] = ..., classifications: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("id", "label", "x_min_normalized", "y_min_normalized", "x_max_normalized", "y_max_normalized", "confidence")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    X_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    X_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    x_min_normalized: float
    y_min_normalized: float
    x_max_normalized: float
    y_max_normalized: float
    confidence: float
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., x_min_normalized: _Optional[float] = ..., y_min_normalized: _Optional[float] = ..., x_max_normalized: _Optional[float] = ..., y_max_normalized: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("label", "confidence", "id")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    label: str
    confidence: float
    id: str
    def __init__(self, label: _Optional[str] = ..., confidence: _Optional[float] = ..., id: _Optional[str] = ...) -> None: ...
