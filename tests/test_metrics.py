"""Prometheus metrics of ``capsync run`` / ``capsync serve`` and ``capsync status``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from server_fixtures import AUTH, api_keys_fixture, start_server, subprocess_env, tabular_request  # noqa: F401
from sync_helpers import wait_for

import capsync
from capsync.cli.status_cmd import scrape
from capsync.metrics import COLLECTOR_METRICS, CaptureMetrics, MetricsEndpoint, metrics_state_path

N_ROWS = 40


def replay_config(tmp_path: Path, capture_dir: Path) -> Path:
    """A sensor that replays N_ROWS CSV rows once at 200 Hz, then stops: a known capture."""
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("x,y\n" + "".join(f"{i},{i * 0.5}\n" for i in range(N_ROWS)))
    config = {
        "components": [
            {
                "name": "replayer",
                "type": "sensor",
                "model": "replay",
                "attributes": {"path": str(csv_path), "loop": False},
                "service_configs": [
                    {
                        "type": "data_manager",
                        "attributes": {
                            "capture_methods": [{"method": "Readings", "capture_frequency_hz": 200}]
                        },
                    }
                ],
            }
        ],
        "services": [
            {"name": "dm", "type": "data_manager", "attributes": {"capture_dir": str(capture_dir)}}
        ],
    }
    path = tmp_path / "robot.json"
    path.write_text(json.dumps(config))
    return path


def test_metrics_match_stats_after_a_known_capture(tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    manager = capsync.DataManager.from_config(replay_config(tmp_path, capture_dir)).start()
    endpoint = MetricsEndpoint("127.0.0.1:0", CaptureMetrics(manager))
    try:
        assert wait_for(
            lambda: (
                (s := manager.stats()["replayer/Readings"]).finished and s.records_written == N_ROWS
            )
        )
        manager.flush_to_capture()
        stats = manager.stats()["replayer/Readings"]
        assert stats.finished and stats.captures == N_ROWS and stats.files == 1
        samples = scrape(endpoint.url)
    finally:
        endpoint.close()
        manager.close()
    labels = (("collector", "replayer/Readings"),)
    for field, name, kind, _ in COLLECTOR_METRICS:
        metric = f"capsync_{name}_total" if kind == "counter" else f"capsync_{name}"
        assert samples[metric][labels] == getattr(stats, field), metric
    (capture_file,) = capture_dir.rglob("*.capture")
    assert samples["capsync_sync_backlog_files"][()] == 1  # no sync configured: it waits
    assert samples["capsync_sync_backlog_bytes"][()] == capture_file.stat().st_size
    assert samples["capsync_sync_running"][()] == 0
    assert samples["capsync_disk_deleted_files_total"][()] == 0
    assert 0 < samples["capsync_disk_usage_ratio"][()] < 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # three capsync processes
@pytest.mark.wire_independent
def test_status_reads_a_running_capsync_run(tmp_path: Path) -> None:
    capture_dir = tmp_path / "capture"
    config = replay_config(tmp_path, capture_dir)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "capsync",
            "run",
            str(config),
            "--metrics",
            "127.0.0.1:0",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    state = metrics_state_path(capture_dir)
    try:
        assert wait_for(state.exists, timeout_s=30), "capsync run wrote no metrics state file"

        def status() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "capsync", "status", str(config)],
                capture_output=True,
                text=True,
                env=subprocess_env(),
                timeout=60,
                check=False,
            )

        def captures(shown: subprocess.CompletedProcess[str]) -> str:
            rows = [line.split() for line in shown.stdout.splitlines()]
            return next((row[1] for row in rows if row and row[0] == "replayer/Readings"), "")

        # The replay ends after N_ROWS readings; then the table holds still.
        url = json.loads(state.read_text())["metrics_url"]
        done = (("collector", "replayer/Readings"),)
        assert wait_for(
            lambda: scrape(url)["capsync_collector_records_written_total"].get(done) == N_ROWS,
            30,
        )
        shown = status()
        assert shown.returncode == 0, shown.stderr
        header, row = shown.stdout.splitlines()[:2]
        assert header.split()[:3] == ["collector", "captures", "skipped"]
        cells = row.split()
        assert cells[0] == "replayer/Readings" and captures(shown) == str(N_ROWS)
        assert "sync: off" in shown.stdout and "backlog:" in shown.stdout
    finally:
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "metrics at http://127.0.0.1:" in out
    assert not state.exists()  # removed on the way out
    gone = subprocess.run(
        [sys.executable, "-m", "capsync", "status", "--capture-dir", str(capture_dir)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert gone.returncode == 1
    assert gone.stderr.count("\n") == 1 and "not found" in gone.stderr
    assert "Traceback" not in gone.stderr


@pytest.mark.wire_independent
def test_serve_metrics_count_uploads_and_refusals(tmp_path: Path, api_keys_file: Path) -> None:
    port = _free_port()
    server = start_server(
        tmp_path / "data", tmp_path, "--metrics", f"127.0.0.1:{port}", keys_file=api_keys_file
    )
    try:
        stub = server.stub()
        for i in range(3):
            request = tabular_request(
                [(1_000 + i, {"a": 1.0}), (2_000 + i, {"a": 2.0})],
                component_name="imu",
                method_name="Readings",
            )
            stub.DataCaptureUpload(request, metadata=AUTH)
        bad = tabular_request([(1, {"a": 1.0})], component_name="imu", method_name="Readings")
        bad.ClearField("metadata")
        with pytest.raises(Exception, match="without metadata"):
            stub.DataCaptureUpload(bad, metadata=AUTH)
        url = f"http://127.0.0.1:{port}/metrics"
        assert wait_for(lambda: urllib.request.urlopen(url, timeout=5).status == 200)
        samples = scrape(url)
    finally:
        assert server.stop() == 0
    assert samples["capsync_server_uploads_total"][(("rpc", "DataCaptureUpload"),)] == 3
    assert samples["capsync_server_readings_stored_total"][()] == 6
    rejected = samples["capsync_server_rejected_requests_total"]
    assert rejected[(("code", "INVALID_ARGUMENT"), ("rpc", "DataCaptureUpload"))] == 1


@pytest.mark.wire_independent
def test_bad_metrics_address_is_one_line(tmp_path: Path) -> None:
    config = replay_config(tmp_path, tmp_path / "capture")
    done = subprocess.run(
        [sys.executable, "-m", "capsync", "run", str(config), "--metrics", "nowhere"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().endswith("metrics address must be HOST:PORT, got 'nowhere'")
    assert "Traceback" not in done.stderr
