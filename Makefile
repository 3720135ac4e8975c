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

# The main job, as far as it is built: the space job (the seed's 6-vertex space and the labelled
# NAS-Bench-101 space, described and plotted), then the supernet at the quick preset, ranked.
RUN_DIR ?= runs/space
run: install
	$(BIN)/dagrank space enumerate --vertices 6 --out $(RUN_DIR)/space6.npz
	$(BIN)/dagrank space describe $(RUN_DIR)/space6.npz
	$(BIN)/dagrank space plot $(RUN_DIR)/space6.npz --out $(RUN_DIR)/space6.png
	$(BIN)/dagrank space enumerate --vertices 7 --ops nasbench101 --max-edges 9 --out $(RUN_DIR)/nasbench101.npz
	$(BIN)/dagrank space describe $(RUN_DIR)/nasbench101.npz
	$(BIN)/dagrank supernet train --preset quick --run runs/supernet --no-progress

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
