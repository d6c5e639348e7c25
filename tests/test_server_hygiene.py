"""``capsync serve`` hygiene (issue 9, item 5): leftovers, secrets in logs, the keys file."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import grpc
import pytest
from server_fixtures import KEY, KEY_ID, run_capsync, start_server, tabular_request, write_keys

pytestmark = pytest.mark.wire_independent

T0 = 1_714_564_800_123_456_789


def test_partial_uploads_left_by_a_killed_server_are_removed_at_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    folder = data_dir / "part-1" / "rdk_component_camera" / "cam" / "ReadImage"
    folder.mkdir(parents=True)
    leftovers = [folder / ".upload-abc123.tmp", data_dir / "part-1" / ".upload-x.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a payload")
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # a killed server's
    live = folder / ".upload-live.tmp"  # another server sharing the folder is writing it
    live.write_bytes(b"being written")
    kept = folder / "keep.jpeg"
    kept.write_bytes(b"a whole payload")
    server = start_server(data_dir, tmp_path, keys_file=write_keys(tmp_path / "k.json"))
    try:
        assert not any(path.exists() for path in leftovers)
        assert kept.exists() and live.exists()
    finally:
        server.stop()


def test_a_credential_presented_by_a_client_never_reaches_the_log(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", tmp_path, keys_file=write_keys(tmp_path / "k.json"))
    try:
        swapped = (("key_id", KEY), ("key", KEY_ID))  # the secret sent as the key id
        with pytest.raises(grpc.RpcError) as caught:
            server.stub().DataCaptureUpload(
                tabular_request([(T0, {"x": 1})]), metadata=swapped, timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop()
    log = server.stderr()
    assert "refused" in log  # the refusal is logged ...
    assert KEY not in log and KEY_ID not in log  # ... but not what the client presented


def test_the_keys_file_is_created_only_once_the_port_is_bound(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_capsync("serve", "--data", str(data_dir), "--listen", f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert not (data_dir / "api-keys.json").exists()
