# Two commands for a newcomer: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
# The dev setup includes the ray extra so that CI tests the Ray executor on a local instance.
# The CPU build of torch 2.13.0 is on disk on these machines; override for a GPU build,
# e.g. `make install TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'`.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,ray]'
	touch $(STAMP)

# The main job: `dagrank demo` on the shipped digits data at the quick scale (the 6-vertex space,
# the supernet, validation, the trajectory experiment, the top-10 comparison, report.md).
RUN_DIR ?= runs/demo
run: install
	$(BIN)/dagrank demo --run $(RUN_DIR)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
