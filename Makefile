# The two commands a new user needs: `make demo` and `make test`.
# Each creates .venv if it is missing and installs the pinned environment first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# The main job on the built-in synthetic benchmark: InfoNCE vs ViewCLR on CVS, linear probes, table, report
# (its wall time on 2 CPU cores is measured in the README; a second run reuses everything).
demo: $(STAMP)
	$(VENV)/bin/viewclr demo --config synth_cpu --out runs/demo

# Two workers, a test file each at a time (pytest-xdist): the suite's subprocesses and tiny single-thread runs
# leave a core idle when run one after another.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

# One table of speed and memory (CPU; GPU rows too on a CUDA machine): the benchmarks in benchmarks/.
bench: $(STAMP)
	$(PY) -m benchmarks --out runs/bench

clean-venv:
	rm -rf $(VENV)
