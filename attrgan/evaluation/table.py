"""Table 1's rows and columns: the one place that defines a model row's figures (metrics.json
key, label, digits, printed width), the row names and the paper's values.

Adding a column: compute it per model in ``evaluate`` (a per-seed figure from
``metrics.attribute_scores`` lands in the row by itself), then add a :class:`Column` here; the
printed table, the report's and the training-seed summaries read this list."""
from __future__ import annotations

from dataclasses import dataclass

from attrgan.checkpoint import run_name

MODEL_LABELS = {"vae": "VAE", "gan": "GAN", "vaegan": "VAE/GAN"}
# The paper's Table 1 (Larsen et al. 2016; values as recalled in the design card, to be confirmed).
PAPER_TABLE = {
    "LFW test set": (0.9193, 14.20), "VAE": (0.9030, 27.59), "GAN": (0.8892, 27.89), "VAE/GAN": (0.9114, 22.39),
}


@dataclass(frozen=True)
class Column:
    key: str  # the metrics.json key of a model row
    label: str
    digits: int
    width: int = 0  # in the printed table; 0 = not printed there
    ratio: bool = False  # a ratio to the real faces' figure: 1 for the real images
    heading: str = ""  # the printed table's heading, where shorter than the label
    with_std: bool = False  # printed with its std over sampling seeds (the paper's two figures)


COLUMNS = (
    Column("cosine_similarity", "cosine", 4, 11, with_std=True),
    Column("centred_cosine", "centred cosine", 4, 16),
    Column("sign_accuracy", "sign accuracy", 4, 11, heading="sign acc."),
    Column("squared_error", "squared error", 2, 14, with_std=True),
    Column("frechet_distance_regressor_features", "Fréchet distance", 1),
    Column("colour_speckle_vs_real", "colour speckle / real", 2, 16, ratio=True, heading="colour speckle"),
    Column("spectrum_mid_vs_real", "mid band / real", 3, 10, ratio=True, heading="mid band"),
    Column("spectrum_corner_vs_real", "corner / real", 1, 10, ratio=True, heading="corner"),
)
FIGURES = tuple((c.key, c.label) for c in COLUMNS)  # (key, label) pairs, as the training-seed summaries take them
RATIO_FIGURES = tuple(c.key for c in COLUMNS if c.ratio)
DIGITS = {c.key: c.digits for c in COLUMNS}


def model_names(models) -> list[tuple[str, str]]:
    """(report label, file stem) per model: the paper's name and the kind (e.g. VAE/GAN, vaegan);
    where several runs of one kind are compared, each also names its run folder."""
    names = []
    for model in models:
        label, stem = MODEL_LABELS[model.kind], model.kind
        if sum(m.kind == model.kind for m in models) > 1:
            run = run_name(model.path)
            label, stem = f"{label} ({run})", f"{stem}_{run}"
        names.append((label, stem))
    used: set[str] = set()
    for i, (label, stem) in enumerate(names):  # stems already taken (a/run, b/run; or a folder run_2): number them
        number = 1
        while (f"{stem}_{number}" if number > 1 else stem) in used:
            number += 1
        if number > 1:
            label, stem = f"{label} #{number}", f"{stem}_{number}"
        used.add(stem)
        names[i] = (label, stem)
    return names
