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

# two pytest-xdist workers: the suite is mostly single-threaded training (threads=1), so on
# the 2-core CI machine this cuts it from ~12 to ~8.5 minutes (README); each worker builds
# the shared session fixtures once. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n $(TEST_WORKERS)

demo: $(STAMP)
	$(VENV)/bin/bmx demo

# JupyterLab (from the notebooks extra) rooted at the repository, so its file browser reaches
# runs/ and reports/, opened on notebooks/; the kernel is the project's interpreter (the
# venv's python3). --allow-root only when running as root (containers, CI machines).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root,)

# README figures: copied from the demo report (run `make demo` first)
figures: $(STAMP)
	$(PY) -m bmxlib.report --readme-figures reports/demo docs/img

bench: $(STAMP)
	OMP_NUM_THREADS=1 $(VENV)/bin/bmx bench --out docs/bench-cpu.json

clean:
	rm -rf runs reports/*/ .pytest_cache
