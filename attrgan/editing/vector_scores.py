"""The paper's Figure 5 in numbers: add an attribute's visual vector to the codes of real test
faces and measure, with the regressor, how far that attribute moves and how little the others
do; for binary attributes also the share of faces the regressor judges to show it, before and
after. Works for conditional and unconditional models alike (the codes keep their condition)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import attrgan
from attrgan.data.dataset import Dataset, ImageRows, binary_midpoint, open_dataset
from attrgan.editing.edits import compute_attribute_vectors, save_attribute_vectors
from attrgan.evaluation.plots import save_grid
from attrgan.evaluation.regressor import LoadedRegressor, load_regressor
from attrgan.nets.loaded import ConditionalModel
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_directory, write_json
from attrgan.runtime.limits import require


def vector_edit_scores(model: ConditionalModel, regressor: LoadedRegressor, dataset: Dataset,
                       vectors: dict[str, torch.Tensor], split: str = "test", strength: float = 2.0,
                       limit: int = 512) -> list[dict]:
    """One row per attribute that has a vector and that the regressor scores: ``moved``, the
    mean change of its regressed value; ``others``, the mean |mean change| of every other
    attribute (both in standard deviations of the regressor's train split); for binary
    attributes ``present_before``/``present_after``, the share of faces regressed above the
    attribute's midpoint (0 for -1/1, 0.5 for 0/1)."""
    require("--strength", strength)
    require("--limit", limit, 1)
    if regressor.image_size != model.image_size:
        raise UserError(f"{regressor.path}: reads {regressor.image_size}px images; the model makes "
                        f"{model.image_size}px")
    rows = dataset.rows(split)[:limit]
    if len(rows) == 0:
        raise UserError(f"{dataset.root}: no labelled {split!r} images to edit")
    scored = [name for name in vectors if name in regressor.scaler.names]
    if not scored:
        raise UserError("none of the attribute vectors is an attribute the regressor scores")
    condition = dataset.attributes(rows, model.attribute_names)
    images = ImageRows(dataset, rows, model.image_size)
    codes = model.encode(images, condition)

    def regressed(z: torch.Tensor) -> np.ndarray:
        raw, _ = regressor.predict_raw(model.decode(z, condition), model.device)
        return raw

    before = regressed(codes)
    kinds = dataset.manifest.get("attribute_kinds", {})
    binary = [name for name in scored if kinds.get(name) == "binary"]  # read once: their labels' midpoints
    middles = dict(zip(binary, (binary_midpoint(column) for column in dataset.attributes(rows, binary).T)))
    scale = regressor.scaler.std
    results = []
    for name in scored:
        j = regressor.scaler.names.index(name)
        after = regressed(codes + strength * vectors[name].to(codes.device))
        shift = (after - before).mean(0) / scale
        row = {"attribute": name, "moved": round(float(shift[j]), 4),
               "others": round(float(np.abs(np.delete(shift, j)).mean()) if len(shift) > 1 else 0.0, 4)}
        if name in middles:
            row["present_before"] = round(float((before[:, j] > middles[name]).mean()), 4)
            row["present_after"] = round(float((after[:, j] > middles[name]).mean()), 4)
        results.append(row)
    return results


def format_vector_scores(results: list[dict], strength: float) -> str:
    """The table eval-vectors prints: one line per attribute, the strongest move first."""
    lines = [f"vector edits at strength {strength:g}, in standard deviations of the regressor's train split",
             f"{'attribute':<28}{'moved':>9}{'others |mean|':>15}{'judged present':>20}"]
    for row in sorted(results, key=lambda r: -r["moved"]):
        present = (f"{row['present_before']:.2f} -> {row['present_after']:.2f}" if "present_before" in row else "")
        lines.append(f"{row['attribute']:<28}{row['moved']:>9.3f}{row['others']:>15.3f}{present:>20}")
    return "\n".join(lines)


GRID_FACES = 6  # test faces (rows) of the report's edit grid
GRID_ATTRIBUTES = 6  # the attributes each vector moves most (columns)


def vector_report(data: str | Path, regressor_path: str | Path, runs: list[Path], out: Path, device: str = "cpu",
                  strength: float = 2.0, force: bool = False) -> dict:
    """Stage 4 of ``reproduce --condition-on none``: per run, attribute vectors from the train
    split, their scores on the test split (:func:`vector_edit_scores`) and an edit grid (test
    faces down, reconstruction then the six strongest vectors across); written atomically to
    ``out`` (report.md, metrics.json, vectors_<kind>.pt, edits_<kind>.png)."""
    dataset, regressor = open_dataset(data), load_regressor(regressor_path)
    results, lines = {}, ["# Attribute vectors: the paper's Figure 5 in numbers", "",
                          f"Dataset `{data}`, regressor `{regressor_path}`; vectors from the train split, "
                          f"scored on the test split at strength {strength:g}.", ""]
    with atomic_directory(out, force=force) as tmp:
        for run in runs:
            model = attrgan.load(run, device)
            if not model.has_encoder:
                raise UserError(f"{run}: a {model.kind!r} model has no encoder, so it has no attribute vectors")
            vectors = compute_attribute_vectors(model, dataset)
            save_attribute_vectors(vectors, tmp / f"vectors_{model.kind}.pt", str(run))
            scores = vector_edit_scores(model, regressor, dataset, vectors, "test", strength)
            results[model.kind] = scores
            strongest = [r["attribute"] for r in sorted(scores, key=lambda r: -r["moved"])[:GRID_ATTRIBUTES]]
            rows = dataset.rows("test")[:GRID_FACES]
            condition = dataset.attributes(rows, model.attribute_names)
            codes = model.encode(ImageRows(dataset, rows, model.image_size), condition)
            columns = [codes] + [codes + strength * vectors[name].to(codes.device) for name in strongest]
            faces = torch.stack([model.decode(z, condition).cpu() for z in columns], 1)  # [faces, columns, 3, S, S]
            save_grid(faces.flatten(0, 1), tmp / f"edits_{model.kind}.png", nrow=len(columns))
            lines += [f"## {model.kind} (`{run}`)", "", "```", format_vector_scores(scores, strength), "```", "",
                      f"![edits](edits_{model.kind}.png)", "",
                      f"*Test faces down; across: the reconstruction, then + {strength:g} × the vector of "
                      + ", ".join(strongest) + ".*", ""]
        write_json(tmp / "metrics.json", {"strength": strength, "vector_scores": results})
        (tmp / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return {"strength": strength, "vector_scores": results}
