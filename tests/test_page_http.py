"""The data page's HTTP side against a real ``capsync serve --http``: login, 401 everywhere
without a session, no file outside the data folder, thumbnails, payloads, downsampling."""

from __future__ import annotations

import hashlib
import http.client
import io
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from data_api_helpers import call
from page_fixtures import (
    FRONT_IMAGES,
    VIBRATION_READINGS,
    PageProcess,
    start_page_server,
    vibration,
    write_and_sync,
)
from PIL import Image
from server_fixtures import KEY, KEY_ID, run_capsync, write_keys
from sync_helpers import BASE_NS

from capsync.server.data_sources import open_data_query
from capsync.server.stores.base import BlobRecord
from capsync.server.stores.local import LocalStore as SqliteStore
from capsync.web import api
from capsync.web.data_access import DataAccess
from capsync.web.series import downsample
from capsync.web.thumbnails import THUMBNAIL_PX, ThumbnailCache

pytestmark = pytest.mark.wire_independent


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageProcess]:
    tmp = tmp_path_factory.mktemp("page-http")
    keys = write_keys(tmp / "keys.json")
    page = start_page_server(tmp / "data", tmp, keys)
    try:
        write_and_sync(tmp / "capture", page, tmp / "robot.json")
        yield page
    finally:
        page.server.stop()


@pytest.fixture(scope="module")
def session(served: PageProcess) -> Iterator[httpx.Client]:
    client = served.login()
    yield client
    client.close()


@pytest.fixture(scope="module")
def image_id(session: httpx.Client) -> str:
    found = session.get("/api/binaries", params={"component": "cam-front", "limit": 1}).json()
    return str(found["items"][0]["id"])


def every_route(image: str) -> list[tuple[str, str]]:
    """(method, path) of every route the app has, with a real binary id filled in."""
    paths = [("GET", "/"), ("POST", "/logout"), ("GET", "/static/main.js")]
    paths.append(("GET", "/static/vendor/uPlot.esm.js"))
    for route in api.routes(None, None):  # type: ignore[arg-type]
        path = route.path.format(binary_id=image, box_id="b1", dataset_id="d1")
        paths.extend((method, path) for method in sorted(route.methods or ()) if method != "HEAD")
    return paths


def test_every_page_and_endpoint_answers_401_without_a_session(
    served: PageProcess, image_id: str
) -> None:
    routes = every_route(image_id)
    assert len(routes) >= 17
    with served.client() as client:
        for cookie in (None, "capsync_session=forged-token"):
            headers = {"Cookie": cookie} if cookie else {}
            for method, path in routes:
                response = client.request(
                    method, path, headers=headers, json={} if method != "GET" else None
                )
                assert response.status_code == 401, (method, path, cookie)
                assert KEY not in response.text
                assert "set-cookie" not in response.headers
        page = client.get("/")
        assert 'action="/login"' in page.text  # the 401 page is the login form


def test_a_wrong_key_is_refused(served: PageProcess) -> None:
    with served.client() as client:
        for key_id, key in ((KEY_ID, "wrong"), ("other-id", KEY), ("", ""), (KEY_ID, "")):
            response = client.post("/login", data={"key_id": key_id, "key": key})
            assert response.status_code == 401
            assert "set-cookie" not in response.headers
            assert "Wrong key id or key" in response.text
        assert client.get("/api/sources").status_code == 401


def test_the_session_cookie_is_httponly_and_samesite_strict(served: PageProcess) -> None:
    with served.client() as client:
        response = client.post("/login", data={"key_id": KEY_ID, "key": KEY})
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        attributes = {part.strip().split("=")[0] for part in cookie.split(";")}
        assert {"HttpOnly", "SameSite", "Path"} <= attributes
        assert "SameSite=Strict" in cookie
        assert "Secure" not in attributes  # plaintext: a Secure cookie would never come back
        assert client.get("/api/sources").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "capsync data" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        # Logging out ends the session on the server, not just in this client.
        token = client.cookies["capsync_session"]
        assert client.post("/logout").status_code == 401
    with served.client() as replay:
        replay.cookies.set("capsync_session", token)
        assert replay.get("/api/sources").status_code == 401


