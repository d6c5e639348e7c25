"""``capsync data export`` with names the filesystem refuses, and per-item failures (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from server_fixtures import AUTH, file_packets, run_capsync, start_server, write_keys

pytestmark = pytest.mark.wire_independent

LONG_STEM = "n" * 246  # a legitimate 250-byte file name with ".txt"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("export-names")
    server = start_server(tmp_path / "data", tmp_path, keys_file=write_keys(tmp_path / "k.json"))
    try:
        stub = server.stub()
        for name, body in ((f"notes/{LONG_STEM}.txt", b"long"), ("notes/short.log", b"short")):
            stub.FileUpload(iter(file_packets(body, file_name=name)), metadata=AUTH, timeout=10)
    finally:
        server.stop()
    return tmp_path / "data"


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


def test_a_name_too_long_is_shortened_keeping_its_extension_and_id(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    result = run_capsync("data", "export", "--data", str(data_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    items = manifest(out)
    assert len(items) == 2 and all(item["path"] for item in items)
    [long_item] = [i for i in items if i["file_name"].endswith(".txt")]
    name = Path(long_item["path"]).name
    assert len(name.encode()) <= 255
    assert name.startswith("nnnn") and name.endswith(f"_{long_item['id'][:12]}.txt")
    assert (out / long_item["path"]).read_bytes() == b"long"


def test_one_failed_item_does_not_stop_the_others_and_is_reported(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    assert run_capsync("data", "export", "--data", str(data_dir), "--out", str(out)).returncode == 0
    [short] = [i for i in manifest(out) if i["file_name"].endswith(".log")]
    blocked = out / short["path"]
    blocked.unlink()
    blocked.mkdir()  # the short file can no longer be written there
    (out / next(i["path"] for i in manifest(out) if i is not short)).unlink()
    result = run_capsync("data", "export", "--data", str(data_dir), "--out", str(out))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert short["id"] in result.stderr or short["path"] in result.stderr
    assert "1 failed" in result.stderr
    items = manifest(out)
    assert len(items) == 2  # the manifest still lists everything
    [long_item] = [i for i in items if i["file_name"].endswith(".txt")]
    assert (out / long_item["path"]).read_bytes() == b"long"
