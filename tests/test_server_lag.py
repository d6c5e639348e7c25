"""``capsync serve``'s store and compaction lag gauges report real numbers: after a known
upload the compactor is behind by exactly its readings, and by none once it has run."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from server_fixtures import AUTH, KEY, KEY_ID, tabular_request

from capsync.metrics import ServerMetrics
from capsync.proto import rpc
from capsync.server import ApiKey, ApiKeys, IngestServer
from capsync.server.data_sources import open_data_query

pytestmark = pytest.mark.wire_independent


def _gauges(server: IngestServer) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(ServerMetrics(server.stats))
    text = generate_latest(registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_lag_gauges_follow_a_known_upload_and_compaction(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    keys = ApiKeys([ApiKey(KEY_ID, KEY)])
    with IngestServer(data_dir, keys, listen="127.0.0.1:0", compact_interval_s=3600) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = rpc.data_sync_stub(channel)
            for i in range(3):
                request = tabular_request(
                    [(1_000 + i, {"a": 1.0}), (2_000 + i, {"a": 2.0})],
                    component_name="imu",
                    method_name="Readings",
                )
                stub.DataCaptureUpload(request, metadata=AUTH)
        behind = server.stats()
        gauges = _gauges(server)
        with open_data_query(data_dir) as query:  # the compactor, as another process runs it
            assert query.columnar is not None
            assert query.columnar.compact() == 6
        caught_up = server.stats()
        after = _gauges(server)
    assert behind.store_lag_s == 0.0
    assert behind.extra["compaction_lag_readings"] == 6
    assert behind.compaction_lag_s is not None and 0.0 < behind.compaction_lag_s < 600
    assert gauges["capsync_server_compaction_lag_readings"] == 6
    assert gauges["capsync_server_compaction_lag_seconds"] == pytest.approx(
        behind.compaction_lag_s, abs=600
    )
    assert gauges["capsync_server_compaction_lag_seconds"] > 0.0
    assert gauges["capsync_server_store_lag_seconds"] == 0.0
    assert caught_up.extra["compaction_lag_readings"] == 0
    assert caught_up.compaction_lag_s == 0.0
    assert after["capsync_server_compaction_lag_readings"] == 0
    assert after["capsync_server_compaction_lag_seconds"] == 0.0
