"""Sync throughput over loopback: a capture backlog on disk, uploaded to ``capsync serve``.

Two phases, each on a fresh server and data dir, so each figure is clean:

* **tabular**: ``--backlog-mib`` MiB of 6-float readings (``append_batch``, default
  256 KiB files), reported as records/s;
* **binary**: ``--backlog-mib`` MiB of ``append_binary`` readings, half the bytes
  in 768 KiB payloads (unary ``DataCaptureUpload``) and half in 4 MiB payloads
  (``StreamingDataCaptureUpload``), reported as MB/s of capture-file bytes.

Generating the backlog is not timed. Then ``capsync serve`` runs on 127.0.0.1 with
a key file, and ``capsync sync CONFIG`` runs once as a separate process; the RSS
of both is sampled every 50 ms (psutil) and their kernel high-water marks are read
(``VmHWM`` of the server before it stops, ``ru_maxrss`` of the client from
``wait4``). The rate uses the sync pass's own elapsed time (what ``capsync sync``
prints, 0.1 s resolution); the process wall time, interpreter start included, is
shown too. Afterwards the server must hold every record (the segment index's
count) and every
payload byte, and the capture dir must hold no capture file. Each phase also
prints the CPU-seconds of the client, the server and the rest of the machine (and
CPU time stolen by the hypervisor) over the sync, and the rate over the first and
second half of the backlog (from the capture bytes left, sampled every 2 s).
Timings are reported, never asserted; the exit status is 1 only when the data did
not all arrive.

    python benchmarks/sync_throughput.py [--backlog-mib 1024] [--quick] [--threads N]

The run first measures the loopback gRPC transport limit (unary 1 MiB raw-bytes
calls to a server process that discards them) and reports each phase as a share
of it. The default 1 GiB run needs about 3 GiB of free space under the temp dir
(the server's segments are about the size of the capture files); each phase's
files are deleted when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import queue
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import capsync
from capsync.config.model import default_num_sync_threads

SRC = Path(__file__).resolve().parents[1] / "src"
MIB = 1024 * 1024
MB = 1_000_000
KEY_ID = "bench-key-id"
KEY = "bench-secret-0123456789abcdef"
PART_ID = "part-bench"
KEYS = ("x", "y", "z", "roll", "pitch", "yaw")
T0_NS = 1_763_700_000_000_000_000
STEP_NS = 1_000_000  # 1 kHz
BATCH_ROWS = 200_000
UNARY_PAYLOAD = 768 * 1024  # under the client's 1,000,000-byte streaming threshold
STREAMED_PAYLOAD = 4 * MIB
SAMPLE_INTERVAL_S = 0.05
PROGRESS_INTERVAL_S = 2.0
QUICK_MIB = {"tabular": 32, "binary": 256}
LISTEN_PREFIX = "capsync serve: listening on "
PASS_LINE = re.compile(r"synced (\d+) of (\d+) files \((\d+) records, [\d.]+ MB\) .* in ([\d.]+) s")

TARGET_RECORDS_PER_S = 1_000_000
TARGET_BINARY_MB_PER_S = 300
TARGET_RSS_MB = 200

TABULAR = {
    "component_type": "rdk:component:movement_sensor",
    "component_name": "imu",
    "method_name": "Readings",
}
BINARY = {
    "component_type": "rdk:component:camera",
    "component_name": "cam",
    "method_name": "ReadImage",
    "mime_type": "image/jpeg",
}


# ----- the backlog ----------------------------------------------------------------------


@dataclass
class Backlog:
    files: int
    records: int
    file_bytes: int  # capture-file bytes on disk
    payload_bytes: int = 0  # binary payload bytes (binary phase)
    generate_s: float = 0.0


def capture_files(capture_dir: Path) -> list[Path]:
    return list(capture_dir.rglob("*.capture"))


def _summarize(capture_dir: Path, records: int, payload_bytes: int, started: float) -> Backlog:
    os.sync()  # no writeback of the backlog while the sync runs
    files = capture_files(capture_dir)
    return Backlog(
        files=len(files),
        records=records,
        file_bytes=sum(path.stat().st_size for path in files),
        payload_bytes=payload_bytes,
        generate_s=time.perf_counter() - started,
    )


def make_tabular(capture_dir: Path, target_bytes: int) -> Backlog:
    """6-float readings at 1 kHz in 256 KiB files until ``target_bytes`` are written."""
    started = time.perf_counter()
    rng = np.random.default_rng(1)
    stream = capsync.open_stream(capture_dir, **TABULAR)
    written = 0
    with stream:
        while (done := stream.stats().bytes_written) < target_bytes:
            per_row = done / written if written else 160
            rows = max(1, min(BATCH_ROWS, int((target_bytes - done) / per_row)))
            stamps = T0_NS + (written + np.arange(rows, dtype=np.int64)) * STEP_NS
            stream.append_batch(stamps, stamps + 7_000, rng.standard_normal((rows, 6)), KEYS)
            written += rows
    return _summarize(capture_dir, stream.stats().records, 0, started)


def make_binary(capture_dir: Path, target_bytes: int) -> Backlog:
    """One file per reading: half the bytes in unary-sized payloads, half streamed."""
    started = time.perf_counter()
    base = np.random.default_rng(2).integers(0, 256, STREAMED_PAYLOAD, dtype=np.uint8)
    stream = capsync.open_stream(capture_dir, **BINARY)
    records = payload_bytes = 0
    with stream:
        for size, share in ((UNARY_PAYLOAD, target_bytes // 2), (STREAMED_PAYLOAD, target_bytes)):
            while payload_bytes < share:
                payload = base[:size].copy()
                payload[:8] = np.frombuffer(records.to_bytes(8, "little"), dtype=np.uint8)
                stamp = T0_NS + records * STEP_NS
                stream.append_binary(payload, stamp, stamp + 9_000)
                records += 1
                payload_bytes += size
    return _summarize(capture_dir, records, payload_bytes, started)


# ----- processes ------------------------------------------------------------------------


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Sampler:
    """Every ``interval_s``: the RSS of some processes (keeping each one's peak and last
    CPU time) and, every ``progress_every`` samples, the capture bytes left on disk."""

    def __init__(self, capture_dir: Path, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.capture_dir = capture_dir
        self.interval_s = interval_s
        self.progress_every = max(1, round(PROGRESS_INTERVAL_S / interval_s))
        self.peaks: dict[str, int] = {}
        self.cpu_s: dict[str, float] = {}
        self.progress: list[tuple[float, int]] = []  # (perf_counter, capture bytes left)
        self._procs: dict[str, psutil.Process] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._procs[name] = psutil.Process(pid)
            self.peaks.setdefault(name, 0)
        self.sample()

    def sample(self) -> None:
        with self._lock:
            for name, proc in list(self._procs.items()):
                try:
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        cpu = proc.cpu_times()
                except psutil.Error:  # exited
                    del self._procs[name]
                    continue
                self.peaks[name] = max(self.peaks[name], rss)
                self.cpu_s[name] = cpu.user + cpu.system

    def bytes_left(self) -> int:
        total = 0
        for path in capture_files(self.capture_dir):
            with contextlib.suppress(OSError):  # uploaded and deleted meanwhile
                total += path.stat().st_size
        return total

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval_s):
            self.sample()
            ticks += 1
            if ticks % self.progress_every == 0 and "client" in self._procs:
                self.progress.append((time.perf_counter(), self.bytes_left()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def vm_hwm_bytes(pid: int) -> int | None:
    """The kernel's peak-RSS mark of a live process (Linux), else None."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Server:
    """``capsync serve`` on a free loopback port."""

    def __init__(self, data_dir: Path, keys_file: Path, log_path: Path) -> None:
        args = [sys.executable, "-m", "capsync", "serve", "--data", str(data_dir)]
        args += ["--listen", "127.0.0.1:0", "--api-keys", str(keys_file)]
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=log, text=True, env=subprocess_env()
            )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=30)
                if line is None:
                    raise RuntimeError(f"capsync serve exited: {log_path.read_text()}")
                if line.startswith(LISTEN_PREFIX):
                    self.address = line[len(LISTEN_PREFIX) :].strip()
                    return
        except BaseException:
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.proc.returncode:
            print(f"capsync serve exited with {self.proc.returncode}: {self.log_path.read_text()}",
                  file=sys.stderr)  # fmt: skip

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class ClientRun:
    returncode: int
    wall_s: float
    pass_s: float | None
    files_uploaded: int
    records_uploaded: int
    max_rss: int  # ru_maxrss from wait4
    cpu_s: float  # user + system, from wait4
    started: float  # perf_counter at launch
    output: str


