"""Viam's ``viam.app.dataset.v1.DatasetService`` on ``capsync serve`` (SPEC §7).

A self-hosted server has one organization (:data:`~capsync.query.filters.ORGANIZATION_ID`):
every dataset belongs to it, whatever organization id a request names.
Deleting a dataset removes its memberships, never the binaries.
"""

from __future__ import annotations

from typing import Any

import grpc

from capsync.proto.viam.app.dataset.v1 import dataset_pb2 as pb
from capsync.query.api import DataQuery
from capsync.query.catalog import Dataset
from capsync.query.filters import ORGANIZATION_ID
from capsync.server.data_convert import timestamp
from capsync.server.data_service import answer_errors, unimplemented_handler

SERVICE = "viam.app.dataset.v1.DatasetService"
UNIMPLEMENTED = {
    "StartSequenceDatasetExport": "sequence datasets are not supported by capsync serve",
    "GetSequenceDatasetExport": "sequence datasets are not supported by capsync serve",
}


def _dataset(dataset: Dataset) -> Any:
    return pb.Dataset(
        id=dataset.id,
        name=dataset.name,
        organization_id=ORGANIZATION_ID,
        time_created=timestamp(dataset.created_ns),
    )


def _check_type(request: Any) -> None:
    from capsync.query.filters import QueryError

    if request.HasField("type") and request.type != pb.DatasetType.DATASET_TYPE_BINARY_DATA:
        raise QueryError("type: capsync serve keeps binary-data datasets only")


class DatasetService:
    def __init__(self, query: DataQuery) -> None:
        self.query = query

    @answer_errors
    def CreateDataset(self, request: Any, context: grpc.ServicerContext) -> Any:
        _check_type(request)
        return pb.CreateDatasetResponse(id=self.query.datasets.create(request.name).id)

    @answer_errors
    def DeleteDataset(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.query.delete_dataset(request.id)
        return pb.DeleteDatasetResponse()

    @answer_errors
    def RenameDataset(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.query.datasets.rename(request.id, request.name)
        return pb.RenameDatasetResponse()

    @answer_errors
    def ListDatasetsByOrganizationID(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.HasField("type") and request.type != pb.DatasetType.DATASET_TYPE_BINARY_DATA:
            return pb.ListDatasetsByOrganizationIDResponse()
        datasets = [_dataset(d) for d in self.query.datasets.list()]
        return pb.ListDatasetsByOrganizationIDResponse(datasets=datasets)

    @answer_errors
    def ListDatasetsByIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        datasets = [_dataset(d) for d in self.query.datasets.list(list(request.ids))]
        return pb.ListDatasetsByIDsResponse(datasets=datasets)

    @answer_errors
    def MergeDatasets(self, request: Any, context: grpc.ServicerContext) -> Any:
        merged = self.query.merge_datasets(list(request.dataset_ids), request.name)
        return pb.MergeDatasetsResponse(dataset_id=merged)


_MESSAGES: dict[str, Any] = {
    "CreateDataset": pb.CreateDatasetRequest,
    "DeleteDataset": pb.DeleteDatasetRequest,
    "RenameDataset": pb.RenameDatasetRequest,
    "ListDatasetsByOrganizationID": pb.ListDatasetsByOrganizationIDRequest,
    "ListDatasetsByIDs": pb.ListDatasetsByIDsRequest,
    "MergeDatasets": pb.MergeDatasetsRequest,
}


def dataset_service_handler(query: DataQuery) -> grpc.GenericRpcHandler:
    """The generic handler serving DatasetService on Viam's method paths."""
    service = DatasetService(query)
    handlers: dict[str, grpc.RpcMethodHandler] = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(service, name),
            request_deserializer=request_type.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )
        for name, request_type in _MESSAGES.items()
    }
    for name, reason in UNIMPLEMENTED.items():
        handlers[name] = unimplemented_handler(f"{name}: {reason}")
    return grpc.method_handlers_generic_handler(SERVICE, handlers)
