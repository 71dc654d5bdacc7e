"""Table 1's rows: the row names and the paper's values. Its columns are the registered
figures (attrgan.evaluation.registry), which the printed table, report.md and the
training-seed summaries read."""
from __future__ import annotations

from attrgan.checkpoint import run_name

MODEL_LABELS = {"vae": "VAE", "gan": "GAN", "vaegan": "VAE/GAN"}
# The paper's Table 1 (Larsen et al. 2016, arXiv:1512.09300v2), each value to the digits it prints
# ("cosine similarity", "mean squared error"); the design card gives the errors to two decimals.
PAPER_TABLE = {
    "LFW test set": (0.9193, 14.1987), "VAE": (0.9030, 27.59178), "GAN": (0.8892, 27.89418),
    "VAE/GAN": (0.9114, 22.39401),
}


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
