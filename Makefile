# Two-command quick start: `make demo` and `make test` (each sets up .venv when missing).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bmxlib-installed

.PHONY: setup test demo lab figures bench clean

setup: $(STAMP)

# torch/torchvision are pinned for Linux x86_64 in pyproject.toml (torch==2.14.1,
# torchvision==0.29.1); the venv is rebuilt only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[notebooks,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/bmx demo

# JupyterLab on notebooks/ with the project's interpreter as the python3 kernel
lab: $(STAMP)
	$(PY) -m pip install --quiet jupyterlab
	$(VENV)/bin/jupyter lab notebooks/

# README figures: copied from the demo report (run `make demo` first)
figures: $(STAMP)
	$(PY) -m bmxlib.report --readme-figures reports/demo docs/img

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/bmx bench --out docs/bench-cpu.json

clean:
	rm -rf runs reports/*/ .pytest_cache
