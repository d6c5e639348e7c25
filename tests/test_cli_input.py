"""The command line with bad input and what it tells the user (issue 9, items 8-11)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import run_capsync

from capsync.config import load_config

pytestmark = pytest.mark.wire_independent


def sensor_config(capture_dir: Path, *, type_: str = "sensor", hz: float = 1.0) -> dict[str, Any]:
    method = {"method": "Readings", "capture_frequency_hz": hz}
    return {
        "components": [
            {
                "name": "imu",
                "type": type_,
                "model": "fake",
                "service_configs": [
                    {"type": "data_manager", "attributes": {"capture_methods": [method]}}
                ],
            }
        ],
        "services": [
            {
                "name": "dm",
                "type": "data_manager",
                "attributes": {"capture_dir": str(capture_dir), "sync_disabled": True},
            }
        ],
    }


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(config))
    return path


def test_a_negative_frequency_disables_the_method_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="capsync.config"):
        config = load_config(sensor_config(tmp_path / "c", hz=-2.0))
    assert not config.capture_targets()[0].method.enabled  # Viam's rule: <= 0 is disabled
    [warning] = [w for w in config.warnings if "capture_frequency_hz" in w]
    assert 'sensor "imu"' in warning and "Readings" in warning and "disabled" in warning
    assert warning in caplog.text
    zero = load_config(sensor_config(tmp_path / "c", hz=0.0))
    assert not [w for w in zero.warnings if "capture_frequency_hz" in w]  # 0 is the usual off


@pytest.mark.parametrize(
    "flags",
    [
        ("--duration", "0"),
        ("--duration", "-1"),
        ("--status-interval", "0"),
        ("--status-interval", "-5"),
    ],
)
def test_run_rejects_durations_and_intervals_that_are_not_positive(
    tmp_path: Path, flags: tuple[str, str]
) -> None:
    config = write(tmp_path, sensor_config(tmp_path / "capture"))
    result = run_capsync("run", str(config), *flags)
    assert result.returncode == 2
    assert flags[0] in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "capture").exists()  # rejected before anything ran


def test_an_unknown_component_type_is_reported_as_such_with_file_and_component(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, sensor_config(tmp_path / "capture", type_="sensr"))
    result = run_capsync("run", str(config), "--duration", "1")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "unknown component type 'sensr'" in line
    assert "unknown model" not in line
    assert str(config) in line and '"imu"' in line


def test_an_unknown_model_names_the_file_and_the_component(tmp_path: Path) -> None:
    config_dict = sensor_config(tmp_path / "capture")
    config_dict["components"][0]["model"] = "acme:nope:thing"
    config = write(tmp_path, config_dict)
    result = run_capsync("run", str(config), "--duration", "1")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "unknown model" in line and str(config) in line and '"imu"' in line


def test_the_status_is_a_short_line_per_collector() -> None:
    from capsync.cli.run_cmd import status_line
    from capsync.service import CollectorStats

    def stats(captures: int, errors: int = 0) -> CollectorStats:
        return CollectorStats(
            captures=captures, skipped_ticks=0, errors=errors, write_errors=0, dropped=0,
            queue_depth=1, records_written=captures, bytes_written=123_456, files=3,
            finished=False,
        )  # fmt: skip

    labels = [f"movement-sensor-{i}/LinearAcceleration" for i in range(6)]
    text = status_line({label: stats(100, errors=i) for i, label in enumerate(labels)}, {}, 5.0)
    lines = text.splitlines()
    assert len(lines) == 1 + len(labels)
    assert all(len(line) <= 100 for line in lines)
    assert "20.0/s" in lines[1] and "errors" not in lines[1] and "errors 5" in lines[-1]


def test_run_prints_per_collector_totals_on_stop(tmp_path: Path) -> None:
    config = write(tmp_path, sensor_config(tmp_path / "capture", hz=20.0))
    result = run_capsync("run", str(config), "--duration", "1", "--status-interval", "0.5")
    assert result.returncode == 0, result.stderr
    summary = result.stdout[result.stdout.index("stopped after") :].splitlines()
    [imu] = [line for line in summary if "imu/Readings" in line]
    assert "captures" in imu and "records" in imu and "files" in imu


def test_sync_disabled_is_logged_as_what_happens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from capsync.service import DataManager

    config = sensor_config(tmp_path / "capture")
    config["sync"] = {
        "address": "127.0.0.1:1", "api_key_id": "k", "api_key": "s", "part_id": "p",
        "insecure": True,
    }  # fmt: skip
    with caplog.at_level(logging.INFO, logger="capsync.manager"):
        with DataManager.from_config(config):
            pass
    assert "every" not in caplog.text
    assert "scheduled sync is off (sync_disabled)" in caplog.text


# --- real causes, no gRPC C-core lines (item 10) --------------------------------------------


def _no_grpc_noise(stderr: str) -> None:
    assert ".cc:" not in stderr and "GRPC_VERBOSITY" not in stderr, stderr
    assert stderr.count("\n") == 1, stderr  # one line


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_capsync(
            "serve", "--data", str(tmp_path / "d"), "--listen", f"127.0.0.1:{port}"
        )
    assert result.returncode == 2
    _no_grpc_noise(result.stderr)
    assert "in use" in result.stderr.lower()


@pytest.mark.parametrize("flag", ["--listen", "--http", "--metrics"])
@pytest.mark.parametrize("address", ["nonsense", "taken"])
def test_serve_address_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, address: str
) -> None:
    """A serve address that does not parse or cannot be listened on is a user error (2)."""
    import socket

    from capsync.cli import main

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"id": "k", "key": "secret-0123456789abcdef"}]}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        value = f"127.0.0.1:{taken.getsockname()[1]}" if address == "taken" else address
        args = {"--listen": "127.0.0.1:0", flag: value}
        argv = ["serve", "--data", str(tmp_path / "d"), "--api-keys", str(keys)]
        for name, given in args.items():
            argv += [name, given]
        code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("capsync: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert (flag in lines[0]) if address == "nonsense" else ("in use" in lines[0].lower())


def test_serve_with_a_bad_tls_certificate_says_the_certificate_is_bad(tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate\n")
    result = run_capsync(
        "serve", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
        "--tls-cert", str(bad), "--tls-key", str(bad),
    )  # fmt: skip
    assert result.returncode != 0
    _no_grpc_noise(result.stderr)
    assert "--tls-cert" in result.stderr and "bind" not in result.stderr.lower()


@pytest.mark.parametrize(
    "command",
    [("serve", "--data", "{file}", "--listen", "127.0.0.1:0"),
     ("data", "export", "--data", "{dir}", "--out", "{file}"),
     ("data", "list", "--data", "{file}")],
)  # fmt: skip
def test_a_folder_option_naming_a_file_says_so(tmp_path: Path, command: tuple[str, ...]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    (tmp_path / "d").mkdir()
    args = [arg.format(file=a_file, dir=tmp_path / "d") for arg in command]
    result = run_capsync(*args)
    assert result.returncode != 0
    _no_grpc_noise(result.stderr)
    assert "is a file, not a folder" in result.stderr and "Errno" not in result.stderr


def test_tls_to_a_plaintext_server_says_so_and_how_to_set_insecure(tmp_path: Path) -> None:
    from server_fixtures import start_server, write_keys
    from sync_helpers import machine_config, write_binary, write_config

    server = start_server(tmp_path / "data", tmp_path, keys_file=write_keys(tmp_path / "k.json"))
    try:
        capture_dir = tmp_path / "capture"
        write_binary(capture_dir, "cam", b"jpeg")
        config = write_config(
            tmp_path / "m.json", machine_config(capture_dir, server, insecure=False)
        )
        result = run_capsync("sync", str(config), "--quiet", "--retry-for", "0")
    finally:
        server.stop()
    assert result.returncode == 1
    assert "plaintext" in result.stderr and '"insecure": true' in result.stderr
    assert ".cc:" not in result.stderr


# --- small things a new user meets (item 11) ---------------------------------------------


def test_inspect_of_a_file_that_is_not_a_capture_file_says_so(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a capture file at all\n")
    noise = tmp_path / "noise.capture"
    noise.write_bytes(bytes([0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
    for path in (text, noise):
        result = run_capsync("inspect", str(path))
        assert result.returncode == 1
        assert f"{path}: not a capture file" in result.stderr


def test_data_list_without_matches_says_so_on_stderr(tmp_path: Path) -> None:
    from server_fixtures import start_server, write_keys

    server = start_server(tmp_path / "data", tmp_path, keys_file=write_keys(tmp_path / "k.json"))
    server.stop()
    result = run_capsync("data", "list", "--data", str(tmp_path / "data"), "--part", "nope")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no items match" in result.stderr


def test_version_and_sync_log_level() -> None:
    import capsync

    version = run_capsync("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"capsync {capsync.__version__}"
    sync_help = run_capsync("sync", "--help")
    assert "--log-level" in sync_help.stdout


# --- capsync serve: every mistake in a flag or the file it names is a usage error (exit 2) ---


def _serve_mistakes(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (flags after ``serve --data DIR --listen 127.0.0.1:0``, what the line names);
    the files the flags name are in ``tmp``."""
    missing, junk = str(tmp / "missing.pem"), str(tmp / "junk.pem")
    return {
        "keys file without a key": (["--api-keys", str(tmp / "bad-keys.json")], "keys[0].key"),
        "keys file not JSON": (["--api-keys", str(tmp / "not-json.json")], "not-json.json"),
        "keys file missing": (["--api-keys", str(tmp / "nope.json")], "nope.json"),
        "bad mongo uri": (["--mongo-uri", "mongo://x"], "--mongo-uri"),
        "empty mongo database": (
            ["--mongo-uri", "mongodb://127.0.0.1:1", "--mongo-database", ""],
            "--mongo-database",
        ),
        "gridfs without mongo": (["--blobs", "gridfs"], "--mongo-uri"),
        "cert without key": (["--tls-cert", junk], "--tls-key"),
        "cert file missing": (["--tls-cert", missing, "--tls-key", junk], f"--tls-cert {missing}"),
        "key file missing": (["--tls-cert", junk, "--tls-key", missing], f"--tls-key {missing}"),
        "cert and key not PEM": (["--tls-cert", junk, "--tls-key", junk], junk),
        "negative grace": (["--grace", "-1"], "--grace"),
    }


@pytest.mark.parametrize("mistake", list(_serve_mistakes(Path())))
def test_serve_flag_and_file_mistakes_exit_2_with_one_line_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mistake: str
) -> None:
    from capsync.cli import main

    if "mongo" in mistake:
        pytest.importorskip("pymongo")
    (tmp_path / "bad-keys.json").write_text('{"keys": [{"id": "x"}]}')
    (tmp_path / "not-json.json").write_text("{")
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    flags, named = _serve_mistakes(tmp_path)[mistake]
    data = str(tmp_path / "data")
    assert main(["serve", "--data", data, "--listen", "127.0.0.1:0", *flags]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("capsync: error:") and named in line


def test_a_bad_keys_file_in_the_data_folder_is_a_usage_error_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from capsync.cli import main

    (tmp_path / "api-keys.json").write_text('{"keys": []}')
    assert main(["serve", "--data", str(tmp_path), "--listen", "127.0.0.1:0"]) == 2
    assert str(tmp_path / "api-keys.json") in capsys.readouterr().err


def test_data_with_a_bad_mongo_uri_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from capsync.cli import main

    pytest.importorskip("pymongo")
    assert main(["data", "list", "--data", str(tmp_path), "--mongo-uri", "mongo://x"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--mongo-uri" in line
