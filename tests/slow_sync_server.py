"""A small DataSyncService that never de-duplicates: it records every call it receives.

It stands for any server built from Viam's API (Viam's cloud included): a file
sent twice is stored twice. Each call is recorded when it arrives and
answered after ``delay_s``, so a client that stops under a call in flight is
seen sending that call again later. ``fail`` maps a file name to the status
code the server answers for it (every time).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

from capsync.proto import data_sync_pb2

SERVICE = "viam.app.datasync.v1.DataSyncService"


class RecordingSyncServer:
    def __init__(self, delay_s: float = 0.3) -> None:
        self.delay_s = delay_s
        self.fail: dict[str, grpc.StatusCode] = {}
        self.calls: list[tuple[str, str]] = []  # (method, file_name) in arrival order
        self.received: collections.Counter[tuple[str, bytes]] = collections.Counter()
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        handlers = {
            "DataCaptureUpload": grpc.unary_unary_rpc_method_handler(
                self._data_capture_upload,
                request_deserializer=data_sync_pb2.DataCaptureUploadRequest.FromString,
                response_serializer=data_sync_pb2.DataCaptureUploadResponse.SerializeToString,
            ),
            "FileUpload": grpc.stream_unary_rpc_method_handler(
                self._file_upload,
                request_deserializer=data_sync_pb2.FileUploadRequest.FromString,
                response_serializer=data_sync_pb2.FileUploadResponse.SerializeToString,
            ),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RecordingSyncServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(0).wait()

    def _answer(self, name: str, context: grpc.ServicerContext) -> None:
        time.sleep(self.delay_s)  # the simulated slow server itself, not a wait
        code = self.fail.get(name)
        if code is not None:
            context.abort(code, f"refused {name} (test)")

    def _data_capture_upload(
        self, request: Any, context: grpc.ServicerContext
    ) -> data_sync_pb2.DataCaptureUploadResponse:
        name = request.metadata.file_name
        with self._lock:
            self.calls.append(("DataCaptureUpload", name))
            if name not in self.fail:
                for reading in request.sensor_contents:
                    self.received[(name, reading.SerializeToString(deterministic=True))] += 1
        self._answer(name, context)
        return data_sync_pb2.DataCaptureUploadResponse()

    def _file_upload(
        self, requests: Iterator[Any], context: grpc.ServicerContext
    ) -> data_sync_pb2.FileUploadResponse:
        first = next(requests)
        name = first.metadata.file_name
        body = b"".join(r.file_contents.data for r in requests)
        with self._lock:
            self.calls.append(("FileUpload", name))
            if name not in self.fail:
                self.received[(name, body)] += 1
        self._answer(name, context)
        return data_sync_pb2.FileUploadResponse()