def run_client(config_path: Path, sampler: Sampler, log_path: Path) -> ClientRun:
    """``capsync sync CONFIG`` to completion; its peak RSS from ``wait4``."""
    args = [sys.executable, "-m", "capsync", "sync", str(config_path), "--quiet"]
    args += ["--retry-for", "0"]
    with open(log_path, "w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env())
        sampler.watch("client", proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    match = PASS_LINE.search(output)
    return ClientRun(
        returncode=proc.returncode,
        wall_s=wall_s,
        pass_s=float(match.group(4)) if match else None,
        files_uploaded=int(match.group(1)) if match else 0,
        records_uploaded=int(match.group(3)) if match else 0,
        max_rss=usage.ru_maxrss * 1024,  # KiB on Linux
        cpu_s=usage.ru_utime + usage.ru_stime,
        started=started,
        output=output,
    )


# ----- one phase ------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    backlog: Backlog
    client: ClientRun
    server_peak_rss: int
    client_peak_rss: int
    server_idle_rss: int
    server_cpu_s: float  # during the sync
    system: SystemUse
    progress: list[tuple[float, int]]
    stored_records: int
    stored_payload_bytes: int
    left_files: int
    problems: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.client.pass_s or self.client.wall_s

    @property
    def ok(self) -> bool:
        return not self.problems

    def halves(self) -> tuple[float, float] | None:
        """Capture bytes/s over the first and the second half of the backlog (from the
        client's launch, from the progress samples), or None when too few samples."""
        half = self.backlog.file_bytes / 2
        end = self.client.started + self.client.wall_s
        previous = (self.client.started, self.backlog.file_bytes)
        for at, left in self.progress:
            if left <= half:
                (t0, left0), (t1, left1) = previous, (at, left)
                crossed = t0 + (t1 - t0) * (left0 - half) / max(1, left0 - left1)
                if not self.client.started < crossed < end:
                    return None
                return half / (crossed - self.client.started), half / (end - crossed)
            previous = (at, left)
        return None


@dataclass
class SystemUse:
    """The whole machine over the sync: CPU-seconds busy (all processes) and stolen."""

    seconds: float
    busy_cpu_s: float
    steal_cpu_s: float
    load_before: float

    @classmethod
    def measure_from(cls, before: Any, started: float, load: float) -> SystemUse:
        after = psutil.cpu_times()
        idle = (after.idle - before.idle) + (after.iowait - before.iowait)
        total = sum(after) - sum(before)
        # guest time is counted in user already
        total -= (after.guest - before.guest) + (after.guest_nice - before.guest_nice)
        return cls(
            seconds=time.perf_counter() - started,
            busy_cpu_s=total - idle - (after.steal - before.steal),
            steal_cpu_s=after.steal - before.steal,
            load_before=load,
        )


def write_config(path: Path, capture_dir: Path, address: str, threads: int) -> Path:
    config = {
        "components": [],
        "services": [
            {
                "name": "dm",
                "type": "data_manager",
                "attributes": {
                    "capture_dir": str(capture_dir),
                    "maximum_num_sync_threads": threads,
                },
            }
        ],
        "sync": {
            "address": address,
            "api_key_id": KEY_ID,
            "api_key": KEY,
            "part_id": PART_ID,
            "insecure": True,
        },
    }
    path.write_text(json.dumps(config))
    return path


def _read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def stored(data_dir: Path) -> tuple[int, int]:
    """(records, payload bytes) the server stored: readings per batch in the segment
    index, plus blob rows."""
    tabular = blobs = payload = 0
    index = data_dir / "tabular" / "index.db"
    if index.exists():
        conn = _read_only(index)
        try:
            tabular = conn.execute("SELECT coalesce(sum(count), 0) FROM batches").fetchone()[0]
        finally:
            conn.close()
    db = data_dir / "capsync.db"
    if db.exists():
        conn = _read_only(db)
        try:
            blobs, payload = conn.execute(
                "SELECT count(*), coalesce(sum(size_bytes), 0) FROM blobs"
            ).fetchone()
        finally:
            conn.close()
    return int(tabular) + int(blobs), int(payload)


# ----- the loopback gRPC transport limit --------------------------------------------------

SINK_SERVER = """
import sys, grpc
from concurrent import futures
def discard(request, context):
    return b""
handler = grpc.method_handlers_generic_handler("bench.Sink", {
    "Discard": grpc.unary_unary_rpc_method_handler(discard)})
server = grpc.server(futures.ThreadPoolExecutor(8),
                     options=[("grpc.max_receive_message_length", 64 << 20)])
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
"""


def transport_limit(total_bytes: int, threads: int, call_bytes: int = MIB) -> float:
    """MB/s of unary ``call_bytes`` raw-bytes calls over loopback to a server (another
    process) that discards them, with ``threads`` callers: the ceiling of any upload."""
    import grpc

    proc = subprocess.Popen([sys.executable, "-c", SINK_SERVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
        )
        call = channel.unary_unary("/bench.Sink/Discard")
        body = os.urandom(call_bytes)
        call(body, timeout=30)  # connect
        calls = max(threads, total_bytes // call_bytes)
        counter = iter(range(calls))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                call(body, timeout=60)

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        started = time.perf_counter()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        elapsed = time.perf_counter() - started
        channel.close()
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(10)
    return calls * call_bytes / MB / elapsed


def run_phase(name: str, root: Path, target_bytes: int, threads: int) -> Phase:
    phase_dir = root / name
    capture_dir = phase_dir / "capture"
    data_dir = phase_dir / "data"
    capture_dir.mkdir(parents=True)
    make = make_tabular if name == "tabular" else make_binary
    print(f"[{name}] generating {target_bytes / MIB:,.0f} MiB backlog ...", flush=True)
    backlog = make(capture_dir, target_bytes)
    print(f"[{name}] {backlog.files:,} files, {backlog.records:,} records, "
          f"{backlog.file_bytes / MB:,.1f} MB in {backlog.generate_s:.1f} s; syncing ...",
          flush=True)  # fmt: skip
    keys_file = phase_dir / "keys.json"
    keys_file.write_text(json.dumps({"keys": [{"id": KEY_ID, "key": KEY}]}))
    keys_file.chmod(0o600)
    sampler = Sampler(capture_dir)
    server = Server(data_dir, keys_file, phase_dir / "serve.log")
    try:
        sampler.watch("server", server.pid)
        time.sleep(0.5)
        idle_rss = psutil.Process(server.pid).memory_info().rss
        config = write_config(phase_dir / "machine.json", capture_dir, server.address, threads)
        load = os.getloadavg()[0]
        server_cpu = psutil.Process(server.pid).cpu_times()
        cpu_before, started = psutil.cpu_times(), time.perf_counter()
        client = run_client(config, sampler, phase_dir / "sync.log")
        system = SystemUse.measure_from(cpu_before, started, load)
        sampler.sample()
        server_hwm = vm_hwm_bytes(server.pid) or 0
    finally:
        sampler.stop()
        server.stop()
    records, payload = stored(data_dir)
    left = len(capture_files(capture_dir))
    phase = Phase(
        name=name,
        backlog=backlog,
        client=client,
        server_peak_rss=max(server_hwm, sampler.peaks.get("server", 0)),
        client_peak_rss=max(client.max_rss, sampler.peaks.get("client", 0)),
        server_idle_rss=idle_rss,
        server_cpu_s=sampler.cpu_s.get("server", 0.0) - server_cpu.user - server_cpu.system,
        system=system,
        progress=sampler.progress,
        stored_records=records,
        stored_payload_bytes=payload,
        left_files=left,
    )
    if client.returncode != 0:
        phase.problems.append(f"capsync sync exited {client.returncode}: {client.output[-2000:]}")
    if client.pass_s is None:
        phase.problems.append("no 'synced ...' line in the client's output")
    if records != backlog.records:
        phase.problems.append(f"server holds {records:,} records, expected {backlog.records:,}")
    if payload != backlog.payload_bytes:
        phase.problems.append(
            f"server holds {payload:,} payload bytes, expected {backlog.payload_bytes:,}"
        )
    if left:
        phase.problems.append(f"{left} capture files left in the capture dir")
    other_cpu_s = max(0.0, system.busy_cpu_s - client.cpu_s - phase.server_cpu_s)
    print(f"[{name}] pass {client.pass_s} s, wall {client.wall_s:.2f} s; "
          f"server holds {records:,} records; {left} files left; "
          f"peak RSS client {phase.client_peak_rss / MB:.0f} MB "
          f"(sampled {sampler.peaks.get('client', 0) / MB:.0f}), "
          f"server {phase.server_peak_rss / MB:.0f} MB "
          f"(sampled {sampler.peaks.get('server', 0) / MB:.0f}, idle {idle_rss / MB:.0f}); "
          f"CPU-s client {client.cpu_s:.1f}, server {phase.server_cpu_s:.1f}, "
          f"rest of the machine ≈ {other_cpu_s:.1f}, stolen {system.steal_cpu_s:.1f} "
          f"(load avg before {load:.2f})", flush=True)  # fmt: skip
    halves = phase.halves()
    if halves is not None:
        scale = backlog.records / backlog.file_bytes if name == "tabular" else 1 / MB
        unit = "records/s" if name == "tabular" else "MB/s"
        # Oldest files go first: the binary backlog's first half is its unary payloads.
        first, second = ("first", "second") if name == "tabular" else ("unary", "streamed")
        print(f"[{name}] {first} half of the backlog ≈ {halves[0] * scale:,.0f} {unit} "
              f"(process start included), {second} half ≈ {halves[1] * scale:,.0f} {unit}",
              flush=True)  # fmt: skip
    return phase


# ----- report ---------------------------------------------------------------------------


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    parts = [
        dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        f"Python {platform.python_version()}",
        f"{os.cpu_count()} CPUs ({cpu})",
        f"{memory:.0f} GiB RAM",
        f"{'compiled' if capsync.native_available() else 'pure-Python'} wire",
    ]
    return "_" + ", ".join(parts) + "_"


def _mb(nbytes: float) -> str:
    return f"{nbytes / MB:,.0f} MB"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(phases: list[Phase], threads: int, limit_mb_s: float | None = None) -> str:
    by_name = {phase.name: phase for phase in phases}
    lines = [
        machine_line(),
        "",
        "| phase | files | records | capture bytes | sync pass | wall | rate "
        "| MB/s | share of the transport limit "
        "| client peak RSS | server peak RSS | server holds all |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for phase in phases:
        mb_s = phase.backlog.file_bytes / MB / phase.seconds
        if phase.name == "tabular":
            rate = f"{phase.backlog.records / phase.seconds:,.0f} records/s"
        else:
            rate = f"{mb_s:,.0f} MB/s"
        share = f"{mb_s / limit_mb_s:.0%}" if limit_mb_s else "—"
        lines.append(
            f"| {phase.name} | {phase.backlog.files:,} | {phase.backlog.records:,} "
            f"| {_mb(phase.backlog.file_bytes)} | {phase.seconds:.1f} s "
            f"| {phase.client.wall_s:.1f} s | {rate} | {mb_s:,.0f} | {share} "
            f"| {_mb(phase.client_peak_rss)} "
            f"| {_mb(phase.server_peak_rss)} | {'yes' if phase.ok else 'NO'} |"
        )
    if limit_mb_s:
        lines.append(f"| loopback gRPC limit | | | | | | | {limit_mb_s:,.0f} | 100% | | | |")
    lines += ["", "| target | result | |", "|---|---:|---|"]
    if "tabular" in by_name:
        tab = by_name["tabular"]
        rate = tab.backlog.records / tab.seconds
        lines.append(f"| ≥ {TARGET_RECORDS_PER_S:,} tabular records/s | {rate:,.0f} "
                     f"| {_met(rate >= TARGET_RECORDS_PER_S and tab.ok)} |")  # fmt: skip
    if "binary" in by_name:
        binary = by_name["binary"]
        rate = binary.backlog.file_bytes / MB / binary.seconds
        lines.append(f"| ≥ {TARGET_BINARY_MB_PER_S} MB/s binary | {rate:,.0f} MB/s "
                     f"| {_met(rate >= TARGET_BINARY_MB_PER_S and binary.ok)} |")  # fmt: skip
    client_rss = max(phase.client_peak_rss for phase in phases)
    server_rss = max(phase.server_peak_rss for phase in phases)
    for who, rss in (("client", client_rss), ("server", server_rss)):
        lines.append(f"| {who} peak RSS < {TARGET_RSS_MB} MB | {_mb(rss)} "
                     f"| {_met(rss < TARGET_RSS_MB * MB)} |")  # fmt: skip
    lines += [
        "",
        f"_Loopback, plaintext, `capsync sync` with {threads} sync thread(s) against "
        "`capsync serve` (segment store), each phase on a fresh server; rates use the sync "
        "pass's own elapsed time; MB = 10⁶ bytes of capture files; RSS is the kernel's "
        "high-water mark. The loopback gRPC limit: unary 1 MiB raw-bytes calls from as many "
        "threads to a server process that discards them, measured in the same run._",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog-mib", type=int, default=1024,
                        help="backlog per phase, MiB of capture files (default 1024)")  # fmt: skip
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run: 32 MiB tabular, 256 MiB binary (binary is fast; less is noise)",
    )
    parser.add_argument("--phases", nargs="+", choices=("tabular", "binary"),
                        default=["tabular", "binary"])  # fmt: skip
    parser.add_argument("--threads", type=int, default=default_num_sync_threads(),
                        help="maximum_num_sync_threads (default: half the CPUs)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--dir",
        default=os.environ.get("CAPSYNC_BENCH_DIR"),
        help="parent of the temp dir (default $CAPSYNC_BENCH_DIR, else /tmp)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK_MIB if args.quick else dict.fromkeys(args.phases, args.backlog_mib)
    backlog_mib = max(sizes[name] for name in args.phases)
    root = Path(tempfile.mkdtemp(prefix="capsync-sync-bench-", dir=args.dir))
    need = 5 * backlog_mib * MIB  # tabular: backlog + a database ~3.7x its size
    free = shutil.disk_usage(root).free
    if free < need:
        print(f"warning: {free / 2**30:.1f} GiB free under {root}, the run may need "
              f"{need / 2**30:.1f} GiB", file=sys.stderr)  # fmt: skip
    started = time.perf_counter()
    phases: list[Phase] = []
    print("[transport] measuring the loopback gRPC limit ...", flush=True)
    limit = transport_limit((128 if args.quick else 1024) * MIB, args.threads)
    print(f"[transport] {limit:,.0f} MB/s", flush=True)
    try:
        for name in args.phases:
            phases.append(run_phase(name, root, sizes[name] * MIB, args.threads))
            if not args.keep:
                shutil.rmtree(root / name)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    backlogs = ", ".join(f"{name} {sizes[name]:,} MiB" for name in args.phases)
    print(f"\n### Sync throughput, backlog per phase: {backlogs} "
          f"(run took {time.perf_counter() - started:.0f} s; this script's own peak RSS "
          f"{own / MB:.0f} MB)\n")  # fmt: skip
    print(report(phases, args.threads, limit))
    for phase in phases:
        for problem in phase.problems:
            print(f"{phase.name}: {problem}", file=sys.stderr)
    return 0 if all(phase.ok for phase in phases) else 1


if __name__ == "__main__":
    sys.exit(main())
