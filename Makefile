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

KERAS_VENV ?= benchmarks/.keras-venv
CHECKPOINT ?= runs/demo

.PHONY: install install-data install-browser demo serve test test-fast lint check clean results \
	bench-throughput bench-quality bench-keras bench-serve bench-data bench-distributed \
	bench-crash bench-disk-full bench-soak

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

# Debian's Chromium for the browser test (tests/test_serving_browser.py skips without it).
install-browser:
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
	  echo "note: could not install chromium; the browser test will be skipped"; \
	else \
	  echo "note: not root or no apt-get; the browser test needs chromium (apt-get install chromium)"; \
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

# Serve a trained generator: the web page at http://127.0.0.1:8000/ and the API under /api/v1.
serve: install
	$(BIN)/acgan serve --checkpoint $(CHECKPOINT)

# One pytest worker per core (each with one thread, tests/conftest.py), a test file's tests together.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
test: install install-browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The edit loop's tier (under 90 s on 2 cores): everything but the tests marked slow (multi-process, subprocess,
# browser, soak, crash, disk-full, evaluation end to end). `make test` remains the whole suite (CI runs it).
test-fast: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

# docs/results.md from the benchmarks' JSON files (tests/test_results_page.py checks the committed page matches).
results: install
	$(BIN)/python benchmarks/results_page.py

# Benchmarks (not tests): each prints a table and writes JSON under benchmarks/results/.
bench-throughput: install
	$(BIN)/python benchmarks/throughput.py

# The objective comparison (README "Objectives compared"): a screen of every objective on MNIST, then the
# best on MNIST and Fashion-MNIST with two seeds; one run at a time (about 2.5 hours in all), then the tables.
bench-quality: install
	bash benchmarks/run_queue.sh benchmarks/queues/screen-mnist.txt
	bash benchmarks/run_queue.sh benchmarks/queues/confirm.txt
	$(BIN)/python benchmarks/quality_table.py --dataset mnist --minutes 5
	$(BIN)/python benchmarks/quality_table.py --dataset fashion-mnist --minutes 10

# Colour data (README "Colour images and data loading"): the decode cache's throughput, then 10 minutes of
# dcgan and of the paper's CIFAR-10 preset on the CIFAR-10 subset's class folders (needs ../shared/data).
CIFAR_FOLDERS ?= ../shared/data/cifar10-subset-folders
bench-data: install
	$(BIN)/python benchmarks/decode.py --images 4000 --size 320x240 --resolution 64
	$(BIN)/python benchmarks/quality.py --dataset $(CIFAR_FOLDERS) --preset dcgan --minutes 10 --interval 5 --samples 5000
	$(BIN)/python benchmarks/quality.py --dataset $(CIFAR_FOLDERS) --preset odena-cifar10 --minutes 10 --interval 5 --samples 5000

# The seed's own Keras 3 + TensorFlow loop beside ours, in a venv of its own (never a dependency of acgan).
$(KERAS_VENV)/.installed:
	$(PYTHON) -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/python -m pip install --quiet tensorflow-cpu==2.21.0 keras==3.15.1
	@touch $@

bench-keras: install $(KERAS_VENV)/.installed
	$(BIN)/python benchmarks/side_by_side.py --keras-python $(KERAS_VENV)/bin/python

bench-distributed: install
	$(BIN)/python benchmarks/distributed.py --steps 1000

bench-serve: install
	$(BIN)/python benchmarks/serve_load.py

# Reliability (README "Crashes, full disks and load"): kill -9 at 20 moments, a full disk (root: mounts a
# tmpfs), 50 clients for 5 minutes mixing good and bad requests against the demo's checkpoint (or an untrained one).
bench-crash: install
	$(BIN)/python benchmarks/crash.py --kills 20

bench-disk-full: install
	$(BIN)/python benchmarks/disk_full.py

bench-soak: install
	$(BIN)/python benchmarks/serve_soak.py $(if $(wildcard $(CHECKPOINT)/checkpoints/latest),--checkpoint $(CHECKPOINT))

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

check: lint test

clean:
	rm -rf $(VENV) $(KERAS_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
