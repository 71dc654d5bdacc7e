# The README's two set-up commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo-run

.PHONY: demo test install clean

install: $(STAMP)

# Torch/torchvision come from the local wheel cache here (CUDA build, ~5.5 GB venv).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/attrgan synth-lfw $(DEMO)/synthetic-lfw --people 120
	$(VENV)/bin/attrgan prep-lfw --images $(DEMO)/synthetic-lfw/lfw \
		--attributes $(DEMO)/synthetic-lfw/lfw_attributes.txt --out $(DEMO)/dataset
	@echo "demo dataset: $(DEMO)/dataset (images.npy, index.csv, manifest.json)"

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(DEMO) .pytest_cache
