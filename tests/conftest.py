"""Shared fixtures: the real data beside the repo (skipped when absent) and small synthetic sets
(their helpers: tests/helpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import LFW_ATTRIBUTES, LFW_TGZ, RENDERED, tiny_config


@pytest.fixture(scope="session")
def real_attributes() -> Path:
    if not LFW_ATTRIBUTES.is_file():
        pytest.skip("../shared/data/lfw_attributes.txt is absent")
    return LFW_ATTRIBUTES


@pytest.fixture(scope="session")
def real_lfw() -> Path:
    if not LFW_TGZ.is_file():
        pytest.skip("../shared/data/lfw.tgz is absent")
    return LFW_TGZ


@pytest.fixture(scope="session")
def synthetic_lfw(tmp_path_factory) -> Path:
    """A small synthetic LFW (images + attribute file), written once per session."""
    from data_prep.synth import write_synthetic_lfw

    root = tmp_path_factory.mktemp("synthetic") / "lfw-root"
    write_synthetic_lfw(root, people=40, max_images=4, seed=3, unlabelled_fraction=0.1)  # ~10 unlabelled
    return root


@pytest.fixture(scope="session")
def aligner():
    from data_prep.align import FaceAligner

    return FaceAligner(size=64)


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> Path:
    """A real photo (skimage's astronaut), a corrupt file and a blank image."""
    from PIL import Image

    skdata = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skdata.astronaut()).save(folder / "astronaut.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    Image.new("RGB", (300, 200), (128, 128, 128)).save(folder / "blank.png")
    return folder


@pytest.fixture(scope="session")
def synthetic_dataset(synthetic_lfw, tmp_path_factory) -> Path:
    """The synthetic LFW through prep-lfw at 32x32: a dataset directory by the contract."""
    from data_prep.prep import PrepConfig, prepare_dataset

    out = tmp_path_factory.mktemp("dataset") / "synthetic32"
    prepare_dataset(
        PrepConfig(images=synthetic_lfw / "lfw", attributes=synthetic_lfw / "lfw_attributes.txt", out=out, size=32),
        progress=False,
    )
    return out


@pytest.fixture(scope="session")
def learnable_dataset(tmp_path_factory) -> Path:
    """A larger synthetic LFW (400 people, ~1000 images) at 32x32: enough to learn from."""
    from data_prep.prep import PrepConfig, prepare_dataset
    from data_prep.synth import write_synthetic_lfw

    root = tmp_path_factory.mktemp("learnable")
    write_synthetic_lfw(root / "lfw-root", people=400, max_images=5, seed=11)
    prepare_dataset(PrepConfig(images=root / "lfw-root" / "lfw", attributes=root / "lfw-root" / "lfw_attributes.txt",
                               out=root / "dataset", size=32), progress=False)
    return root / "dataset"


@pytest.fixture(scope="session")
def trained_regressor(learnable_dataset, tmp_path_factory) -> Path:
    """A regressor of the rendered attributes, trained once per session."""
    from attrgan.evaluation.regressor import RegressorConfig, train_regressor

    out = tmp_path_factory.mktemp("regressor")
    train_regressor(RegressorConfig(data=str(learnable_dataset), image_size=32, channels=[32, 64, 128], fc=256,
                                    attributes=RENDERED, epochs=30, patience=30, device="cpu", progress=False), out)
    return out


@pytest.fixture(scope="session")
def conditional_run(learnable_dataset, tmp_path_factory) -> Path:
    """A tiny conditional VAE trained on the rendered attributes of the learnable set."""
    from attrgan.training.loop import train

    out = tmp_path_factory.mktemp("cond") / "vae"
    config = tiny_config(learnable_dataset, "vae", epochs=12, batch_size=32)
    config.data.attributes = RENDERED
    config.model.z_dim = 8
    train(config, out)
    return out


# Fixtures that train a model or prepare a learnable dataset: a test that uses one is `slow`, and
# `make test-fast` (pytest -m "not slow") leaves it out; so does a test marked slow by hand (one that
# trains, runs a pipeline or other processes, or reads real LFW: 1.5 s or more on 2 AVX2 cores).
TRAINING_FIXTURES = {"learnable_dataset", "trained_regressor", "conditional_run", "world", "half_labelled_dataset",
                     "real_subset", "celeba_dataset"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
