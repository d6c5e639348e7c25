"""The JSON API behind the data page (every route needs a login; see :mod:`capsync.web.app`).

Reads and writes go through :class:`~capsync.web.data_access.DataAccess` only.
Payloads are found by binary id through it, never by a path from the request.

==========================================  ===============================================
``GET  /api/sources``                       every (part, component, method, kind) + count
``GET  /api/tags``                          every tag on a binary + count
``GET  /api/binaries``                      ``?part&component&method&tag*&dataset&since&until
                                            &last&limit``: ``{total, items, last}``, newest
                                            first; ``last`` is the next page's token
``GET  /api/binaries/{id}``                 one binary: metadata, tags, boxes, datasets
``GET  /api/binaries/{id}/thumbnail``       JPEG thumbnail (404 for non-images)
``GET  /api/binaries/{id}/content``         the payload as uploaded
``POST /api/tags``                          ``{binary_ids, add?, remove?}``
``POST /api/binaries/{id}/boxes``           ``{label, x_min_normalized, ...}`` -> ``{id}``
``DELETE /api/binaries/{id}/boxes/{box}``   delete a box
``GET  /api/datasets``                      ``[{id, name, count}]``
``POST /api/datasets``                      ``{name, binary_ids?}`` -> ``{id}``
``POST /api/datasets/{id}/binaries``        ``{add?, remove?}``
``GET  /api/readings/latest``               ``?part&component&method&limit``
``GET  /api/readings/series``               ``?part&component&method&field&since&until
                                            &buckets``: min/max-downsampled points
==========================================  ===============================================
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from capsync._time import format_time, parse_time
from capsync.web.data_access import (
    Binary,
    BinaryFilter,
    DataAccess,
    NotFound,
    check_tag,
    numeric_fields,
)
from capsync.web.thumbnails import ThumbnailCache

MAX_PAGE = 500
MAX_IDS = 10_000
MAX_BODY_BYTES = 4 * 1024 * 1024
# Shown in the page as they are; anything else is sent as a download.
INLINE_MIME_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=86400",
}

Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(ValueError):
    """A request the API cannot take; answered 400 with its message."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except NotFound as exc:
            return _error(404, str(exc))
        except ValueError as exc:  # BadRequest and the data layer's checks
            return _error(400, str(exc))

    return guarded


