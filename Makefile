# The README's two set-up commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo-run
# The synthetic LFW renders these attributes; the other 63 columns carry no visual signal,
# so the demo conditions on (and scores) these ten.
DEMO_ATTRIBUTES := Male,Smiling,Mouth Wide Open,Eyeglasses,Blond Hair,Black Hair,Bald,Pale Skin,Mustache,Wearing Lipstick

CELEBA_ATTRIBUTES := Male,Smiling,Eyeglasses,Blond_Hair,Black_Hair,Bald,Pale_Skin,Mustache,Wearing_Lipstick,Mouth_Slightly_Open

.PHONY: demo demo-celeba test test-fast lint install clean

install: $(STAMP)

# torch/torchvision are pinned in pyproject.toml (CUDA build, ~5.5 GB venv; runs on CPU too).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# synth-lfw -> prep-lfw -> train-conditional (vaegan, configs/demo.yaml) -> train-regressor -> eval-attributes
demo: $(STAMP)
	rm -rf $(DEMO)
	$(VENV)/bin/attrgan synth-lfw $(DEMO)/synthetic-lfw --people 400 --max-images 5
	$(VENV)/bin/attrgan reproduce --images $(DEMO)/synthetic-lfw/lfw \
		--attributes $(DEMO)/synthetic-lfw/lfw_attributes.txt --config configs/demo.yaml \
		--out $(DEMO) --models vaegan --size 32 --condition-on "$(DEMO_ATTRIBUTES)" \
		--regressor-channels 32,64,128 --regressor-fc 256 --seeds 3
	@echo "These are synthetic faces. For real ones, train on LFW: README.md, 'Real LFW in five commands'."

# The same pipeline on a synthetic CelebA in the official layout (prep-celeba's reader and crop).
demo-celeba: $(STAMP)
	rm -rf $(DEMO)-celeba
	$(VENV)/bin/attrgan synth-celeba $(DEMO)-celeba/synthetic-celeba --images 1000
	$(VENV)/bin/attrgan reproduce --dataset celeba --images $(DEMO)-celeba/synthetic-celeba --config configs/demo.yaml \
		--out $(DEMO)-celeba --models vaegan --size 32 --condition-on "$(CELEBA_ATTRIBUTES)" \
		--regressor-channels 32,64,128 --regressor-fc 256 --seeds 3

test: $(STAMP)
	$(PY) -m pytest -q

# The edit-and-test loop: everything but the tests that train a model (tests/conftest.py marks them slow).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check attrgan cli data_prep tests benchmarks

clean:
	rm -rf $(DEMO) $(DEMO)-celeba .pytest_cache