def test_under_tls_the_cookie_is_secure(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=capsync-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    keys = write_keys(tmp_path / "keys.json")
    page = start_page_server(
        tmp_path / "data", tmp_path, keys, "--tls-cert", str(cert), "--tls-key", str(key)
    )
    try:
        assert page.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=page.url, verify=trust, timeout=30) as client:
            assert client.get("/api/sources").status_code == 401
            response = client.post("/login", data={"key_id": KEY_ID, "key": KEY})
            assert response.status_code == 303
            assert "; Secure" in response.headers["set-cookie"]
            assert client.get("/api/sources").json() == []
    finally:
        page.server.stop()


def _raw_get(served: PageProcess, path: str, cookie: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no client-side normalization of ``..``)."""
    host, port = served.url.split("//")[1].rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.putheader("Cookie", f"capsync_session={cookie}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_no_endpoint_reads_a_file_outside_the_data_folder(
    served: PageProcess, session: httpx.Client, tmp_path: Path
) -> None:
    data_dir = served.server.data_dir
    secret = b"outside-the-data-folder"
    outside = data_dir.parent / "outside.txt"
    outside.write_bytes(secret)
    token = session.cookies["capsync_session"]
    attempts = [
        "/static/../api-keys.json",
        "/static/..%2f..%2foutside.txt",
        "/static/%2e%2e/%2e%2e/outside.txt",
        "/static/vendor/../../../../capsync.db",
        "/static//etc/passwd",
        "/api/binaries/..%2f..%2foutside.txt/content",
        "/api/binaries/%2e%2e/content",
        "/api/binaries/..%2fcapsync.db/thumbnail",
        "/api/binaries/capsync.db/content",
        "/api/binaries/%2Fetc%2Fpasswd/content",
        "/../outside.txt",
    ]
    for path in attempts:
        status, body = _raw_get(served, path, token)
        assert status in (400, 404), (path, status)
        assert secret not in body and b"SQLite format" not in body and b"root:" not in body
        assert KEY.encode() not in body
    # A record whose stored path leads out of the data folder is refused too.
    store = SqliteStore(data_dir, create=False)
    try:
        store.record_blob(
            BlobRecord(
                id="e" * 64, upload_id="u", kind="binary", part_id="part-sync-test",
                component_type="rdk:component:camera", component_name="evil",
                method_name="ReadImage", tags=(), time_requested_ns=BASE_NS,
                time_received_ns=BASE_NS, mime_type="image/jpeg", file_extension=".jpeg",
                path="../outside.txt", size_bytes=len(secret), sha256="0" * 64,
            )
        )  # fmt: skip
    finally:
        store.close()
    for what in ("content", "thumbnail"):
        response = session.get(f"/api/binaries/{'e' * 64}/{what}")
        assert response.status_code == 404
        assert secret not in response.content


def test_thumbnails_are_made_once_and_kept_in_the_data_folder(
    served: PageProcess, session: httpx.Client, image_id: str
) -> None:
    first = session.get(f"/api/binaries/{image_id}/thumbnail")
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(first.content)) as thumb:
        assert max(thumb.size) <= THUMBNAIL_PX
    cached = ThumbnailCache(served.server.data_dir).path_for(image_id)
    assert cached.read_bytes() == first.content
    made_ns = cached.stat().st_mtime_ns
    second = session.get(f"/api/binaries/{image_id}/thumbnail")
    assert second.content == first.content
    assert cached.stat().st_mtime_ns == made_ns


def test_the_original_is_the_uploaded_payload(
    served: PageProcess, session: httpx.Client, image_id: str
) -> None:
    meta = session.get(f"/api/binaries/{image_id}").json()
    assert meta["mime_type"] == "image/jpeg" and meta["tags"] == ["red"]
    content = session.get(f"/api/binaries/{image_id}/content")
    assert content.headers["content-type"] == "image/jpeg"
    assert content.headers["x-content-type-options"] == "nosniff"
    assert len(content.content) == meta["size_bytes"]
    store = SqliteStore(served.server.data_dir, create=False)
    try:
        (record,) = [r for r in store.query() if r.id == image_id]
        assert hashlib.sha256(content.content).hexdigest() == record.sha256  # type: ignore[union-attr]
    finally:
        store.close()


def test_listing_pages_newest_first_with_counts(session: httpx.Client) -> None:
    first = session.get("/api/binaries", params={"component": "cam-front", "limit": 4}).json()
    assert first["last"]
    rest = session.get(
        "/api/binaries", params={"component": "cam-front", "limit": 4, "last": first["last"]}
    ).json()
    assert first["total"] == rest["total"] == FRONT_IMAGES
    assert rest["last"] == ""  # that was the last page
    items = first["items"] + rest["items"]
    assert len(items) == FRONT_IMAGES
    times = [i["time_requested"] for i in items]
    assert times == sorted(times, reverse=True)
    sources = {
        (s["component_name"], s["kind"]): s["count"] for s in session.get("/api/sources").json()
    }
    assert sources[("cam-front", "binary")] == FRONT_IMAGES
    assert sources[("vibration", "tabular")] == VIBRATION_READINGS


def test_a_time_range_narrows_the_listing(session: httpx.Client) -> None:
    since, until = BASE_NS + 180 * 10**9, BASE_NS + 300 * 10**9
    found = session.get(
        "/api/binaries", params={"since": str(since / 1e9), "until": str(until / 1e9)}
    ).json()
    assert found["total"] == 4  # minutes 3 and 4 of cam-front and cam-back
    assert {i["component_name"] for i in found["items"]} == {"cam-front", "cam-back"}


def test_a_long_series_is_downsampled_to_min_and_max_per_bucket(session: httpx.Client) -> None:
    answer = session.get(
        "/api/readings/series",
        params={"component": "vibration", "method": "Readings", "field": "readings.g",
                "buckets": 100},
    ).json()  # fmt: skip
    assert answer["total"] == VIBRATION_READINGS and answer["downsampled"]
    assert len(answer["y"]) <= 200
    expected = downsample(
        [BASE_NS + i * 1_000_000 for i in range(VIBRATION_READINGS)],
        [vibration(i) for i in range(VIBRATION_READINGS)],
        100,
    )
    assert answer["y"] == expected.values.tolist()
    assert max(answer["y"]) == 9.0  # the single spike survives
    # A range narrows it: 100 readings are returned whole.
    since = (BASE_NS + 1000 * 1_000_000) / 1e9
    until = (BASE_NS + 1100 * 1_000_000) / 1e9
    narrow = session.get(
        "/api/readings/series",
        params={"component": "vibration", "method": "Readings", "field": "readings.g",
                "since": str(since), "until": str(until), "buckets": 100},
    ).json()  # fmt: skip
    assert narrow["total"] == 100 and not narrow["downsampled"] and len(narrow["y"]) == 100


def test_latest_readings_newest_first_with_numeric_fields(session: httpx.Client) -> None:
    latest = session.get(
        "/api/readings/latest", params={"component": "thermo", "method": "Readings", "limit": 3}
    ).json()
    assert [r["data"]["readings"]["i"] for r in latest["rows"]] == [499, 498, 497]
    assert set(latest["fields"]) == {"readings.temp", "readings.i"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/binaries/{id}/boxes", {"label": "x", "x_min_normalized": -0.1,
         "y_min_normalized": 0, "x_max_normalized": 0.5, "y_max_normalized": 0.5}, 400),
        ("POST", "/api/binaries/{id}/boxes", {"label": "x", "x_min_normalized": 0.6,
         "y_min_normalized": 0, "x_max_normalized": 0.5, "y_max_normalized": 0.5}, 400),
        ("POST", "/api/binaries/{id}/boxes", {"label": "", "x_min_normalized": 0.1,
         "y_min_normalized": 0, "x_max_normalized": 0.5, "y_max_normalized": 0.5}, 400),
        ("POST", "/api/binaries/nope/boxes", {"label": "x", "x_min_normalized": 0.1,
         "y_min_normalized": 0, "x_max_normalized": 0.5, "y_max_normalized": 0.5}, 404),
        ("POST", "/api/tags", {"binary_ids": "{id}", "add": ["a"]}, 400),
        ("POST", "/api/tags", {"binary_ids": ["nope"], "add": ["a"]}, 404),
        ("POST", "/api/datasets/nope/binaries", {"add": ["{id}"]}, 404),
        ("POST", "/api/datasets", {"name": "  "}, 400),
        ("DELETE", "/api/binaries/{id}/boxes/nope", None, 404),
        ("GET", "/api/binaries?limit=0", None, 400),
        ("GET", "/api/binaries?since=yesterday", None, 400),
        ("GET", "/api/binaries?last=nonsense", None, 400),
        ("GET", "/api/readings/series?component=thermo&method=Readings", None, 400),
        ("GET", "/api/readings/latest?component=thermo", None, 400),
        ("GET", "/api/binaries/nope", None, 404),
    ],
)  # fmt: skip
def test_bad_requests_get_one_clear_error(
    session: httpx.Client, image_id: str, method: str, path: str, body: object, status: int
) -> None:
    if isinstance(body, dict):
        body = {
            k: v.replace("{id}", image_id) if isinstance(v, str) else
            [x.replace("{id}", image_id) for x in v] if isinstance(v, list) else v
            for k, v in body.items()
        }  # fmt: skip
    response = session.request(method, path.replace("{id}", image_id), json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_a_form_post_from_elsewhere_is_not_taken_as_json(
    session: httpx.Client, image_id: str
) -> None:
    response = session.post(
        "/api/tags",
        content=f'{{"binary_ids": ["{image_id}"], "add": ["csrf"]}}',
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 400
    assert "csrf" not in session.get(f"/api/binaries/{image_id}").json()["tags"]


def test_changes_made_through_the_api_are_what_the_data_layer_reads(
    served: PageProcess, session: httpx.Client, image_id: str
) -> None:
    box = {"label": "cat", "x_min_normalized": 0.1, "y_min_normalized": 0.2,
           "x_max_normalized": 0.3, "y_max_normalized": 0.4}  # fmt: skip
    box_id = session.post(f"/api/binaries/{image_id}/boxes", json=box).json()["id"]
    tagged = session.post("/api/tags", json={"binary_ids": [image_id], "add": ["api", "red"]})
    assert tagged.json() == {"added": 1, "removed": 0}
    created = session.post("/api/datasets", json={"name": "api-set", "binary_ids": [image_id]})
    dataset_id = created.json()["id"]
    query = open_data_query(served.server.data_dir)
    data = DataAccess(query, served.server.data_dir)
    try:
        seen = data.get_binary(image_id)
        assert seen.tags == ("red", "api")
        assert [b["id"] for b in seen.bboxes] == [box_id]
        assert seen.dataset_ids == (dataset_id,)
    finally:
        query.close()
    removed = session.post("/api/tags", json={"binary_ids": [image_id], "remove": ["api", "x"]})
    assert removed.json() == {"added": 0, "removed": 1}
    assert session.delete(f"/api/binaries/{image_id}/boxes/{box_id}").status_code == 200
    left = session.post(f"/api/datasets/{dataset_id}/binaries", json={"remove": [image_id]})
    assert left.json() == {"added": 0, "removed": 1}
    final = session.get(f"/api/binaries/{image_id}").json()
    assert (final["tags"], final["bboxes"], final["dataset_ids"]) == (["red"], [], [])


def test_a_bad_or_taken_http_address_is_one_clear_line(served: PageProcess, tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json")
    taken = served.url.split("//")[1].rstrip("/")
    for address, expected in (("nonsense", "--http"), (taken, "cannot listen")):
        result = run_capsync(
            "serve", "--data", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
            "--api-keys", str(keys), "--http", address, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr  # as serve's other address errors
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "Traceback" not in result.stderr


def test_page_changes_are_what_a_data_client_sees_and_back(
    served: PageProcess, session: httpx.Client, image_id: str
) -> None:
    """The page and Viam's DataService share one query layer: viam-sdk's DataClient sees
    the page's tags, boxes and datasets, and the page sees the DataClient's."""
    box = {"label": "kettle", "x_min_normalized": 0.0, "y_min_normalized": 0.25,
           "x_max_normalized": 0.5, "y_max_normalized": 1.0}  # fmt: skip
    box_id = session.post(f"/api/binaries/{image_id}/boxes", json=box).json()["id"]
    session.post("/api/tags", json={"binary_ids": [image_id], "add": ["from-page"]})
    created = session.post("/api/datasets", json={"name": "page-set", "binary_ids": [image_id]})
    dataset_id = created.json()["id"]

    (seen,) = call(served.server, lambda c: c.binary_data_by_ids([image_id]))
    assert set(seen.metadata.capture_metadata.tags) == {"red", "from-page"}
    (drawn,) = seen.metadata.annotations.bboxes
    assert (drawn.id, drawn.label, drawn.x_min_normalized, drawn.y_min_normalized,
            drawn.x_max_normalized, drawn.y_max_normalized) == (
        box_id, "kettle", 0.0, 0.25, 0.5, 1.0)  # fmt: skip
    assert list(seen.metadata.dataset_ids) == [dataset_id]
    datasets = call(served.server, lambda c: c.list_dataset_by_ids([dataset_id]))
    assert [d.name for d in datasets] == ["page-set"]

    # ... and the other way round.
    call(served.server, lambda c: c.add_tags_to_binary_data_by_ids(["from-sdk"], [image_id]))
    call(served.server, lambda c: c.remove_bounding_box_from_image_by_id(box_id, image_id))
    sdk_box = call(
        served.server,
        lambda c: c.add_bounding_box_to_image_by_id(image_id, "lid", 0.1, 0.1, 0.2, 0.2, 0.5),
    )
    call(served.server, lambda c: c.remove_binary_data_from_dataset_by_ids([image_id], dataset_id))
    page_view = session.get(f"/api/binaries/{image_id}").json()
    assert set(page_view["tags"]) == {"red", "from-page", "from-sdk"}
    assert [(b["id"], b["label"], b["confidence"]) for b in page_view["bboxes"]] == [
        (sdk_box, "lid", 0.5)
    ]
    assert page_view["dataset_ids"] == []
    # leave the image as uploaded for the other tests
    session.post("/api/tags", json={"binary_ids": [image_id], "remove": ["from-page", "from-sdk"]})
    session.delete(f"/api/binaries/{image_id}/boxes/{sdk_box}")


def test_a_payload_that_is_not_an_image_is_a_download(
    served: PageProcess, session: httpx.Client
) -> None:
    data_dir = served.server.data_dir
    cloud = b"VERSION .7\nFIELDS x y z\nPOINTS 0\nDATA ascii\n<script>alert(1)</script>\n"
    (data_dir / "cloud.pcd").write_bytes(cloud)
    store = SqliteStore(data_dir, create=False)
    try:
        store.record_blob(
            BlobRecord(
                id="c" * 64, upload_id="u", kind="binary", part_id="part-sync-test",
                component_type="rdk:component:camera", component_name="lidar",
                method_name="NextPointCloud", tags=(), time_requested_ns=BASE_NS,
                time_received_ns=BASE_NS, mime_type="text/html", file_extension=".pcd",
                path="cloud.pcd", size_bytes=len(cloud), sha256="0" * 64,
            )
        )  # fmt: skip
    finally:
        store.close()
    content = session.get(f"/api/binaries/{'c' * 64}/content")
    assert content.status_code == 200 and content.content == cloud
    # an uploaded mime type never makes the page serve HTML or script from its origin
    assert content.headers["content-type"] == "application/octet-stream"
    assert content.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in content.headers["content-security-policy"]
    assert session.get(f"/api/binaries/{'c' * 64}/thumbnail").status_code == 404
    listed = session.get("/api/binaries", params={"component": "lidar"}).json()
    assert [(i["id"], i["is_image"]) for i in listed["items"]] == [("c" * 64, False)]