# --- parsing -----------------------------------------------------------------------------


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def _time(request: Request, name: str) -> int | None:
    value = _text(request, name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = _text(request, name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return int(value)


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequest("send JSON (Content-Type: application/json)")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest("request body too large")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        raise BadRequest("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _strings(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{name} must be a list of strings")
    if len(value) > MAX_IDS:
        raise BadRequest(f"{name}: at most {MAX_IDS} entries")
    return value


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{name} must be a number")
    return float(value)


def binary_filter(request: Request) -> BinaryFilter:
    return BinaryFilter(
        part_id=_text(request, "part"),
        component=_text(request, "component"),
        method=_text(request, "method"),
        tags=tuple(t for t in request.query_params.getlist("tag") if t),
        dataset_id=_text(request, "dataset"),
        since_ns=_time(request, "since"),
        until_ns=_time(request, "until"),
    )


def binary_json(binary: Binary) -> dict[str, Any]:
    return {
        "id": binary.id,
        "part_id": binary.part_id,
        "component_type": binary.component_type,
        "component_name": binary.component_name,
        "method_name": binary.method_name,
        "time_requested": format_time(binary.time_requested_ns),
        "time_received": format_time(binary.time_received_ns),
        "mime_type": binary.mime_type,
        "file_extension": binary.file_extension,
        "file_name": binary.file_name,
        "size_bytes": binary.size_bytes,
        "tags": list(binary.tags),
        "bboxes": list(binary.bboxes),
        "classifications": list(binary.classifications),
        "dataset_ids": list(binary.dataset_ids),
        "is_image": binary.mime_type.startswith("image/"),
    }


# --- routes ------------------------------------------------------------------------------


def routes(data: DataAccess, thumbnails: ThumbnailCache) -> list[Route]:
    """The API's routes over ``data``."""

    def blocking(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return run_in_threadpool(fn, *args)

    async def sources(request: Request) -> Response:
        found = await blocking(data.sources)
        return JSONResponse([s.__dict__ for s in found])

    async def tags(request: Request) -> Response:
        return JSONResponse(await blocking(data.tag_counts))

    async def list_binaries(request: Request) -> Response:
        f = binary_filter(request)
        last = request.query_params.get("last", "")
        limit = _int(request, "limit", 50, 1, MAX_PAGE)
        total, page, next_last = await blocking(data.list_binaries, f, last, limit)
        items = [binary_json(b) for b in page]
        return JSONResponse({"total": total, "items": items, "last": next_last})

    async def get_binary(request: Request) -> Response:
        binary = await blocking(data.get_binary, request.path_params["binary_id"])
        return JSONResponse(binary_json(binary))

    def _thumbnail(binary_id: str) -> Any:
        binary = data.get_binary(binary_id)
        if not binary.mime_type.startswith("image/"):
            return None
        return thumbnails.get(binary.id, data.payload_path(binary))

    async def thumbnail(request: Request) -> Response:
        path = await blocking(_thumbnail, request.path_params["binary_id"])
        if path is None:
            return _error(404, "no thumbnail: not an image Pillow can read")
        return FileResponse(path, media_type="image/jpeg", headers=_CONTENT_HEADERS)

    async def content(request: Request) -> Response:
        binary = await blocking(data.get_binary, request.path_params["binary_id"])
        path = data.payload_path(binary)
        if binary.mime_type in INLINE_MIME_TYPES:
            return FileResponse(path, media_type=binary.mime_type, headers=_CONTENT_HEADERS)
        name = f"{binary.id}{binary.file_extension}"
        return FileResponse(
            path,
            media_type="application/octet-stream",
            headers=_CONTENT_HEADERS,
            filename=name,
        )

    async def change_tags(request: Request) -> Response:
        body = await _body(request)
        ids = _strings(body, "binary_ids")
        add = [check_tag(t) for t in _strings(body, "add")]
        remove = _strings(body, "remove")
        added = await blocking(data.add_tags, ids, add) if add else 0
        removed = await blocking(data.remove_tags, ids, remove) if remove else 0
        return JSONResponse({"added": added, "removed": removed})

    async def add_box(request: Request) -> Response:
        body = await _body(request)
        label = body.get("label")
        if not isinstance(label, str):
            raise BadRequest("label must be a string")
        corners = [
            _number(body, f"{axis}_{end}_normalized")
            for end, axis in (("min", "x"), ("min", "y"), ("max", "x"), ("max", "y"))
        ]
        box_id = await blocking(data.add_box, request.path_params["binary_id"], label, *corners)
        return JSONResponse({"id": box_id}, status_code=201)

    async def remove_box(request: Request) -> Response:
        params = request.path_params
        if not await blocking(data.remove_box, params["binary_id"], params["box_id"]):
            return _error(404, f"no box {params['box_id']!r} on {params['binary_id']}")
        return JSONResponse({"removed": 1})

    async def datasets(request: Request) -> Response:
        found = await blocking(data.list_datasets)
        return JSONResponse([d.__dict__ for d in found])

    async def create_dataset(request: Request) -> Response:
        body = await _body(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise BadRequest("name must be a string")
        ids = _strings(body, "binary_ids")
        dataset_id = await blocking(data.create_dataset, name)
        added = await blocking(data.add_to_dataset, dataset_id, ids) if ids else 0
        return JSONResponse({"id": dataset_id, "added": added}, status_code=201)

    async def dataset_binaries(request: Request) -> Response:
        body = await _body(request)
        dataset_id = request.path_params["dataset_id"]
        add, remove = _strings(body, "add"), _strings(body, "remove")
        added = await blocking(data.add_to_dataset, dataset_id, add) if add else 0
        removed = await blocking(data.remove_from_dataset, dataset_id, remove) if remove else 0
        return JSONResponse({"added": added, "removed": removed})

    def _source(request: Request) -> tuple[str | None, str, str]:
        component, method = _text(request, "component"), _text(request, "method")
        if component is None or method is None:
            raise BadRequest("component and method are required")
        return _text(request, "part"), component, method

    async def latest(request: Request) -> Response:
        limit = _int(request, "limit", 20, 1, 1000)
        rows = await blocking(data.latest_readings, *_source(request), limit)
        fields: dict[str, None] = {}
        for row in rows:
            fields.update(dict.fromkeys(numeric_fields(row.data)))
        return JSONResponse(
            {
                "fields": list(fields),
                "rows": [
                    {
                        "time_requested": format_time(r.time_requested_ns),
                        "time_received": format_time(r.time_received_ns),
                        "data": r.data,
                    }
                    for r in rows
                ],
            }
        )

    async def series(request: Request) -> Response:
        field = _text(request, "field")
        if field is None:
            raise BadRequest("field is required (a dotted path such as readings.x)")
        since, until = _time(request, "since"), _time(request, "until")
        buckets = _int(request, "buckets", 1000, 1, 10_000)

        def run() -> Any:
            return data.series(
                *_source(request), field, since_ns=since, until_ns=until, buckets=buckets
            )

        found = await blocking(run)
        return JSONResponse(
            {
                "field": field,
                "total": found.total,
                "downsampled": found.downsampled,
                "t": (found.times_ns / 1e9).tolist(),  # uPlot's x axis is in seconds
                "y": found.values.tolist(),
            }
        )

    table: list[tuple[str, Handler, list[str]]] = [
        ("/api/sources", sources, ["GET"]),
        ("/api/tags", tags, ["GET"]),
        ("/api/tags", change_tags, ["POST"]),
        ("/api/binaries", list_binaries, ["GET"]),
        ("/api/binaries/{binary_id}", get_binary, ["GET"]),
        ("/api/binaries/{binary_id}/thumbnail", thumbnail, ["GET"]),
        ("/api/binaries/{binary_id}/content", content, ["GET"]),
        ("/api/binaries/{binary_id}/boxes", add_box, ["POST"]),
        ("/api/binaries/{binary_id}/boxes/{box_id}", remove_box, ["DELETE"]),
        ("/api/datasets", datasets, ["GET"]),
        ("/api/datasets", create_dataset, ["POST"]),
        ("/api/datasets/{dataset_id}/binaries", dataset_binaries, ["POST"]),
        ("/api/readings/latest", latest, ["GET"]),
        ("/api/readings/series", series, ["GET"]),
    ]
    return [Route(path, _guarded(fn), methods=methods) for path, fn, methods in table]
