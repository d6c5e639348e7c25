# capsync developer entry points. Every target creates or reuses ./.venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.capsync-installed
# Which build of the extension is in src/capsync: "release" (-O3) or "debug" (make debug).
FLAVOUR := $(VENV)/.capsync-flavour
# After `make debug`, the normal targets first restore the optimized build.
ifeq ($(shell cat $(FLAVOUR) 2>/dev/null),debug)
OPTIMIZED := optimized
endif
EXT_SOURCES := $(wildcard ext/capsync/*/*.pyx ext/capsync/*/*.pxd ext/capsync/*/*.pxi)

.PHONY: help venv install compile optimized debug test test-fast test-python lint proto bench bench-sync-full demo clean browser

help:
	@echo "make demo     capture with the example config, sync to a local server, show what arrived"
	@echo "make test     install test dependencies (and Chromium) into .venv and run the whole suite"
	@echo "make test-fast  the suite without the tests marked slow"
	@echo "make bench    run the benchmarks and print the ratio tables"
	@echo "make lint     ruff, mypy and cython-lint"
	@echo "make proto    regenerate the checked-in protobuf/gRPC modules"
	@echo "make debug    rebuild the extension traced and annotated (CAPSYNC_DEBUG=1)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when the build inputs change; Python sources are live (editable install).
$(STAMP): $(PY) pyproject.toml setup.py $(EXT_SOURCES)
	$(PY) -m pip install --quiet "setuptools>=69" "Cython>=3.1" "numpy>=2" wheel
	$(PY) -m pip install --quiet --no-build-isolation -e '.[test]'
	echo release > $(FLAVOUR)
	touch $(STAMP)

venv install: $(STAMP)

compile: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace
	echo release > $(FLAVOUR)

# Re-run Cython and the compiler with -O3 (used after `make debug`).
optimized: $(STAMP)
	@echo "rebuilding the optimized extension (the last build was make debug)"
	$(PY) setup.py --quiet build_ext --inplace --force
	echo release > $(FLAVOUR)

# Re-run Cython (line tracing, bounds checks, annotation HTML in ext/capsync/) and gcc -O0 -g.
debug: $(STAMP)
	CAPSYNC_DEBUG=1 $(PY) setup.py build_ext --inplace --force
	echo debug > $(FLAVOUR)

# The data page's tests drive Debian's Chromium (Playwright, no browser download).
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -q && apt-get install -y -q chromium; }

# PYTEST_ARGS: extra pytest options, e.g. PYTEST_ARGS="-n 2" (pytest-xdist, as CI runs it).
test: $(STAMP) $(OPTIMIZED) browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the tests marked @pytest.mark.slow (crash loops, long soaks).
test-fast: $(STAMP) $(OPTIMIZED)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The whole suite with the extension switched off at import (the twin only).
test-python: $(STAMP) $(OPTIMIZED) browser
	CAPSYNC_NO_EXTENSIONS=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples setup.py
	$(VENV)/bin/mypy
	PATH=$(VENV)/bin:$$PATH cython-lint --max-line-length 100 ext/capsync

proto: $(STAMP)
	$(PY) -m capsync.proto.generate

bench: $(STAMP) $(OPTIMIZED)
	$(PY) -m pytest benchmarks -q --benchmark-only --benchmark-json=.bench.json
	$(PY) benchmarks/report.py .bench.json
	$(PY) benchmarks/collector_rate.py
	$(PY) benchmarks/sync_throughput.py --quick

# The README's sync figures: a 1 GiB backlog per phase (under a minute on the quiet dev VM).
bench-sync-full: $(STAMP) $(OPTIMIZED)
	$(PY) benchmarks/sync_throughput.py

demo: $(STAMP) $(OPTIMIZED)
	$(PY) examples/demo.py

clean:
	rm -rf build dist .bench.json src/capsync/*/*.so ext/capsync/*/*.c ext/capsync/*/*.html
