"""``make debug`` really rebuilds traced and annotated; the normal targets restore -O3 (item 12).

The build runs in a scratch copy of ``setup.py`` with the small ``wire/_clock``
extension only, so the extension the other tests use is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.wire_independent, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def build(workdir: Path, *, debug: bool) -> str:
    """Run the build ``make debug`` / ``make optimized`` runs; the generated C source."""
    env = dict(os.environ)
    env.pop("CAPSYNC_DEBUG", None)
    if debug:
        env["CAPSYNC_DEBUG"] = "1"
    subprocess.run(
        [sys.executable, "setup.py", "--quiet", "build_ext", "--inplace", "--force"],
        cwd=workdir, env=env, check=True, capture_output=True, timeout=280,
    )  # fmt: skip
    return (workdir / "ext" / "capsync" / "wire" / "_clock.c").read_text()


def test_debug_rebuilds_traced_and_annotated_then_release_restores(tmp_path: Path) -> None:
    (tmp_path / "ext" / "capsync" / "wire").mkdir(parents=True)
    (tmp_path / "capsync" / "wire").mkdir(parents=True)  # where --inplace puts the module here
    shutil.copy(ROOT / "setup.py", tmp_path / "setup.py")
    shutil.copy(
        ROOT / "ext" / "capsync" / "wire" / "_clock.pyx", tmp_path / "ext" / "capsync" / "wire"
    )
    annotation = tmp_path / "ext" / "capsync" / "wire" / "_clock.html"
    release = build(tmp_path, debug=False)
    assert "__Pyx_TraceLine(" not in release and not annotation.exists()
    debug = build(tmp_path, debug=True)  # after an earlier build: Cython must run again
    assert "__Pyx_TraceLine(" in debug
    assert annotation.exists()
    assert "__Pyx_TraceLine(" not in build(tmp_path, debug=False)


@pytest.mark.parametrize(("last_build", "rebuilds"), [("debug", True), ("release", False)])
def test_normal_targets_restore_the_optimized_build_after_debug(
    tmp_path: Path, last_build: str, rebuilds: bool
) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".capsync-flavour").write_text(last_build + "\n")
    for target in ("test", "test-python", "demo"):
        plan = subprocess.run(
            ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        assert ("build_ext --inplace --force" in plan) == rebuilds, plan
