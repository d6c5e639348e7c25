"""Fixtures for the data page tests: a real ``capsync serve --http`` holding data that
capsync's own sync client uploaded.

What is uploaded (part ``part-sync-test``), all through ``capsync sync``:

* ``cam-front`` ReadImage: ``FRONT_IMAGES`` JPEGs tagged ``red`` (the stream's tags);
* ``cam-back`` ReadImage: ``BACK_IMAGES`` PNGs, no tags;
* ``cam-burst`` ReadImage: ``BURST_IMAGES`` JPEGs, no tags, older than all the others;
* ``thermo`` Readings: ``THERMO_READINGS`` readings ``{"temp": i * 0.5, "i": i, "room": "lab"}``;
* ``vibration`` Readings: ``VIBRATION_READINGS`` readings ``{"g": wave with one spike, "i": i}``;
* ``heartbeat`` Readings: ``HEARTBEAT_READINGS`` readings ``{"beat": i}``, one a second.
"""

from __future__ import annotations

import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, ImageDraw
from server_fixtures import (
    KEY,
    KEY_ID,
    LISTEN_PREFIX,
    ServerProcess,
    run_capsync,
    start_listening,
)
from sync_helpers import BASE_NS, machine_config, write_config

import capsync

FRONT_IMAGES = 6
BACK_IMAGES = 4
BURST_IMAGES = 36  # with the others, more than one gallery page (PAGE_SIZE)
PAGE_SIZE = 40  # the gallery's page size (gallery.js)
THERMO_READINGS = 500
VIBRATION_READINGS = 5000
HEARTBEAT_READINGS = 10  # test_the_plot_updates_live adds more
PAGE_PREFIX = "capsync serve: page on "
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "page"


@dataclass
class PageProcess:
    """A running ``capsync serve --http`` and the page's URL (ends with "/")."""

    server: ServerProcess
    url: str

    def client(self) -> httpx.Client:
        """An HTTP client with no session (verify off: tests use self-signed certs)."""
        return httpx.Client(base_url=self.url, verify=False, timeout=30.0)

    def login(self, key_id: str = KEY_ID, key: str = KEY) -> httpx.Client:
        client = self.client()
        response = client.post("/login", data={"key_id": key_id, "key": key})
        assert response.status_code == 303, response.text
        return client


def start_page_server(
    data_dir: Path, tmp_path: Path, keys_file: Path, *extra_args: str
) -> PageProcess:
    """Start ``capsync serve --http 127.0.0.1:0``; return once it prints both addresses."""
    args = [sys.executable, "-m", "capsync", "serve", "--data", str(data_dir)]
    args += ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api-keys", str(keys_file)]
    args += list(extra_args)
    stderr_path = tmp_path / f"serve-page-{len(list(tmp_path.glob('serve-page-*.log')))}.log"
    proc, port, before = start_listening(args, stderr_path, LISTEN_PREFIX)
    urls = [line.rsplit(" ", 1)[1].strip() for line in before if line.startswith(PAGE_PREFIX)]
    if not urls:
        proc.kill()
        proc.wait(10)
        raise AssertionError("no page address printed before the gRPC one")
    return PageProcess(ServerProcess(proc, data_dir, port, stderr_path), urls[-1])


def image_bytes(index: int, color: tuple[int, int, int], fmt: str) -> bytes:
    """A 320x240 picture, different for every index."""
    image = Image.new("RGB", (320, 240), (235, 238, 242))
    draw = ImageDraw.Draw(image)
    left = 20 + (index * 37) % 180
    draw.rectangle((left, 60, left + 110, 180), fill=color)
    draw.ellipse((200, 20 + index * 5, 260, 80 + index * 5), fill=(40, 40, 40))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def vibration(i: int) -> float:
    """The vibration series: a wave with one spike at i == 4321."""
    return 9.0 if i == 4321 else math.sin(i / 50.0)


def write_and_sync(capture_dir: Path, page: PageProcess, config_path: Path) -> None:
    """Capture everything with capsync's writer, then upload it with ``capsync sync``."""
    cameras = (
        ("cam-front", FRONT_IMAGES, "image/jpeg", "JPEG", ["red"], (200, 40, 40)),
        ("cam-back", BACK_IMAGES, "image/png", "PNG", [], (40, 90, 200)),
        ("cam-burst", BURST_IMAGES, "image/jpeg", "JPEG", [], (40, 160, 60)),
    )
    for name, count, mime, fmt, tags, color in cameras:
        stream = capsync.open_stream(
            capture_dir,
            component_type="rdk:component:camera",
            component_name=name,
            method_name="ReadImage",
            mime_type=mime,
            tags=tags,
        )
        with stream:
            for i in range(count):
                # the burst is older than the other two, which interleave
                offset_ns = {"cam-front": 0, "cam-back": 1, "cam-burst": -3_600_000_000_000}[name]
                ns = BASE_NS + (i + 1) * 60_000_000_000 + offset_ns
                stream.append_binary(image_bytes(i, color, fmt), ns, ns + 9)
    sensors = (
        ("thermo", THERMO_READINGS, lambda i: {"temp": i * 0.5, "i": i, "room": "lab"}),
        ("vibration", VIBRATION_READINGS, lambda i: {"g": vibration(i), "i": i}),
        ("heartbeat", HEARTBEAT_READINGS, lambda i: {"beat": float(i)}),
    )
    for name, count, reading in sensors:
        stream = capsync.open_stream(
            capture_dir,
            component_type="rdk:component:sensor",
            component_name=name,
            method_name="Readings",
            max_file_size_bytes=1 << 40,
        )
        with stream:
            for i in range(count):
                ns = BASE_NS + i * (1_000_000_000 if name == "heartbeat" else 1_000_000)
                stream.append(reading(i), ns, ns + 7)
            stream.flush_to_capture()
    write_config(config_path, machine_config(capture_dir, page.server))
    result = run_capsync("sync", str(config_path), "--quiet")
    assert result.returncode == 0, result.stderr
