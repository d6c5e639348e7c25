"""Build the compiled hot path; everything else about the package lives in pyproject.toml."""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CAPSYNC_DEBUG") == "1"
FLAVOUR = "debug" if DEBUG else "release"
# The flavour the generated .c files were made for: Cython skips a .pyx older than its .c
# even when the directives (linetrace, boundscheck, annotate) changed, so a change of
# flavour must force it.
FLAVOUR_MARKER = Path("build") / "cython-flavour"
force_cython = not FLAVOUR_MARKER.exists() or FLAVOUR_MARKER.read_text().strip() != FLAVOUR

extensions = [
    Extension(
        f"capsync.{name}",
        [f"ext/capsync/{name.replace('.', '/')}.pyx"],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
        define_macros=[("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [],
    )
    for name in (
        "wire._framing",
        "wire._upload",
        "wire._wire",
        "wire._append",
        "wire._clock",
        "export._export",
        "server._splice",
    )
    if Path(f"ext/capsync/{name.replace('.', '/')}.pyx").exists()
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        include_path=["ext"],
        annotate=DEBUG,
        force=force_cython,
        compiler_directives={
            "boundscheck": DEBUG,
            "wraparound": False,
            "cdivision": True,
            "linetrace": DEBUG,
            "embedsignature": True,
        },
    ),
)
FLAVOUR_MARKER.parent.mkdir(exist_ok=True)
FLAVOUR_MARKER.write_text(FLAVOUR + "\n")
