# Set-up is part of every target: a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
FMNIST_PNG := data/fashion_mnist_png
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EXTRAS ?= dev,search,export,text,data,vision,llm

.PHONY: setup demo demo-full quick test lint bench clean speech-data

$(BIN)/distill: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch and torchvision pinned as a pair (torchvision 0.28.0 fails to import beside torch 2.13.0+cpu:
	# `operator torchvision::nms does not exist`); these builds carry CUDA libraries but run on a CPU.
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

$(FMNIST):
	@if command -v apt-get >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	else \
		echo "Fashion-MNIST is missing: install the Debian package dataset-fashion-mnist," \
		     "or set DISTILL_FASHION_MNIST_DIR to a directory with the four IDX files"; \
	fi

setup: $(BIN)/distill
	@[ -f $(FMNIST) ] || [ -n "$$DISTILL_FASHION_MNIST_DIR" ] || $(MAKE) --no-print-directory $(FMNIST)
	@# The demo's images as folders of PNGs (root/<class>/*.png), written once from the IDX files (about a minute).
	@[ -f $(FMNIST_PNG)/COMPLETE ] || $(BIN)/python -m distill.data.fashion_mnist_png $(FMNIST_PNG)
	@# Headless Chromium renders report.html in the tests (they skip without it).
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; } || \
		echo "chromium could not be installed: the browser tests of the report will be skipped"
	@# PostgreSQL: the test of two search workers sharing one study starts a local server (skipped without it).
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
		! command -v apt-get >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql; } || \
		echo "postgresql could not be installed: the shared-study search test will be skipped"
	@# espeak-ng synthesises the spoken-word set of examples/speech.yaml (generated once, about a minute).
	@command -v espeak-ng >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng; } || \
		echo "espeak-ng could not be installed: examples/speech.yaml needs it (its data test is skipped)"

speech-data: setup
	nice -n 15 $(BIN)/python -m distill.data.spoken_words

# The demo is the regime distillation pays in: a teacher trained once on every label (it stands for
# the pretrained model a user brings; kept and reused), then a student with 2,000 labels and the
# other 53,000 images unlabelled, against the same student on its labels alone.
TEACHER_RUN := runs/fashion_mnist_teacher
demo: setup
	@[ -f $(TEACHER_RUN)/checkpoints/teacher-best.safetensors ] || \
		$(BIN)/distill run examples/fashion_mnist_teacher.yaml --out $(TEACHER_RUN) --overwrite
	$(BIN)/distill run examples/fashion_mnist_few_labels.yaml

# The full-data demo: every label for the student too, where distillation does not beat the baseline.
demo-full: setup
	$(BIN)/distill run examples/fashion_mnist.yaml

quick: setup
	$(BIN)/distill run examples/quick.yaml

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/kd_fashion_mnist.py

clean:
	rm -rf $(VENV) runs .pytest_cache
