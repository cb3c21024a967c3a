# acgan: set-up, demo and tests. `make demo` and `make test` install everything first (once).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of PyTorch lies on this project's machines' disk; elsewhere pick your build, e.g.
#   make install TORCH_SPEC=torch TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# Real data for development and CI: ../shared/data beside the checkout, unless ACGAN_DATA_DIR is set.
ACGAN_DATA_DIR ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export ACGAN_DATA_DIR
DEMO_DIR ?= runs/demo
DEMO_EPOCHS ?= 3

.PHONY: install install-data demo test lint check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(MAKE) --no-print-directory install-data
	@touch $(STAMP)

# Debian ships Fashion-MNIST as a package (into /usr/share/datasets/fashion-mnist/); installed when we are root.
install-data:
	@if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then \
	  echo "dataset-fashion-mnist: already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; } || \
	  echo "note: could not install dataset-fashion-mnist; acgan will look in ACGAN_DATA_DIR and ~/.cache/acgan"; \
	else \
	  echo "note: not root or no apt-get; skipping dataset-fashion-mnist (see README: Data)"; \
	fi

# The main job: train the default preset on Fashion-MNIST, then write labelled grids of every class.
demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/acgan train --dataset fashion-mnist --preset dcgan --epochs $(DEMO_EPOCHS) --seed 0 --run-dir $(DEMO_DIR)
	$(BIN)/acgan generate --checkpoint $(DEMO_DIR) --label all --num 100 --seed 0 --output $(DEMO_DIR)/all-classes.png
	for k in 0 1 2 3 4 5 6 7 8 9; do \
	  $(BIN)/acgan generate --checkpoint $(DEMO_DIR) --label $$k --num 64 --seed 0 --output $(DEMO_DIR)/class-$$k.png || exit 1; \
	done
	@echo "demo done: see $(DEMO_DIR)/all-classes.png, $(DEMO_DIR)/class-*.png, $(DEMO_DIR)/samples.gif, $(DEMO_DIR)/losses.png"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
