"""What the tests share besides fixtures: the repo's root, the real data's place, the tiny
networks and their config, the attributes the synthetic faces render, and the CLI run in-process
with the check that a refusal is one line."""
from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from cli.main import app

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
LFW_TGZ = SHARED_DATA / "lfw.tgz"
LFW_ATTRIBUTES = SHARED_DATA / "lfw_attributes.txt"

TINY_MODEL = {
    "image_size": 32, "z_dim": 16, "enc_channels": [8, 16, 32], "enc_fc": 64, "dec_channels": [32, 16, 8],
    "dec_fc_channels": 32, "dis_first_channels": 8, "dis_channels": [16, 32, 32], "dis_fc": 32,
}


def tiny_config(data: Path, kind: str = "vaegan", **train):
    """A config of the tiny networks on ``data``; ``train`` overrides train.* keys."""
    from attrgan.config import from_dict

    return from_dict({
        "model": {**TINY_MODEL, "kind": kind},
        "data": {"path": str(data)},
        "train": {"batch_size": 16, "progress": False, "device": "cpu", "checkpoint_every": 0, "precision": "fp32",
                  "sample_every_epoch": False, **train},
    })


RENDERED = ["Male", "Smiling", "Mouth Wide Open", "Eyeglasses", "Blond Hair", "Black Hair", "Bald", "Pale Skin",
            "Mustache", "Wearing Lipstick"]


def invoke(argv: list) -> Result:
    """The CLI in this process (arguments as strings)."""
    return CliRunner().invoke(app, [str(a) for a in argv])


def one_error(result: Result, fragment: str) -> None:
    """Exit 1 with exactly one `error:` line that contains ``fragment``, and no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.output.count("error:") == 1 and "Traceback" not in result.output, result.output
    assert fragment in result.output, result.output
