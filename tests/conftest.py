"""Shared fixtures: the real data beside the repo (skipped when absent) and small synthetic sets."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
LFW_TGZ = SHARED_DATA / "lfw.tgz"
LFW_ATTRIBUTES = SHARED_DATA / "lfw_attributes.txt"


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
    write_synthetic_lfw(root, people=40, max_images=4, seed=3)
    return root


@pytest.fixture(scope="session")
def aligner():
    from data_prep.align import FaceAligner

    return FaceAligner(size=64)
