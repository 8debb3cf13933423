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

# Until pretraining lands (issues 4–7), the demo renders the synthetic benchmark and shows its protocol split.
demo: $(STAMP)
	$(VENV)/bin/viewclr synth runs/demo/synth --preview runs/demo/synth_preview.png
	$(VENV)/bin/viewclr splits --dataset synth --root runs/demo/synth --protocol cvs
	@echo "demo: dataset in runs/demo/synth, contact sheet in runs/demo/synth_preview.png"

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/loader.py --out runs/bench/loader
	$(PY) benchmarks/synth.py --out runs/bench/synth
	$(PY) benchmarks/models.py
	$(PY) benchmarks/pretrain.py

clean-venv:
	rm -rf $(VENV)
