from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetGPIORequest(_message.Message):
    __slots__ = ("name", "pin", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    pin: str
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., pin: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetGPIOResponse(_message.Message):
    __slots__ = ("high",)
    HIGH_FIELD_NUMBER: _ClassVar[int]
    high: bool
    def __init__(self, high: _Optional[bool] = ...) -> None: ...

class ReadAnalogReaderRequest(_message.Message):
    __slots__ = ("board_name", "analog_reader_name", "extra")
    BOARD_NAME_FIELD_NUMBER: _ClassVar[int]
    ANALOG_READER_NAME_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    board_name: str
    analog_reader_name: str
    extra: _struct_pb2.Struct
    def __init__(self, board_name: _Optional[str] = ..., analog_reader_name: _Optional[str] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ReadAnalogReaderResponse(_message.Message):
    __slots__ = ("value", "min_range", "max_range", "step_size")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    MIN_RANGE_FIELD_NUMBER: _ClassVar[int]
    MAX_RANGE_FIELD_NUMBER: _ClassVar[int]
    STEP_SIZE_FIELD_NUMBER: _ClassVar[int]
    value: int
    min_range: float
    max_range: float
    step_size: float
    def __init__(self, value: _Optional[int] = ..., min_range: _Optional[float] = ..., max_range: _Optional[float] = ..., step_size: _Optional[float] = ...) -> None: ...
