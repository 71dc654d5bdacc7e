"""Editing commands on a trained model: align, reconstruct, sample, attribute-vectors,
eval-vectors, edit, interpolate."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from attrgan.runtime.errors import UserError
from cli.common import DEVICE_OPTION

if TYPE_CHECKING:
    from attrgan.evaluation.regressor import LoadedRegressor


def _inputs(checkpoint: Path, *others: Optional[Path]) -> list:
    """What a per-image command reads: the checkpoint file (not its whole run folder) and the rest."""
    from attrgan.checkpoint import checkpoint_file

    return [checkpoint_file(path) if path is not None else None for path in (checkpoint, *others)]


def _check_grid_memory(count: int, model, what: str) -> None:
    """Refuse a grid of ``count`` faces that this machine cannot hold (attrgan.editing.edits.grid_memory)."""
    from attrgan.editing.edits import grid_memory
    from attrgan.runtime.limits import check_memory, require

    require(what, count, 1)
    check_memory(grid_memory(count, model.image_size), f"{count:,} faces of {model.image_size}x{model.image_size}")


def _photos_for(model, images: List[Path], regressor: Optional[Path | LoadedRegressor]):
    """Aligned photos and their raw attribute rows (regressed by ``regressor``, a path or a
    loaded regressor, else the training mean); skipped photos are named on stderr."""
    from attrgan.editing.edits import photos_with_attributes
    from attrgan.evaluation.regressor import load_regressor

    if isinstance(regressor, Path):
        regressor = load_regressor(regressor)
    crops, raw, kept, skipped = photos_with_attributes(model, images, regressor)
    for _, message in skipped:
        typer.echo(message, err=True)
    return crops, raw, kept


def align_command(
    images: List[Path] = typer.Argument(..., help="Photos (jpg/png, any size)."),
    out: Path = typer.Option(..., help="Folder for the aligned crops (<name>.png); it may not hold the photos."),
    size: int = typer.Option(64, help="Side of the aligned crop."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace crops of the same names already in OUT."),
) -> None:
    """Align your own photos with the prep-lfw aligner; photos without a face are skipped."""
    from attrgan.editing.edits import align_photos, crop_files, save_crops
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.files import guard_output
    from attrgan.runtime.limits import require

    files = crop_files(images, out)
    guard_output(out, images, force=True)  # the folder may hold other crops, never the photos
    for file in files:
        guard_output(file, images, force, expect="file")
    require("--size", size, 8)
    crops, kept, skipped = align_photos(list(images), size, device=str(resolve_device(device)))
    for _, message in skipped:
        typer.echo(message, err=True)
    if not kept:
        raise UserError(f"none of the {len(images)} photos holds a face that could be aligned; nothing was written")
    save_crops(crops, [files[images.index(path)] for path in kept])
    typer.echo(f"aligned {len(kept)} of {len(images)} photos into {out}")


def reconstruct_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt of a vaegan or vae model."),
    images: List[Path] = typer.Argument(..., help="Photos to reconstruct (aligned first)."),
    out: Path = typer.Option(..., help="Output grid PNG: inputs on top, reconstructions below."),
    regressor: Optional[Path] = typer.Option(None, help="Condition on regressed attributes (default: training mean)."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Input vs reconstruction, Dec(Enc(x, y), y)."""
    import torch

    import attrgan
    from attrgan.data.dataset import to_model_range
    from attrgan.evaluation.plots import check_image_output, save_grid
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.files import guard_output

    guard_output(out, [*images, *_inputs(checkpoint, regressor)], force, expect="file")
    check_image_output(out)
    model = attrgan.load(checkpoint, resolve_device(device))
    crops, raw, kept = _photos_for(model, images, regressor)
    save_grid(torch.cat([to_model_range(crops), model.reconstruct(crops, raw).cpu()]), out, nrow=len(kept))
    typer.echo(f"wrote {out}")


