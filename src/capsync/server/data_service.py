"""Viam's ``viam.app.data.v1.DataService`` on ``capsync serve`` (SPEC §7).

Registered as a generic handler on Viam's exact method paths, so viam-sdk's
``DataClient`` works unchanged; the API-key interceptor guards it like the
ingest service. Every method reads and changes the store through the one query
layer (:class:`capsync.query.api.DataQuery`). Methods a self-hosted server does
not offer answer UNIMPLEMENTED with the reason. ``TabularDataByFilter``'s answer bytes are
built in :mod:`capsync.server.data_responses`.

Errors: a bad request is INVALID_ARGUMENT (SQL/MQL writes included), an unknown
id NOT_FOUND, a taken dataset name ALREADY_EXISTS, an unreachable database
UNAVAILABLE.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from capsync.proto.viam.app.data.v1 import data_pb2 as pb
from capsync.query.api import DEFAULT_PAGE_LIMIT, DataQuery
from capsync.query.catalog import AlreadyExists
from capsync.query.filters import Cursor, DataFilter, NotFound, Page, QueryError
from capsync.server import data_convert as convert
from capsync.server.data_responses import records_response, tabular_response
from capsync.server.stores.base import StoreUnavailable

log = logging.getLogger(__name__)

SERVICE = "viam.app.data.v1.DataService"
UNIMPLEMENTED = {
    "GetDatabaseConnection": "a self-hosted server has no hosted MongoDB connection to hand out",
    "ConfigureDatabaseUser": "a self-hosted server has no hosted database users",
    "AddSequencesToDataset": "sequences are not supported by capsync serve",
    "RemoveSequencesFromDataset": "sequences are not supported by capsync serve",
    "CreateIndex": "custom indexes are not supported by capsync serve",
    "ListIndexes": "custom indexes are not supported by capsync serve",
    "DeleteIndex": "custom indexes are not supported by capsync serve",
    "CreateSavedQuery": "saved queries are not supported by capsync serve",
    "UpdateSavedQuery": "saved queries are not supported by capsync serve",
    "GetSavedQuery": "saved queries are not supported by capsync serve",
    "DeleteSavedQuery": "saved queries are not supported by capsync serve",
    "ListSavedQueries": "saved queries are not supported by capsync serve",
    "CreateBinaryDataSignedURL": "capsync serve has no signed URLs; use BinaryDataByIDs",
    "CreateSequence": "sequences are not supported by capsync serve",
    "GetSequence": "sequences are not supported by capsync serve",
    "UpdateSequence": "sequences are not supported by capsync serve",
    "DeleteSequence": "sequences are not supported by capsync serve",
    "ListSequences": "sequences are not supported by capsync serve",
    "SequencesByDatasetID": "sequences are not supported by capsync serve",
    "GetSequenceBinaryData": "sequences are not supported by capsync serve",
}


class MissingBson(RuntimeError):
    """pymongo (which brings ``bson``) is not installed (gRPC FAILED_PRECONDITION)."""


def _bson() -> Any:
    """The ``bson`` module: SQL and MQL answers are BSON documents."""
    try:
        import bson
    except ImportError:
        raise MissingBson(
            "SQL and MQL answers are BSON, which needs pymongo: pip install 'capsync[mongo]'"
        ) from None
    return bson


_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (MissingBson, grpc.StatusCode.FAILED_PRECONDITION),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (QueryError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
)


def answer_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the query layer's errors into gRPC status codes (unexpected ones: INTERNAL)."""

    @functools.wraps(method)
    def call(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            for kind, code in _CODES:
                if isinstance(exc, kind):
                    context.abort(code, str(exc))
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__}: {type(exc).__name__}")

    return call


def _page(data_request: Any) -> tuple[DataFilter, Page]:
    limit = data_request.limit or DEFAULT_PAGE_LIMIT
    descending = data_request.sort_order == pb.Order.ORDER_DESCENDING
    page = Page(limit=limit, after=Cursor.parse(data_request.last), descending=descending)
    return convert.data_filter(data_request.filter), page


def _documents(rows: list[dict[str, Any]]) -> list[bytes]:
    bson = _bson()
    try:
        return [bson.encode(row) for row in rows]
    except (bson.errors.BSONError, OverflowError, TypeError) as exc:
        raise QueryError(f"a result row cannot be encoded as BSON: {exc}") from None


