"""Fine-tuning: a new run that starts from the weights of a trained model (a checkpoint or a
bundled model's name, ``train-conditional --init lfw32``), on another dataset."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

from attrgan.checkpoint import GENERATOR_KINDS, load_checkpoint
from attrgan.config import Config, from_dict
from attrgan.runtime.errors import UserError


def start_from(config: Config, init: str | Path) -> tuple[Config, dict]:
    """The config of a run that starts from ``init``: the model's architecture (its whole model
    section) and, unless ``config`` names some, its attributes; and the checkpoint's payload."""
    payload = load_checkpoint(init, expect_kinds=GENERATOR_KINDS)
    saved = from_dict(payload["config"])
    data = config.data
    if data.attributes is None:
        data = dataclasses.replace(data, attributes=list(payload["attribute_names"]))
    return dataclasses.replace(config, model=saved.model, data=data), payload


def check_same_attributes(names: list[str], payload: dict, init: str | Path) -> None:
    """The dataset's attributes must be the model's, in its order: one error naming the difference."""
    model_names = list(payload["attribute_names"])
    if list(names) == model_names:
        return
    missing = [n for n in model_names if n not in names]
    extra = [n for n in names if n not in model_names]
    what = "; ".join(part for part in (missing and f"this run lacks {', '.join(map(repr, missing[:5]))}",
                                       extra and f"the model lacks {', '.join(map(repr, extra[:5]))}") if part)
    raise UserError(f"--init {init}: the model conditions on other attributes than this run ({what or 'another order'})"
                    "; leave --attributes out to take the model's, or prepare the dataset with them")


def load_pretrained(nets: dict[str, nn.Module], payload: dict, init: str | Path) -> None:
    """Each network's weights from ``payload`` (its weight average where the model kept one); a
    network it lacks (a bundled model has no discriminator) starts from its initialisation."""
    for name, net in nets.items():
        state = payload.get("averages", {}).get(name) or payload["nets"].get(name)
        if state is None:
            continue
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise UserError(f"--init {init}: its {name} does not fit this run ({str(exc).splitlines()[0][:120]}); "
                            "the run's --unlabelled must be the model's (its FC layers take the labelled flag or "
                            "not)") from None