def sample_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt."),
    out: Path = typer.Option(..., help="Output grid PNG."),
    set: List[str] = typer.Option([], "--set", help="Attribute=value in std devs from the mean, e.g. Smiling=2."),
    from_image: Optional[Path] = typer.Option(None,
                                              help="Start from this photo's regressed attributes (needs --regressor)."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor used with --from-image."),
    n: int = typer.Option(16, "-n", help="Number of samples."),
    seed: int = typer.Option(0, help="Seed of z."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Conditional samples with chosen attribute values (unset ones: training mean or an image's)."""
    import numpy as np

    import attrgan
    from attrgan.editing.edits import attribute_row, parse_attribute_settings
    from attrgan.evaluation.plots import check_image_output, save_grid
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.files import guard_output

    guard_output(out, [from_image, *_inputs(checkpoint, regressor)], force, expect="file")
    check_image_output(out)
    settings = parse_attribute_settings(set)
    model = attrgan.load(checkpoint, resolve_device(device))
    _check_grid_memory(n, model, "-n")
    base = None
    if from_image is not None:
        if regressor is None:
            raise UserError("--from-image needs --regressor to read the photo's attributes")
        _, raw, _ = _photos_for(model, [from_image], regressor)
        base = raw[0]
    row = attribute_row(model, settings, base)
    save_grid(model.sample(np.repeat(row[None], n, 0), seed=seed).cpu(), out, nrow=int(n**0.5) or 1)
    typer.echo(f"wrote {out}")


def attribute_vectors_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt of a vaegan or vae model."),
    data: Path = typer.Option(..., help="Dataset directory (labelled images of --split)."),
    out: Path = typer.Option(..., help="Output .pt file: attribute name -> latent vector."),
    present: float = typer.Option(1.0, help="Raw value above which an attribute counts as clearly present."),
    absent: float = typer.Option(-1.0, help="Raw value below which it counts as clearly absent."),
    split: str = typer.Option("train", help="Split whose images are encoded."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Visual attribute vectors: mean code where present minus where absent (the paper's recipe)."""
    import attrgan
    from attrgan.data.dataset import open_dataset
    from attrgan.editing.edits import compute_attribute_vectors, save_attribute_vectors
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.files import guard_output
    from attrgan.runtime.limits import require

    guard_output(out, [data, *_inputs(checkpoint)], force, expect="file")
    require("--present", present)
    require("--absent", absent)
    model = attrgan.load(checkpoint, resolve_device(device))
    vectors = compute_attribute_vectors(model, open_dataset(data), present, absent, split)
    save_attribute_vectors(vectors, out, str(checkpoint))
    typer.echo(f"wrote {len(vectors)} attribute vectors to {out}")


def eval_vectors_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt of a vaegan or vae model "
                                    "(conditional or --condition-on none)."),
    vectors: Path = typer.Option(..., help="attribute-vectors output."),
    regressor: Path = typer.Option(..., help="Regressor (train-regressor) that judges the edited faces."),
    data: Path = typer.Option(..., help="Dataset whose --split faces are edited."),
    out: Path = typer.Option(..., help="JSON file of the scores, one entry per attribute."),
    split: str = typer.Option("test", help="Split whose labelled faces are edited."),
    strength: float = typer.Option(2.0, help="Multiple of each vector added to the codes."),
    limit: int = typer.Option(512, help="At most this many faces."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """The paper's Figure 5 in numbers: how far each attribute vector moves its attribute, and the others."""
    import attrgan
    from attrgan.data.dataset import open_dataset
    from attrgan.editing.edits import load_attribute_vectors
    from attrgan.editing.vector_scores import format_vector_scores, vector_edit_scores
    from attrgan.evaluation.regressor import load_regressor
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.files import guard_output, write_json

    guard_output(out, [data, *_inputs(checkpoint, vectors, regressor)], force, expect="file")
    model = attrgan.load(checkpoint, resolve_device(device))
    loaded = load_attribute_vectors(vectors, model)
    results = vector_edit_scores(model, load_regressor(regressor), open_dataset(data), loaded, split, strength, limit)
    write_json(out, {"checkpoint": str(checkpoint), "vectors": str(vectors), "split": split, "strength": strength,
                     "scores": results})
    typer.echo(format_vector_scores(results, strength))
    typer.echo(f"wrote {out}")


def edit_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt of a vaegan or vae model."),
    images: List[Path] = typer.Argument(..., help="Photos to edit (aligned first)."),
    attribute: str = typer.Option(..., help="Attribute name, e.g. Eyeglasses."),
    strength: str = typer.Option("-2,-1,0,1,2",
                                 help="Comma-separated strengths (std devs of y, or multiples of the vector)."),
    mode: str = typer.Option("latent", help="latent (add the attribute vector to z) or condition (move y)."),
    vectors: Optional[Path] = typer.Option(None, help="attribute-vectors output (needed for --mode latent)."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor: conditions on the photos' attributes and scores "
                                                        "the edit."),
    report: bool = typer.Option(False, help="Print the regressed slope per attribute and save it as OUT with .json "
                                "(needs --regressor)."),
    out: Path = typer.Option(..., help="Output grid PNG, one row per image."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT (and its .json report) if they exist."),
) -> None:
    """Edit one attribute of photos by latent arithmetic or by changing the condition."""
    import attrgan
    from attrgan.editing.edits import check_edit, edit_images, edit_slopes, load_attribute_vectors
    from attrgan.evaluation.plots import check_image_output, save_grid
    from attrgan.evaluation.regressor import load_regressor
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.files import guard_output, write_json
    from attrgan.runtime.limits import parse_list

    report_file = out.with_suffix(".json")
    guard_output(out, [*images, *_inputs(checkpoint, vectors, regressor)], force, expect="file",
                 side_files=[report_file] if report else [])
    check_image_output(out)
    if report and regressor is None:
        raise UserError("--report needs --regressor to score the edits")
    strengths = parse_list("--strength", strength)
    model = attrgan.load(checkpoint, resolve_device(device))
    _check_grid_memory(len(images) * len(strengths), model, "--strength")
    loaded = load_attribute_vectors(vectors, model) if vectors is not None else None
    check_edit(model, attribute, mode, loaded)
    scorer = load_regressor(regressor) if regressor is not None else None
    crops, raw, kept = _photos_for(model, images, scorer)
    edited = edit_images(model, crops, raw, attribute, strengths, mode, loaded)
    save_grid(edited.cpu(), out, nrow=len(strengths))
    typer.echo(f"wrote {out}")
    if report:
        result = edit_slopes(scorer, model, edited, len(kept), strengths, attribute, model.device)
        write_json(report_file, result)
        typer.echo(f"{'attribute':<28}{'regressed slope per unit strength':>34}")
        for name, slope in sorted(result["per_attribute_slope"].items(), key=lambda kv: -abs(kv[1])):
            typer.echo(f"{name + (' (edited)' if name == attribute else ''):<28}{slope:>34.3f}")
        typer.echo(f"{attribute}: slope {result['slope']:.3f} per unit strength (others: mean |slope| "
                   f"{result['other_mean_abs_slope']:.3f}); monotonic on average: {result['monotonic_on_average']}")


def interpolate_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt of a vaegan or vae model."),
    image_a: Path = typer.Argument(..., help="First photo."),
    image_b: Path = typer.Argument(..., help="Second photo."),
    steps: int = typer.Option(8, help="Faces along the strip, ends included (at least 2)."),
    regressor: Optional[Path] = typer.Option(None, help="Condition on regressed attributes (default: training mean)."),
    out: Path = typer.Option(..., help="Output strip PNG."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Interpolate between two photos in latent (and attribute) space."""
    import attrgan
    from attrgan.editing.edits import interpolate
    from attrgan.evaluation.plots import check_image_output, save_grid
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.files import guard_output
    from attrgan.runtime.limits import require

    guard_output(out, [image_a, image_b, *_inputs(checkpoint, regressor)], force, expect="file")
    check_image_output(out)
    require("--steps", steps, 2)
    model = attrgan.load(checkpoint, resolve_device(device))
    _check_grid_memory(steps, model, "--steps")
    crops, raw, kept = _photos_for(model, [image_a, image_b], regressor)
    if len(kept) < 2:
        raise UserError("both photos must hold a face")
    save_grid(interpolate(model, crops, raw, steps).cpu(), out, nrow=steps)
    typer.echo(f"wrote {out}")


def models_command() -> None:
    """The trained models that ship with attrgan: their names (for --checkpoint, --regressor and
    --init) and a line of each one's card (docs/models.md)."""
    from attrgan.bundle import catalogue, size_mb

    bundled = catalogue()
    if not bundled:
        typer.echo("no trained model is bundled with this install of attrgan; train one on LFW (README.md, "
                   "'Real LFW in five commands') and pass its run folder as --checkpoint")
    for name, entry in bundled.items():
        typer.echo(f"{name:<10} {entry['card']} ({size_mb(entry):.1f} MiB)")


def export_model_command(
    name: str = typer.Argument(..., help="The short name it will answer to (--checkpoint NAME, --regressor NAME)."),
    checkpoint: Path = typer.Option(..., help="The trained conditional model: run folder or checkpoint.pt."),
    regressor: Path = typer.Option(..., help="Its regressor: a train-regressor run folder or regressor.pt."),
    card: str = typer.Option(..., help="One line of its card, as 'attrgan models' lists it."),
    into: Optional[Path] = typer.Option(None, help="The catalogue's folder (default: the package's attrgan/bundled)."),
) -> None:
    """Bundle a trained model with the package: compact half-precision copies of its encoder,
    decoder and regressor, checked by sha256 at load (docs/models.md)."""
    from attrgan.bundle import size_mb
    from attrgan.bundle_export import export

    entry = export(name, card, checkpoint, regressor, into)
    typer.echo(f"bundled {name} ({size_mb(entry):.1f} MiB): attrgan models lists it")


COMMANDS = {"models": models_command, "export-model": export_model_command, "align": align_command,
            "reconstruct": reconstruct_command,
            "sample": sample_command, "attribute-vectors": attribute_vectors_command,
            "eval-vectors": eval_vectors_command, "edit": edit_command, "interpolate": interpolate_command}