class DataService:
    """The servicer; each method takes a request message and returns a response message."""

    def __init__(self, query: DataQuery) -> None:
        self.query = query

    # --- tabular ---------------------------------------------------------------------------

    @answer_errors
    def TabularDataByFilter(self, request: Any, context: grpc.ServicerContext) -> Any:
        data_filter, page = _page(request.data_request)
        if request.count_only:
            return pb.TabularDataByFilterResponse(count=self.query.count_tabular(data_filter))
        runs = self.query.tabular_runs(data_filter, page)
        if runs is not None:
            return tabular_response(runs)
        return records_response(*self.query.tabular_page(data_filter, page))

    @answer_errors
    def TabularDataBySQL(self, request: Any, context: grpc.ServicerContext) -> Any:
        rows = self.query.sql(request.sql_query)
        return pb.TabularDataBySQLResponse(raw_data=_documents(rows))

    @answer_errors
    def TabularDataByMQL(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.HasField("data_source") and request.data_source.type not in (
            pb.TabularDataSourceType.TABULAR_DATA_SOURCE_TYPE_UNSPECIFIED,
            pb.TabularDataSourceType.TABULAR_DATA_SOURCE_TYPE_STANDARD,
        ):
            raise QueryError("data_source: capsync serve has standard storage only")
        if request.HasField("query_prefix_name"):
            raise QueryError("query_prefix_name: saved queries are not supported by capsync serve")
        bson = _bson()
        pipeline = []
        for index, stage in enumerate(request.mql_binary):
            try:
                pipeline.append(bson.decode(stage))
            except (bson.errors.BSONError, ValueError) as exc:
                raise QueryError(f"MQL: stage {index} is not a BSON document: {exc}") from None
        return pb.TabularDataByMQLResponse(raw_data=_documents(self.query.mql(pipeline)))

    @answer_errors
    def GetLatestTabularData(self, request: Any, context: grpc.ServicerContext) -> Any:
        record = self.query.latest_tabular(
            request.part_id,
            request.resource_name,
            request.method_name,
            convert.component_type(request.resource_subtype) or "",
        )
        if record is None:
            return pb.GetLatestTabularDataResponse()
        response = pb.GetLatestTabularDataResponse(payload=convert.struct(record.data))
        response.time_captured.CopyFrom(convert.timestamp(record.time_requested_ns))
        response.time_synced.CopyFrom(convert.timestamp(record.uploaded_at_ns))
        return response

    def ExportTabularData(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            interval = request.interval
            data_filter = DataFilter(
                part_id=request.part_id or None,
                component_name=request.resource_name or None,
                component_type=convert.component_type(request.resource_subtype),
                method_name=request.method_name or None,
                start_ns=convert.timestamp_ns(interval, "start"),
                end_ns=convert.timestamp_ns(interval, "end"),
            )
            for r in self.query.iter_tabular(data_filter):
                yield pb.ExportTabularDataResponse(
                    part_id=r.part_id,
                    resource_name=r.component_name,
                    resource_subtype=r.component_type,
                    method_name=r.method_name,
                    time_captured=convert.timestamp(r.time_requested_ns),
                    organization_id=convert.ORGANIZATION_ID,
                    location_id=convert.LOCATION_ID,
                    robot_id=r.part_id,
                    method_parameters=convert.struct(r.method_parameters),
                    tags=list(r.tags),
                    payload=convert.struct(r.data),
                )
        except (QueryError, NotFound, StoreUnavailable) as exc:
            code = grpc.StatusCode.UNAVAILABLE if isinstance(exc, StoreUnavailable) else (
                grpc.StatusCode.INVALID_ARGUMENT
            )  # fmt: skip
            context.abort(code, str(exc))

    @answer_errors
    def DeleteTabularData(self, request: Any, context: grpc.ServicerContext) -> Any:
        data_filter = None
        if request.HasField("filter") and request.filter.ByteSize():
            data_filter = convert.delete_filter(request.filter)
        deleted = self.query.delete_tabular_older_than(
            request.delete_older_than_days, data_filter=data_filter
        )
        return pb.DeleteTabularDataResponse(deleted_count=deleted)

    # --- binary ----------------------------------------------------------------------------

    @answer_errors
    def BinaryDataByFilter(self, request: Any, context: grpc.ServicerContext) -> Any:
        data_filter, page = _page(request.data_request)
        if request.count_only:
            count, size = self.query.count_blobs(data_filter)
            return pb.BinaryDataByFilterResponse(count=count, total_size_bytes=size)
        records, cursor = self.query.blob_page(data_filter, page)
        data = [self._binary(r, request.include_binary) for r in records]
        return pb.BinaryDataByFilterResponse(
            data=data,
            count=len(data),
            last=cursor.token() if cursor else "",
            total_size_bytes=sum(r.size_bytes for r in records),
        )

    def _binary(self, record: Any, include_binary: bool) -> Any:
        payload = self.query.payload(record) if include_binary else b""
        return pb.BinaryData(binary=payload, metadata=convert.binary_metadata(record))

    @answer_errors
    def BinaryDataByIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        records = self.query.blobs_by_ids(convert.binary_ids(request))
        data = [self._binary(r, request.include_binary) for r in records]
        return pb.BinaryDataByIDsResponse(data=data, count=len(data))

    @answer_errors
    def DeleteBinaryDataByFilter(self, request: Any, context: grpc.ServicerContext) -> Any:
        deleted = self.query.delete_blobs_by_filter(convert.data_filter(request.filter))
        return pb.DeleteBinaryDataByFilterResponse(deleted_count=deleted)

    @answer_errors
    def DeleteBinaryDataByIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        deleted = self.query.delete_blobs(convert.binary_ids(request))
        return pb.DeleteBinaryDataByIDsResponse(deleted_count=deleted)

    # --- tags ------------------------------------------------------------------------------

    @answer_errors
    def AddTagsToBinaryDataByIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.query.add_tags(convert.binary_ids(request), list(request.tags))
        return pb.AddTagsToBinaryDataByIDsResponse()

    @answer_errors
    def AddTagsToBinaryDataByFilter(self, request: Any, context: grpc.ServicerContext) -> Any:
        ids = self.query.ids(convert.data_filter(request.filter))
        self.query.add_tags(ids, list(request.tags))
        return pb.AddTagsToBinaryDataByFilterResponse()

    @answer_errors
    def RemoveTagsFromBinaryDataByIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        count = self.query.remove_tags(convert.binary_ids(request), list(request.tags))
        return pb.RemoveTagsFromBinaryDataByIDsResponse(deleted_count=count)

    @answer_errors
    def RemoveTagsFromBinaryDataByFilter(self, request: Any, context: grpc.ServicerContext) -> Any:
        ids = self.query.ids(convert.data_filter(request.filter))
        count = self.query.remove_tags(ids, list(request.tags))
        return pb.RemoveTagsFromBinaryDataByFilterResponse(deleted_count=count)

    @answer_errors
    def TagsByFilter(self, request: Any, context: grpc.ServicerContext) -> Any:
        tags = self.query.tags(convert.data_filter(request.filter))
        return pb.TagsByFilterResponse(tags=tags)

    # --- bounding boxes --------------------------------------------------------------------

    @staticmethod
    def _one_id(request: Any, field: str = "binary_id") -> str:
        blob_id = request.binary_data_id or getattr(request, field).file_id
        if not blob_id:
            raise QueryError("binary_data_id must be set")
        return str(blob_id)

    @answer_errors
    def AddBoundingBoxToImageByID(self, request: Any, context: grpc.ServicerContext) -> Any:
        box_id = self.query.add_box(
            self._one_id(request),
            request.label,
            request.x_min_normalized,
            request.y_min_normalized,
            request.x_max_normalized,
            request.y_max_normalized,
            request.confidence if request.HasField("confidence") else None,
        )
        return pb.AddBoundingBoxToImageByIDResponse(bbox_id=box_id)

    @answer_errors
    def UpdateBoundingBox(self, request: Any, context: grpc.ServicerContext) -> Any:
        fields = ("label", "x_min_normalized", "y_min_normalized", "x_max_normalized",
                  "y_max_normalized", "confidence")  # fmt: skip
        changes = {name: getattr(request, name) for name in fields if request.HasField(name)}
        self.query.update_box(self._one_id(request), request.bbox_id, **changes)
        return pb.UpdateBoundingBoxResponse()

    @answer_errors
    def RemoveBoundingBoxFromImageByID(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.query.remove_box(self._one_id(request), request.bbox_id)
        return pb.RemoveBoundingBoxFromImageByIDResponse()

    @answer_errors
    def BoundingBoxLabelsByFilter(self, request: Any, context: grpc.ServicerContext) -> Any:
        labels = self.query.box_labels(convert.data_filter(request.filter))
        return pb.BoundingBoxLabelsByFilterResponse(labels=labels)

    # --- datasets --------------------------------------------------------------------------

    @answer_errors
    def AddBinaryDataToDatasetByIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.query.add_to_dataset(convert.binary_ids(request), request.dataset_id)
        return pb.AddBinaryDataToDatasetByIDsResponse()

    @answer_errors
    def RemoveBinaryDataFromDatasetByIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.query.remove_from_dataset(convert.binary_ids(request), request.dataset_id)
        return pb.RemoveBinaryDataFromDatasetByIDsResponse()


_MESSAGES: dict[str, tuple[Any, bool]] = {
    "TabularDataByFilter": (pb.TabularDataByFilterRequest, False),
    "TabularDataBySQL": (pb.TabularDataBySQLRequest, False),
    "TabularDataByMQL": (pb.TabularDataByMQLRequest, False),
    "GetLatestTabularData": (pb.GetLatestTabularDataRequest, False),
    "ExportTabularData": (pb.ExportTabularDataRequest, True),
    "DeleteTabularData": (pb.DeleteTabularDataRequest, False),
    "BinaryDataByFilter": (pb.BinaryDataByFilterRequest, False),
    "BinaryDataByIDs": (pb.BinaryDataByIDsRequest, False),
    "DeleteBinaryDataByFilter": (pb.DeleteBinaryDataByFilterRequest, False),
    "DeleteBinaryDataByIDs": (pb.DeleteBinaryDataByIDsRequest, False),
    "AddTagsToBinaryDataByIDs": (pb.AddTagsToBinaryDataByIDsRequest, False),
    "AddTagsToBinaryDataByFilter": (pb.AddTagsToBinaryDataByFilterRequest, False),
    "RemoveTagsFromBinaryDataByIDs": (pb.RemoveTagsFromBinaryDataByIDsRequest, False),
    "RemoveTagsFromBinaryDataByFilter": (pb.RemoveTagsFromBinaryDataByFilterRequest, False),
    "TagsByFilter": (pb.TagsByFilterRequest, False),
    "AddBoundingBoxToImageByID": (pb.AddBoundingBoxToImageByIDRequest, False),
    "UpdateBoundingBox": (pb.UpdateBoundingBoxRequest, False),
    "RemoveBoundingBoxFromImageByID": (pb.RemoveBoundingBoxFromImageByIDRequest, False),
    "BoundingBoxLabelsByFilter": (pb.BoundingBoxLabelsByFilterRequest, False),
    "AddBinaryDataToDatasetByIDs": (pb.AddBinaryDataToDatasetByIDsRequest, False),
    "RemoveBinaryDataFromDatasetByIDs": (pb.RemoveBinaryDataFromDatasetByIDsRequest, False),
}


def unimplemented_handler(reason: str) -> grpc.RpcMethodHandler:
    """A unary handler that answers UNIMPLEMENTED with ``reason`` (the request is not parsed)."""

    def refuse(request: bytes, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, reason)

    return grpc.unary_unary_rpc_method_handler(refuse)


def serialize(message: Any) -> bytes:
    """A response message's bytes (a method may return them already serialized)."""
    return message if isinstance(message, bytes) else bytes(message.SerializeToString())


def data_service_handler(query: DataQuery) -> grpc.GenericRpcHandler:
    """The generic handler serving DataService on Viam's method paths."""
    service = DataService(query)
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for name, (request_type, streaming) in _MESSAGES.items():
        make = (
            grpc.unary_stream_rpc_method_handler
            if streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[name] = make(
            getattr(service, name),
            request_deserializer=request_type.FromString,
            response_serializer=serialize,
        )
    for name, reason in UNIMPLEMENTED.items():
        handlers[name] = unimplemented_handler(f"{name}: {reason}")
    return grpc.method_handlers_generic_handler(SERVICE, handlers)
