"""What importing capsync costs, and what happens without the optional ``[mongo]`` extra.

Each check runs in a fresh interpreter, so what an earlier test imported does
not count. "Without pymongo" is simulated by ``sys.modules["pymongo"] = None``
(and ``bson``), which makes every import of them fail as if not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from server_fixtures import subprocess_env

import capsync

pytestmark = pytest.mark.wire_independent

HEAVY = ("grpc", "pymongo", "psutil", "PIL", "numpy", "google.protobuf")
NO_PYMONGO = "import sys\nsys.modules['pymongo'] = None\nsys.modules['bson'] = None\n"


def _python(code: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_import_capsync_loads_nothing_heavy() -> None:
    done = _python(
        "import sys, capsync\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "capsync.open_stream\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert done.returncode == 0, done.stderr
    nothing, for_a_stream = done.stdout.splitlines()
    assert nothing == "[]"
    # A capture stream needs the wire layer (numpy, protobuf) but no network or database.
    assert "grpc" not in for_a_stream and "pymongo" not in for_a_stream
    assert "numpy" in for_a_stream


def test_every_public_name_resolves() -> None:
    for name in capsync.__all__:
        assert getattr(capsync, name) is not None, name
    assert set(dir(capsync)) >= set(capsync.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = capsync.nothing_here  # type: ignore[attr-defined]


def test_everything_but_mongodb_imports_without_pymongo() -> None:
    done = _python(
        NO_PYMONGO + "import capsync.service, capsync.server, capsync.sync, capsync.cli\n"
        "from capsync import DataManager\n"
        "print('ok')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--data", "{data}", "--mongo-uri", "mongodb://127.0.0.1:1"],
        ["data", "list", "--data", "{data}", "--mongo-uri", "mongodb://127.0.0.1:1"],
    ],
    ids=["serve", "data-list"],
)
def test_mongo_options_without_pymongo_say_so_in_one_line(tmp_path: Path, args: list[str]) -> None:
    argv = [a.format(data=tmp_path / "data") for a in args]
    done = _python(
        NO_PYMONGO + f"from capsync.cli import main\nsys.exit(main({argv!r}))\n", timeout_s=60
    )
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        "capsync: error: --mongo-uri: MongoDB support needs pymongo, which is not installed: "
        "pip install 'capsync[mongo]'"
    ]
    assert not (tmp_path / "data" / "api-keys.json").exists()


def test_mongo_capture_without_pymongo_is_off_with_one_clear_error(tmp_path: Path) -> None:
    config = {
        "services": [
            {
                "name": "dm",
                "type": "data_manager",
                "attributes": {
                    "capture_dir": str(tmp_path / "capture"),
                    "mongo_capture_config": {"uri": "mongodb://127.0.0.1:1"},
                },
            }
        ]
    }
    done = _python(
        NO_PYMONGO + "import json, logging\n"
        "logging.basicConfig(format='%(levelname)s %(message)s')\n"
        "from capsync import DataManager\n"
        f"manager = DataManager.from_config(json.loads({json.dumps(config)!r})).start()\n"
        "print(manager.mongo_stats())\n"
        "manager.close()\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "None\n"
    assert done.stderr.splitlines() == [
        "ERROR mongo_capture_config: MongoDB support needs pymongo, which is not installed: "
        "pip install 'capsync[mongo]'; MongoDB capture is off"
    ]
