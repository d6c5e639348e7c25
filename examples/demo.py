"""`make demo`: capture with the example robot, sync to a local ingest server, show what arrived.

1. starts `capsync serve` on loopback with a freshly generated API key, and the
   data page beside it (`--http`), and prints the page's address and the key;
2. runs `capsync run` on examples/robot.json (fake sensor, movement sensor,
   board and camera) with a sync pass every 3 s, for ~20 s;
3. prints, per component and method, what the server holds;
4. keeps the server (and the page) up until Ctrl-C when run from a terminal,
   else stops it.

Everything lives under ./demo-output (recreated on each run).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import webbrowser
from collections import defaultdict
from pathlib import Path

from capsync.server.query import list_items

HERE = Path(__file__).resolve().parent
OUT = Path.cwd() / "demo-output"
DURATION_S = float(os.environ.get("CAPSYNC_DEMO_SECONDS", "20"))


def start_server(data_dir: Path, keys_file: Path) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``capsync serve --http``; returns the process, the gRPC address and the page URL."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "capsync",
            "serve",
            "--data",
            str(data_dir),
            "--listen",
            "127.0.0.1:0",
            "--http",
            os.environ.get("CAPSYNC_DEMO_HTTP", "127.0.0.1:0"),
            "--api-keys",
            str(keys_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    page_url = ""
    while True:
        line = server.stdout.readline().strip()
        if line.startswith("capsync serve: page on "):
            page_url = line.rsplit(" ", 1)[-1]
        elif "listening on" in line:
            return server, line.rsplit(" ", 1)[-1], page_url
        else:
            server.kill()
            raise SystemExit(f"capsync serve did not start: {line!r}")


def demo_config(address: str, key_id: str, key: str, capture_dir: Path) -> Path:
    config = json.loads((HERE / "robot.json").read_text())
    for service in config["services"]:
        if service["type"] == "data_manager":
            service["attributes"].update(
                capture_dir=str(capture_dir), sync_interval_mins=0.05, sync_disabled=False
            )
    config["sync"] = {
        "address": address,
        "api_key_id": key_id,
        "api_key": key,
        "insecure": True,
        "part_id": "demo-robot",
    }
    path = OUT / "robot.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def summarize(data_dir: Path) -> None:
    rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for item in list_items(data_dir):
        key = (item.get("component_name", ""), item.get("method_name", ""), item["kind"])
        rows[key][0] += 1
        rows[key][1] += int(item.get("size_bytes") or 0)
    print(f"\nWhat arrived at the ingest server ({data_dir}):\n")
    print(f"{'component':<20} {'method':<16} {'kind':<8} {'items':>8} {'payload bytes':>14}")
    print("(tabular items are records; binary items are images or point clouds)")
    for (component, method, kind), (count, size) in sorted(rows.items()):
        print(f"{component:<20} {method:<16} {kind:<8} {count:>8} {size:>14,}")
    if not rows:
        print("  nothing: see the logs above")


def keep_serving(page_url: str, key_id: str, key: str) -> None:
    """From a terminal, leave the server and its page up until Ctrl-C."""
    if not sys.stdin.isatty():
        return
    print(
        f"\nThe data page is still up: {page_url}\n  key id: {key_id}\n  key:    {key}\n"
        "Press Ctrl-C to stop the server.",
        flush=True,
    )
    try:
        signal.pause()
    except KeyboardInterrupt:
        print()


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    data_dir, capture_dir = OUT / "server-data", OUT / "capture"
    key_id, key = "demo-key", secrets.token_urlsafe(24)
    keys_file = OUT / "api-keys.json"
    keys_file.write_text(json.dumps({"keys": [{"id": key_id, "key": key}]}))
    keys_file.chmod(0o600)
    server, address, page_url = start_server(data_dir, keys_file)
    print(
        f"capsync serve is listening on {address}; capturing for {DURATION_S:g} s ...\n"
        f"The data page: {page_url}  (log in with key id {key_id!r}, key {key!r})",
        flush=True,
    )
    if os.environ.get("DISPLAY") or sys.platform == "darwin":
        webbrowser.open(page_url)
    try:
        config = demo_config(address, key_id, key, capture_dir)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "capsync",
                "run",
                str(config),
                "--duration",
                str(DURATION_S),
                "--status-interval",
                "5",
            ],
            check=False,
        )
        if run.returncode != 0:
            return run.returncode
        sync = subprocess.run([sys.executable, "-m", "capsync", "sync", str(config)], check=False)
        summarize(data_dir)
        keep_serving(page_url, key_id, key)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    left = sorted(capture_dir.rglob("*.capture")) if capture_dir.exists() else []
    print(
        f"\nLocal capture files still waiting to sync: {len(left)} (final sync exit "
        f"code {sync.returncode})"
    )
    print(f"Look around: {data_dir} (server store), {capture_dir} (robot side),")
    print(f"  .venv/bin/capsync data list --data {data_dir} | head")
    print(f"  .venv/bin/capsync data export --data {data_dir} --out {OUT / 'export'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
