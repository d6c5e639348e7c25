"""Kill -9 loop: capture at 10 kHz, SIGKILL at random moments 10 times, then sync.

After every kill all completed files read cleanly; after a final sync to a real
`capsync serve`, the server holds every reading that had been flushed before
each kill, exactly once.

Ten kills cover the kill points twenty random ones did: each run costs a process
start (about 2 s here, most of the test's time), so the kill moments are stratified
instead of drawn independently. Run r dies at a random moment inside the r-th of ten
equal slices of the 0.1-0.8 s window, so the kills spread over the whole window
(twenty independent draws leave gaps that wide anyway, and clump elsewhere). Within
a slice the moment is random, so each kill still lands at a random phase of what the
writer repeats: appending, the 50 ms flush, the group fsync and the file rotation
(a new file every few tens of milliseconds at 10 kHz). Every restart also
recovers the files the previous kill left, ten times over.
"""

from __future__ import annotations

import collections
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from server_fixtures import subprocess_env
from sync_helpers import machine_config, server_items, write_config

import capsync

KILLS = 10
KILL_WINDOW_S = (0.1, 0.8)  # after the writer reports "started"
WRITER = Path(__file__).with_name("crash_writer.py")

pytestmark = pytest.mark.slow


def run_and_kill(capture_dir: Path, run: int, rng: random.Random) -> int:
    """Start a writer, kill it with SIGKILL at a random moment; return its last flushed count."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(capture_dir), str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(),
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "started"
        flushed = 0
        first, last = KILL_WINDOW_S
        slice_s = (last - first) / KILLS
        kill_at = time.monotonic() + first + slice_s * (run + rng.random())
        while time.monotonic() < kill_at:
            line = process.stdout.readline()
            if not line:
                break
            flushed = int(line)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdout.close()
    return flushed


def all_completed_files_read_cleanly(capture_dir: Path) -> int:
    records = 0
    for path in capture_dir.rglob("*.capture"):
        _, items = capsync.read_capture_file(path)
        records += sum(1 for _ in items)
    return records


def test_sigkill_loop_then_sync_loses_nothing_flushed(
    tmp_path: Path,
    ingest_server,
) -> None:
    capture_dir = tmp_path / "capture"
    rng = random.Random(1234)
    flushed_by_run = {}
    for run in range(KILLS):
        flushed_by_run[run] = run_and_kill(capture_dir, run, rng)
        all_completed_files_read_cleanly(capture_dir)
    assert sum(flushed_by_run.values()) > KILLS * 500  # the kills hit a busy writer

    config = write_config(tmp_path / "sync.json", machine_config(capture_dir, ingest_server))
    done = subprocess.run(
        [sys.executable, "-m", "capsync", "sync", str(config), "--quiet"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert list(capture_dir.rglob("*.capture")) == [] and list(capture_dir.rglob("*.prog")) == []

    seen = collections.Counter()
    for item in server_items(ingest_server.data_dir):
        readings = item["data"]["readings"]
        seen[(int(readings["run"]), int(readings["n"]))] += 1
    assert max(seen.values()) == 1  # nothing twice
    for run, flushed in flushed_by_run.items():
        missing = [n for n in range(1, flushed + 1) if (run, n) not in seen]
        assert missing == [], f"run {run}: {len(missing)} flushed readings lost"
        got = sorted(n for r, n in seen if r == run)
        assert got == list(range(1, len(got) + 1))  # no holes: only the unflushed tail is gone
