import datetime

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

class Order(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_UNSPECIFIED: _ClassVar[Order]
    ORDER_DESCENDING: _ClassVar[Order]
    ORDER_ASCENDING: _ClassVar[Order]

class TagsFilterType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAGS_FILTER_TYPE_UNSPECIFIED: _ClassVar[TagsFilterType]
    TAGS_FILTER_TYPE_MATCH_BY_OR: _ClassVar[TagsFilterType]
    TAGS_FILTER_TYPE_TAGGED: _ClassVar[TagsFilterType]
    TAGS_FILTER_TYPE_UNTAGGED: _ClassVar[TagsFilterType]

class TabularDataSourceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TABULAR_DATA_SOURCE_TYPE_UNSPECIFIED: _ClassVar[TabularDataSourceType]
    TABULAR_DATA_SOURCE_TYPE_STANDARD: _ClassVar[TabularDataSourceType]
    TABULAR_DATA_SOURCE_TYPE_HOT_STORAGE: _ClassVar[TabularDataSourceType]
    TABULAR_DATA_SOURCE_TYPE_PIPELINE_SINK: _ClassVar[TabularDataSourceType]
ORDER_UNSPECIFIED: Order
ORDER_DESCENDING: Order
ORDER_ASCENDING: Order
TAGS_FILTER_TYPE_UNSPECIFIED: TagsFilterType
TAGS_FILTER_TYPE_MATCH_BY_OR: TagsFilterType
TAGS_FILTER_TYPE_TAGGED: TagsFilterType
TAGS_FILTER_TYPE_UNTAGGED: TagsFilterType
TABULAR_DATA_SOURCE_TYPE_UNSPECIFIED: TabularDataSourceType
TABULAR_DATA_SOURCE_TYPE_STANDARD: TabularDataSourceType
TABULAR_DATA_SOURCE_TYPE_HOT_STORAGE: TabularDataSourceType
TABULAR_DATA_SOURCE_TYPE_PIPELINE_SINK: TabularDataSourceType

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

class DataRequest(_message.Message):
    __slots__ = ("filter", "limit", "last", "sort_order")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    filter: Filter
    limit: int
    last: str
    sort_order: Order
    def __init__(self, filter: _Optional[_Union[Filter, _Mapping]] = ..., limit: _Optional[int] = ..., last: _Optional[str] = ..., sort_order: _Optional[_Union[Order, str]] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("component_name", "component_type", "method", "robot_name", "robot_id", "part_name", "part_id", "location_ids", "organization_ids", "mime_type", "interval", "tags_filter", "bbox_labels", "dataset_id")
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ROBOT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROBOT_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NAME_FIELD_NUMBER: _ClassVar[int]
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_IDS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_IDS_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TAGS_FILTER_FIELD_NUMBER: _ClassVar[int]
    BBOX_LABELS_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    component_name: str
    component_type: str
    method: str
    robot_name: str
    robot_id: str
    part_name: str
    part_id: str
    location_ids: _containers.RepeatedScalarFieldContainer[str]
    organization_ids: _containers.RepeatedScalarFieldContainer[str]
    mime_type: _containers.RepeatedScalarFieldContainer[str]
    interval: CaptureInterval
    tags_filter: TagsFilter
    bbox_labels: _containers.RepeatedScalarFieldContainer[str]
    dataset_id: str
    def __init__(self, component_name: _Optional[str] = ..., component_type: _Optional[str] = ..., method: _Optional[str] = ..., robot_name: _Optional[str] = ..., robot_id: _Optional[str] = ..., part_name: _Optional[str] = ..., part_id: _Optional[str] = ..., location_ids: _Optional[_Iterable[str]] = ..., organization_ids: _Optional[_Iterable[str]] = ..., mime_type: _Optional[_Iterable[str]] = ..., interval: _Optional[_Union[CaptureInterval, _Mapping]] = ..., tags_filter: _Optional[_Union[TagsFilter, _Mapping]] = ..., bbox_labels: _Optional[_Iterable[str]] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class TagsFilter(_message.Message):
    __slots__ = ("type", "tags")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    type: TagsFilterType
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[_Union[TagsFilterType, str]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class CaptureMetadata(_message.Message):
    __slots__ = ("organization_id", "location_id", "robot_name", "robot_id", "part_name", "part_id", "component_type", "component_name", "method_name", "method_parameters", "tags", "mime_type")
    class MethodParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _any_pb2.Any
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    ROBOT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROBOT_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NAME_FIELD_NUMBER: _ClassVar[int]
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    location_id: str
    robot_name: str
    robot_id: str
    part_name: str
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    method_parameters: _containers.MessageMap[str, _any_pb2.Any]
    tags: _containers.RepeatedScalarFieldContainer[str]
    mime_type: str
    def __init__(self, organization_id: _Optional[str] = ..., location_id: _Optional[str] = ..., robot_name: _Optional[str] = ..., robot_id: _Optional[str] = ..., part_name: _Optional[str] = ..., part_id: _Optional[str] = ..., component_type: _Optional[str] = ..., component_name: _Optional[str] = ..., method_name: _Optional[str] = ..., method_parameters: _Optional[_Mapping[str, _any_pb2.Any]] = ..., tags: _Optional[_Iterable[str]] = ..., mime_type: _Optional[str] = ...) -> None: ...

class CaptureInterval(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TabularDataByFilterRequest(_message.Message):
    __slots__ = ("data_request", "count_only", "include_internal_data")
    DATA_REQUEST_FIELD_NUMBER: _ClassVar[int]
    COUNT_ONLY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INTERNAL_DATA_FIELD_NUMBER: _ClassVar[int]
    data_request: DataRequest
    count_only: bool
    include_internal_data: bool
    def __init__(self, data_request: _Optional[_Union[DataRequest, _Mapping]] = ..., count_only: _Optional[bool] = ..., include_internal_data: _Optional[bool] = ...) -> None: ...

class TabularDataByFilterResponse(_message.Message):
    __slots__ = ("metadata", "data", "count", "last", "total_size_bytes")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    metadata: _containers.RepeatedCompositeFieldContainer[CaptureMetadata]
    data: _containers.RepeatedCompositeFieldContainer[TabularData]
    count: int
    last: str
    total_size_bytes: int
    def __init__(self, metadata: _Optional[_Iterable[_Union[CaptureMetadata, _Mapping]]] = ..., data: _Optional[_Iterable[_Union[TabularData, _Mapping]]] = ..., count: _Optional[int] = ..., last: _Optional[str] = ..., total_size_bytes: _Optional[int] = ...) -> None: ...

class TabularData(_message.Message):
    __slots__ = ("data", "metadata_index", "time_requested", "time_received")
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    TIME_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    data: _struct_pb2.Struct
    metadata_index: int
    time_requested: _timestamp_pb2.Timestamp
    time_received: _timestamp_pb2.Timestamp
    def __init__(self, data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata_index: _Optional[int] = ..., time_requested: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_received: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TabularDataBySQLRequest(_message.Message):
    __slots__ = ("organization_id", "sql_query")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SQL_QUERY_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    sql_query: str
    def __init__(self, organization_id: _Optional[str] = ..., sql_query: _Optional[str] = ...) -> None: ...

class TabularDataBySQLResponse(_message.Message):
    __slots__ = ("raw_data",)
    RAW_DATA_FIELD_NUMBER: _ClassVar[int]
    raw_data: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, raw_data: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TabularDataSource(_message.Message):
    __slots__ = ("type", "pipeline_id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    type: TabularDataSourceType
    pipeline_id: str
    def __init__(self, type: _Optional[_Union[TabularDataSourceType, str]] = ..., pipeline_id: _Optional[str] = ...) -> None: ...

class TabularDataByMQLRequest(_message.Message):
    __slots__ = ("organization_id", "mql_binary", "use_recent_data", "data_source", "query_prefix_name")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    MQL_BINARY_FIELD_NUMBER: _ClassVar[int]
    USE_RECENT_DATA_FIELD_NUMBER: _ClassVar[int]
    DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    QUERY_PREFIX_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    mql_binary: _containers.RepeatedScalarFieldContainer[bytes]
    use_recent_data: bool
    data_source: TabularDataSource
    query_prefix_name: str
    def __init__(self, organization_id: _Optional[str] = ..., mql_binary: _Optional[_Iterable[bytes]] = ..., use_recent_data: _Optional[bool] = ..., data_source: _Optional[_Union[TabularDataSource, _Mapping]] = ..., query_prefix_name: _Optional[str] = ...) -> None: ...

class TabularDataByMQLResponse(_message.Message):
    __slots__ = ("raw_data",)
    RAW_DATA_FIELD_NUMBER: _ClassVar[int]
    raw_data: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, raw_data: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ExportTabularDataRequest(_message.Message):
    __slots__ = ("part_id", "resource_name", "resource_subtype", "method_name", "interval", "additional_parameters")
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_SUBTYPE_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    part_id: str
    resource_name: str
    resource_subtype: str
    method_name: str
    interval: CaptureInterval
    additional_parameters: _struct_pb2.Struct
    def __init__(self, part_id: _Optional[str] = ..., resource_name: _Optional[str] = ..., resource_subtype: _Optional[str] = ..., method_name: _Optional[str] = ..., interval: _Optional[_Union[CaptureInterval, _Mapping]] = ..., additional_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ExportTabularDataResponse(_message.Message):
    __slots__ = ("part_id", "resource_name", "resource_subtype", "method_name", "time_captured", "organization_id", "location_id", "robot_name", "robot_id", "part_name", "method_parameters", "tags", "payload")
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_SUBTYPE_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_CAPTURED_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    ROBOT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROBOT_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    part_id: str
    resource_name: str
    resource_subtype: str
    method_name: str
    time_captured: _timestamp_pb2.Timestamp
    organization_id: str
    location_id: str
    robot_name: str
    robot_id: str
    part_name: str
    method_parameters: _struct_pb2.Struct
    tags: _containers.RepeatedScalarFieldContainer[str]
    payload: _struct_pb2.Struct
    def __init__(self, part_id: _Optional[str] = ..., resource_name: _Optional[str] = ..., resource_subtype: _Optional[str] = ..., method_name: _Optional[str] = ..., time_captured: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., organization_id: _Optional[str] = ..., location_id: _Optional[str] = ..., robot_name: _Optional[str] = ..., robot_id: _Optional[str] = ..., part_name: _Optional[str] = ..., method_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetLatestTabularDataRequest(_message.Message):
    __slots__ = ("part_id", "resource_name", "method_name", "resource_subtype", "additional_parameters")
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_NAME_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_SUBTYPE_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    part_id: str
    resource_name: str
    method_name: str
    resource_subtype: str
    additional_parameters: _struct_pb2.Struct
    def __init__(self, part_id: _Optional[str] = ..., resource_name: _Optional[str] = ..., method_name: _Optional[str] = ..., resource_subtype: _Optional[str] = ..., additional_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetLatestTabularDataResponse(_message.Message):
    __slots__ = ("time_captured", "time_synced", "payload")
    TIME_CAPTURED_FIELD_NUMBER: _ClassVar[int]
    TIME_SYNCED_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    time_captured: _timestamp_pb2.Timestamp
    time_synced: _timestamp_pb2.Timestamp
    payload: _struct_pb2.Struct
    def __init__(self, time_captured: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_synced: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class BinaryData(_message.Message):
    __slots__ = ("binary", "metadata")
    BINARY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    binary: bytes
    metadata: BinaryMetadata
    def __init__(self, binary: _Optional[bytes] = ..., metadata: _Optional[_Union[BinaryMetadata, _Mapping]] = ...) -> None: ...

class BinaryDataByFilterRequest(_message.Message):
    __slots__ = ("data_request", "include_binary", "count_only", "include_internal_data")
    DATA_REQUEST_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_BINARY_FIELD_NUMBER: _ClassVar[int]
    COUNT_ONLY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INTERNAL_DATA_FIELD_NUMBER: _ClassVar[int]
    data_request: DataRequest
    include_binary: bool
    count_only: bool
    include_internal_data: bool
    def __init__(self, data_request: _Optional[_Union[DataRequest, _Mapping]] = ..., include_binary: _Optional[bool] = ..., count_only: _Optional[bool] = ..., include_internal_data: _Optional[bool] = ...) -> None: ...

class BinaryDataByFilterResponse(_message.Message):
    __slots__ = ("data", "count", "last", "total_size_bytes")
    DATA_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[BinaryData]
    count: int
    last: str
    total_size_bytes: int
    def __init__(self, data: _Optional[_Iterable[_Union[BinaryData, _Mapping]]] = ..., count: _Optional[int] = ..., last: _Optional[str] = ..., total_size_bytes: _Optional[int] = ...) -> None: ...

class BinaryID(_message.Message):
    __slots__ = ("file_id", "organization_id", "location_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    organization_id: str
    location_id: str
    def __init__(self, file_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class BinaryDataByIDsRequest(_message.Message):
    __slots__ = ("include_binary", "binary_ids", "binary_data_ids")
    INCLUDE_BINARY_FIELD_NUMBER: _ClassVar[int]
    BINARY_IDS_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_IDS_FIELD_NUMBER: _ClassVar[int]
    include_binary: bool
    binary_ids: _containers.RepeatedCompositeFieldContainer[BinaryID]
    binary_data_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, include_binary: _Optional[bool] = ..., binary_ids: _Optional[_Iterable[_Union[BinaryID, _Mapping]]] = ..., binary_data_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BinaryDataByIDsResponse(_message.Message):
    __slots__ = ("data", "count")
    DATA_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[BinaryData]
    count: int
    def __init__(self, data: _Optional[_Iterable[_Union[BinaryData, _Mapping]]] = ..., count: _Optional[int] = ...) -> None: ...

class BinaryMetadata(_message.Message):
    __slots__ = ("id", "capture_metadata", "time_requested", "time_received", "file_name", "file_ext", "uri", "annotations", "dataset_ids", "binary_data_id", "file_size_bytes")
    ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_METADATA_FIELD_NUMBER: _ClassVar[int]
    TIME_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    TIME_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_EXT_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    DATASET_IDS_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    capture_metadata: CaptureMetadata
    time_requested: _timestamp_pb2.Timestamp
    time_received: _timestamp_pb2.Timestamp
    file_name: str
    file_ext: str
    uri: str
    annotations: Annotations
    dataset_ids: _containers.RepeatedScalarFieldContainer[str]
    binary_data_id: str
    file_size_bytes: int
    def __init__(self, id: _Optional[str] = ..., capture_metadata: _Optional[_Union[CaptureMetadata, _Mapping]] = ..., time_requested: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_received: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., file_name: _Optional[str] = ..., file_ext: _Optional[str] = ..., uri: _Optional[str] = ..., annotations: _Optional[_Union[Annotations, _Mapping]] = ..., dataset_ids: _Optional[_Iterable[str]] = ..., binary_data_id: _Optional[str] = ..., file_size_bytes: _Optional[int] = ...) -> None: ...

class DeleteTabularFilter(_message.Message):
    __slots__ = ("location_ids", "robot_id", "part_id", "component_type", "component_name", "method", "tags_filter")
    LOCATION_IDS_FIELD_NUMBER: _ClassVar[int]
    ROBOT_ID_FIELD_NUMBER: _ClassVar[int]
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TAGS_FILTER_FIELD_NUMBER: _ClassVar[int]
    location_ids: _containers.RepeatedScalarFieldContainer[str]
    robot_id: str
    part_id: str
    component_type: str
    component_name: str
    method: str
    tags_filter: TagsFilter
    def __init__(self, location_ids: _Optional[_Iterable[str]] = ..., robot_id: _Optional[str] = ..., part_id: _Optional[str] = ..., component_type: _Optional[str] = ..., component_name: _Optional[str] = ..., method: _Optional[str] = ..., tags_filter: _Optional[_Union[TagsFilter, _Mapping]] = ...) -> None: ...

class DeleteTabularDataRequest(_message.Message):
    __slots__ = ("organization_id", "delete_older_than_days", "filter")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    DELETE_OLDER_THAN_DAYS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    delete_older_than_days: int
    filter: DeleteTabularFilter
    def __init__(self, organization_id: _Optional[str] = ..., delete_older_than_days: _Optional[int] = ..., filter: _Optional[_Union[DeleteTabularFilter, _Mapping]] = ...) -> None: ...

class DeleteTabularDataResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class DeleteBinaryDataByFilterRequest(_message.Message):
    __slots__ = ("filter", "include_internal_data")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INTERNAL_DATA_FIELD_NUMBER: _ClassVar[int]
    filter: Filter
    include_internal_data: bool
    def __init__(self, filter: _Optional[_Union[Filter, _Mapping]] = ..., include_internal_data: _Optional[bool] = ...) -> None: ...

class DeleteBinaryDataByFilterResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class DeleteBinaryDataByIDsRequest(_message.Message):
    __slots__ = ("binary_ids", "binary_data_ids")
    BINARY_IDS_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_IDS_FIELD_NUMBER: _ClassVar[int]
    binary_ids: _containers.RepeatedCompositeFieldContainer[BinaryID]
    binary_data_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, binary_ids: _Optional[_Iterable[_Union[BinaryID, _Mapping]]] = ..., binary_data_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteBinaryDataByIDsResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class AddTagsToBinaryDataByIDsRequest(_message.Message):
    __slots__ = ("binary_ids", "binary_data_ids", "tags")
    BINARY_IDS_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_IDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    binary_ids: _containers.RepeatedCompositeFieldContainer[BinaryID]
    binary_data_ids: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, binary_ids: _Optional[_Iterable[_Union[BinaryID, _Mapping]]] = ..., binary_data_ids: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class AddTagsToBinaryDataByIDsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddTagsToBinaryDataByFilterRequest(_message.Message):
    __slots__ = ("filter", "tags")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    filter: Filter
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, filter: _Optional[_Union[Filter, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class AddTagsToBinaryDataByFilterResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveTagsFromBinaryDataByIDsRequest(_message.Message):
    __slots__ = ("binary_ids", "binary_data_ids", "tags")
    BINARY_IDS_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_IDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    binary_ids: _containers.RepeatedCompositeFieldContainer[BinaryID]
    binary_data_ids: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, binary_ids: _Optional[_Iterable[_Union[BinaryID, _Mapping]]] = ..., binary_data_ids: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveTagsFromBinaryDataByIDsResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class RemoveTagsFromBinaryDataByFilterRequest(_message.Message):
    __slots__ = ("filter", "tags")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    filter: Filter
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, filter: _Optional[_Union[Filter, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveTagsFromBinaryDataByFilterResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class TagsByFilterRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: Filter
    def __init__(self, filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class TagsByFilterResponse(_message.Message):
    __slots__ = ("tags",)
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tags: _Optional[_Iterable[str]] = ...) -> None: ...

class AddBoundingBoxToImageByIDRequest(_message.Message):
    __slots__ = ("binary_id", "binary_data_id", "label", "x_min_normalized", "y_min_normalized", "x_max_normalized", "y_max_normalized", "confidence")
    BINARY_ID_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    X_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    X_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    binary_id: BinaryID
    binary_data_id: str
    label: str
    x_min_normalized: float
    y_min_normalized: float
    x_max_normalized: float
    y_max_normalized: float
    confidence: float
    def __init__(self, binary_id: _Optional[_Union[BinaryID, _Mapping]] = ..., binary_data_id: _Optional[str] = ..., label: _Optional[str] = ..., x_min_normalized: _Optional[float] = ..., y_min_normalized: _Optional[float] = ..., x_max_normalized: _Optional[float] = ..., y_max_normalized: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class AddBoundingBoxToImageByIDResponse(_message.Message):
    __slots__ = ("bbox_id",)
    BBOX_ID_FIELD_NUMBER: _ClassVar[int]
    bbox_id: str
    def __init__(self, bbox_id: _Optional[str] = ...) -> None: ...

class RemoveBoundingBoxFromImageByIDRequest(_message.Message):
    __slots__ = ("binary_id", "binary_data_id", "bbox_id")
    BINARY_ID_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_ID_FIELD_NUMBER: _ClassVar[int]
    BBOX_ID_FIELD_NUMBER: _ClassVar[int]
    binary_id: BinaryID
    binary_data_id: str
    bbox_id: str
    def __init__(self, binary_id: _Optional[_Union[BinaryID, _Mapping]] = ..., binary_data_id: _Optional[str] = ..., bbox_id: _Optional[str] = ...) -> None: ...

class RemoveBoundingBoxFromImageByIDResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateBoundingBoxRequest(_message.Message):
    __slots__ = ("binary_id", "binary_data_id", "bbox_id", "label", "x_min_normalized", "y_min_normalized", "x_max_normalized", "y_max_normalized", "confidence")
    BINARY_ID_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_ID_FIELD_NUMBER: _ClassVar[int]
    BBOX_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    X_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    X_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    binary_id: BinaryID
    binary_data_id: str
    bbox_id: str
    label: str
    x_min_normalized: float
    y_min_normalized: float
    x_max_normalized: float
    y_max_normalized: float
    confidence: float
    def __init__(self, binary_id: _Optional[_Union[BinaryID, _Mapping]] = ..., binary_data_id: _Optional[str] = ..., bbox_id: _Optional[str] = ..., label: _Optional[str] = ..., x_min_normalized: _Optional[float] = ..., y_min_normalized: _Optional[float] = ..., x_max_normalized: _Optional[float] = ..., y_max_normalized: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class UpdateBoundingBoxResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BoundingBoxLabelsByFilterRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: Filter
    def __init__(self, filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class BoundingBoxLabelsByFilterResponse(_message.Message):
    __slots__ = ("labels",)
    LABELS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, labels: _Optional[_Iterable[str]] = ...) -> None: ...

class AddBinaryDataToDatasetByIDsRequest(_message.Message):
    __slots__ = ("binary_ids", "binary_data_ids", "dataset_id")
    BINARY_IDS_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_IDS_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    binary_ids: _containers.RepeatedCompositeFieldContainer[BinaryID]
    binary_data_ids: _containers.RepeatedScalarFieldContainer[str]
    dataset_id: str
    def __init__(self, binary_ids: _Optional[_Iterable[_Union[BinaryID, _Mapping]]] = ..., binary_data_ids: _Optional[_Iterable[str]] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class AddBinaryDataToDatasetByIDsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveBinaryDataFromDatasetByIDsRequest(_message.Message):
    __slots__ = ("binary_ids", "binary_data_ids", "dataset_id")
    BINARY_IDS_FIELD_NUMBER: _ClassVar[int]
    BINARY_DATA_IDS_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    binary_ids: _containers.RepeatedCompositeFieldContainer[BinaryID]
    binary_data_ids: _containers.RepeatedScalarFieldContainer[str]
    dataset_id: str
    def __init__(self, binary_ids: _Optional[_Iterable[_Union[BinaryID, _Mapping]]] = ..., binary_data_ids: _Optional[_Iterable[str]] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class RemoveBinaryDataFromDatasetByIDsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
