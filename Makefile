# ipchange — developer commands. `make help` lists them.
#
# Every target that runs Python depends on $(STAMP): it creates $(VENV) with the machine's
# python3 when missing and (re)installs the project with its dev extras whenever pyproject.toml
# is newer than the last install. Nothing needs to be installed beforehand.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PIP := $(BIN)/pip
PY := $(BIN)/python
PYTEST := $(BIN)/pytest
RUFF := $(BIN)/ruff
IPCHANGE := $(BIN)/ipchange

# Parallel by default; tests that share one PostgreSQL database should carry
# @pytest.mark.xdist_group("postgres") so that one worker runs them all.
# Run serially with `make test PYTEST_ARGS=`; pass more options with `make test ARGS='-k fees'`.
PYTEST_ARGS ?= -n auto --dist loadgroup
ARGS ?=
# `make fuzz` runs every property test (hypothesis marks each one `hypothesis`) with fresh random
# examples, and every test marked `fuzz`: tests/test_fuzz.py shares FUZZ_SECONDS between its
# formats, rerunning with fresh random inputs (hypothesis profile "fuzz") until each share is
# spent; tests/test_fuzz_config.py gives 5% of FUZZ_SECONDS to each of policy YAML, mapping YAML,
# arguments, environment and output paths (tiny tmpfs mounts when run as root); the fault tests
# (tests/test_faults.py) inject up to IPCHANGE_FAULT_POINTS faults each,
# stopping after FUZZ_SECONDS; the injection and money corpora run once at full size. So a run
# lasts longer than FUZZ_SECONDS. `make test` runs test_fuzz.py with a few fixed examples.
FUZZ_SECONDS ?= 600

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-python fuzz bench bench-e2e lint fmt lab clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## /  make \1\t/' | expand -t 16

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make: $(PYTHON) is older than 3.11; run with PYTHON=python3.11 or newer" >&2; exit 2; }
	@test -x $(PIP) || $(PYTHON) -m venv $(VENV) \
		|| { echo "make: '$(PYTHON) -m venv' failed; on Debian: apt-get install python3-venv" >&2; exit 2; }
	$(PIP) install --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create .venv and install the project (done by every other target)

demo: $(STAMP) ## generate demo data, load it and build every report
	$(IPCHANGE) demo

test: $(STAMP) ## run the whole test suite
	$(PYTEST) $(PYTEST_ARGS) $(ARGS)

# `PYTHON=python3.13 make test-python`: the suite on another interpreter, in a venv of its own
# (.venv-py3.13), so that .venv stays as it is. .ci/run runs it when a 3.13 interpreter is present.
test-python: ## run the suite on another Python in .venv-py<version> (PYTHON=python3.13)
	@version=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
		|| { echo "make: $(PYTHON) does not run" >&2; exit 2; }; \
	echo "make: the suite on $$($(PYTHON) --version) in .venv-py$$version"; \
	$(MAKE) --no-print-directory test PYTHON=$(PYTHON) VENV=.venv-py$$version

fuzz: $(STAMP) ## every property test with fresh examples; fuzz every input for FUZZ_SECONDS (default 600)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PYTEST) -m 'fuzz or hypothesis' -n 0 -p no:randomly --hypothesis-profile=fuzz $(ARGS)

bench: $(STAMP) ## run the benchmarks (bench/run.py)
	$(PY) bench/run.py

bench-e2e: $(STAMP) ## end-to-end scale benchmark, writes bench/RESULTS.md (ARGS='--tickets N --pg URL')
	$(PY) bench/bench_e2e.py $(ARGS)

lint: $(STAMP) ## ruff check and ruff format --check (reports both)
	@status=0; \
	$(RUFF) check . || status=1; \
	$(RUFF) format --check . || status=1; \
	exit $$status

fmt: $(STAMP) ## format the code with ruff format
	$(RUFF) format .

lab: $(STAMP) ## JupyterLab on notebooks/ with the project's kernel; prints the URL to open
	$(PY) -m ipchange_core.lab

clean: ## remove caches and build leftovers (keeps .venv, data/ and reports/)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .hypothesis bench/out build dist *.egg-info
