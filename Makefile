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

.PHONY: demo demo-celeba bundle test test-fast lint install clean

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
	@echo "These are synthetic faces. Real ones come with the bundled LFW model (docs/models.md):"
	@echo "  $(VENV)/bin/attrgan sample --checkpoint lfw32 -n 16 --out faces.png    or    $(VENV)/bin/attrgan serve"

# The same pipeline on a synthetic CelebA in the official layout (prep-celeba's reader and crop).
demo-celeba: $(STAMP)
	rm -rf $(DEMO)-celeba
	$(VENV)/bin/attrgan synth-celeba $(DEMO)-celeba/synthetic-celeba --images 1000
	$(VENV)/bin/attrgan reproduce --dataset celeba --images $(DEMO)-celeba/synthetic-celeba --config configs/demo.yaml \
		--out $(DEMO)-celeba --models vaegan --size 32 --condition-on "$(CELEBA_ATTRIBUTES)" \
		--regressor-channels 32,64,128 --regressor-fc 256 --seeds 3

# The bundled model, retrained bit for bit (docs/models.md): real LFW, the VAE/GAN and the VAE trained
# the same way (configs/lfw32.yaml, BUNDLE_STEPS updates), the evaluation regressor, Table 1 on test
# (5 sampling seeds) and val (3), then compact copies into attrgan/bundled. Kept copies every 1,500
# updates (runs/*/checkpoint-NNNNNN.pt) score the budgets before the last. 2 h 25 min on 2 cores
# with native bf16 (docs/performance.md), minutes on a GPU (--device auto takes it). Run again, it resumes what is unfinished.
LFW          ?= ../shared/data
BUNDLE_RUN   ?= bundle-run
BUNDLE_STEPS ?= 6000
bundle: $(STAMP)
	$(VENV)/bin/attrgan reproduce --images $(LFW)/lfw.tgz --attributes $(LFW)/lfw_attributes.txt \
		--config configs/lfw32.yaml --out $(BUNDLE_RUN) --models vaegan,vae --size 32 \
		--set train.max_steps=$(BUNDLE_STEPS) --set train.snapshot_every=1500
	$(VENV)/bin/attrgan eval-attributes --data $(BUNDLE_RUN)/dataset --regressor $(BUNDLE_RUN)/regressor \
		--checkpoint $(BUNDLE_RUN)/runs/vaegan --checkpoint $(BUNDLE_RUN)/runs/vae --split val --seeds 3 \
		--out $(BUNDLE_RUN)/report-val --force
	$(VENV)/bin/attrgan export-model lfw32 --checkpoint $(BUNDLE_RUN)/runs/vaegan --regressor $(BUNDLE_RUN)/regressor \
		--card "VAE/GAN on real LFW at 32x32, configs/lfw32.yaml, $(BUNDLE_STEPS) updates (docs/models.md)"

test: $(STAMP)
	$(PY) -m pytest -q

# The edit-and-test loop: everything but the tests that train a model (tests/conftest.py marks them slow).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check attrgan cli data_prep tests benchmarks

clean:
	rm -rf $(DEMO) $(DEMO)-celeba .pytest_cache
