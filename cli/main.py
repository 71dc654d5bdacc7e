"""`attrgan` — the command-line entry point. Each command parses its options, calls one
library function and prints a summary; all logic lives in `attrgan/` and `data_prep/`."""
from __future__ import annotations

import functools
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional

import typer

if TYPE_CHECKING:
    from attrgan.regressor import LoadedRegressor

app = typer.Typer(
    help="Conditional VAE/GAN on face attributes (Larsen et al., ICML 2016): "
    "LFW alignment, training, Table-1 evaluation and attribute editing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEFAULT_EVAL_EVERY = 250  # quality-check interval when --regressor is given and the config sets none
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError, RuntimeError, OSError)

# options several commands share, declared once
DEVICE_OPTION = typer.Option("auto", help="auto (CUDA when present), cpu or cuda[:N].")
MTCNN_DEVICE_OPTION = typer.Option("auto", help="auto (CUDA when present), cpu or cuda[:N] for MTCNN.")
PROGRESS_OPTION = typer.Option(True, help="Show a progress bar.")
LIMIT_OPTION = typer.Option(None, help="Stop after this many images (quick runs).")
DATASET_OUT_OPTION = typer.Option(..., help="Dataset directory to write (images.npy, index.csv, manifest.json).")
DATASET_FORCE_OPTION = typer.Option(False, help="Replace OUT if it exists (only once the new dataset is complete).")


def user_errors(command: Callable) -> Callable:
    """Turn expected failures (bad input, missing files) into one line on stderr and exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            typer.echo(f"error: {str(message) or type(exc).__name__}", err=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt as exc:  # training raises a subclass that names its checkpoint and exit code
            typer.echo(str(exc) or "interrupted: nothing was written", err=True)
            raise typer.Exit(code=getattr(exc, "exit_code", 130)) from None

    return wrapper


@app.command("synth-lfw")
@user_errors
def synth_lfw(
    out: Path = typer.Argument(..., help="Folder to create: OUT/lfw/<Name>/<Name>_NNNN.jpg and OUT/lfw_attributes.txt."),
    people: int = typer.Option(120, help="Number of synthetic people."),
    max_images: int = typer.Option(6, help="Most photos per person (LFW-like: most people have one or two)."),
    seed: int = typer.Option(0, help="Random seed; the same seed writes the same files."),
    unlabelled_fraction: float = typer.Option(0.03, help="Fraction of images left without an attribute row."),
    force: bool = typer.Option(False, help="Replace OUT if it exists (only once the new one is complete)."),
) -> None:
    """Write a synthetic LFW (face-like images with known attributes) in LFW's exact layout."""
    from data_prep.synth import RENDERED, write_synthetic_lfw

    summary = write_synthetic_lfw(out, people, max_images, seed, unlabelled_fraction, force=force)
    typer.echo(
        f"wrote {summary.images} images of {summary.people} people ({summary.labelled} labelled) to {out}/lfw\n"
        f"attributes: {out}/lfw_attributes.txt (rendered: {', '.join(RENDERED)})"
    )


@app.command("prep-lfw")
@user_errors
def prep_lfw(
    images: Path = typer.Option(..., help="lfw.tgz (read streaming) or a folder of <Name>/<Name>_NNNN.jpg."),
    out: Path = DATASET_OUT_OPTION,
    attributes: Optional[Path] = typer.Option(None, help="lfw_attributes.txt; without it every image is unlabelled."),
    size: int = typer.Option(64, help="Side of the aligned square crop, in pixels."),
    device: str = MTCNN_DEVICE_OPTION,
    batch_size: int = typer.Option(64, help="Images per detection batch."),
    seed: int = typer.Option(0, help="Seed of the identity-disjoint split."),
    val_fraction: float = typer.Option(0.1, help="Share of images in the validation split."),
    test_fraction: float = typer.Option(0.1, help="Share of images in the test split."),
    test_people: Optional[Path] = typer.Option(None, help="File with one person per line, forced into the test split."),
    limit: Optional[int] = LIMIT_OPTION,
    labelled_only: bool = typer.Option(False, help="Skip images that have no attribute row (same as --unlabelled skip)."),
    unlabelled: str = typer.Option("use", help="use: keep images without an attribute row (they train the models "
                                   "with labelled = 0); skip: leave them out."),
    min_face: float = typer.Option(0.24, help="Smallest face searched, as a fraction of the shorter image side."),
    force: bool = DATASET_FORCE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Align LFW faces (MTCNN 5 landmarks -> similarity warp), join attributes, split by identity."""
    from attrgan.device import resolve_device
    from data_prep.prep import PrepConfig, prepare_dataset, read_test_people

    labelled_only = labelled_only or _unlabelled_choice(unlabelled) == "skip"

    config = PrepConfig(
        images=images,
        out=out,
        attributes=attributes,
        test_people_file=test_people,
        size=size,
        device=str(resolve_device(device)),
        batch_size=batch_size,
        seed=seed,
        fractions=(1 - val_fraction - test_fraction, val_fraction, test_fraction),
        test_people=read_test_people(test_people) if test_people else [],
        limit=limit,
        labelled_only=labelled_only,
        force=force,
        min_face_fraction=min_face,
    )
    manifest = prepare_dataset(config, progress=progress)
    typer.echo(format_prep_summary(out, manifest))


@app.command("prep-celeba")
@user_errors
def prep_celeba(
    root: Path = typer.Option(..., help="CelebA as released: img_align_celeba/ (or img_align_celeba.zip, read without "
                              "extracting), list_attr_celeba.txt, list_eval_partition.txt, identity_CelebA.txt."),
    out: Path = DATASET_OUT_OPTION,
    size: int = typer.Option(64, help="Side of the square crop, in pixels."),
    align: str = typer.Option("celeba", help="celeba: the authors' CelebA box; mtcnn: the 5-point template of "
                              "prep-lfw and align (so a model edits photos aligned by `attrgan align`); none: the "
                              "centred square."),
    device: str = MTCNN_DEVICE_OPTION,
    batch_size: int = typer.Option(64, help="Images per batch."),
    limit: Optional[int] = LIMIT_OPTION,
    force: bool = DATASET_FORCE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Crop CelebA (the official split kept), join its 40 binary attributes, write a dataset."""
    from data_prep.celeba import celeba_source

    _prepare(celeba_source(root), out, size, align, device, batch_size, limit, force, progress)


@app.command("prep-folder")
@user_errors
def prep_folder(
    images: Path = typer.Option(..., help="Folder of images (any depth)."),
    attributes: Path = typer.Option(..., help="CSV (or .tsv) with a file-name column (paths relative to --images), "
                                    "numeric attribute columns, optional split and identity columns."),
    out: Path = DATASET_OUT_OPTION,
    file_column: Optional[str] = typer.Option(None, help="The file-name column (default: file, filename, image or path)."),
    size: int = typer.Option(64, help="Side of the square crop, in pixels."),
    align: str = typer.Option("mtcnn", help="mtcnn: the 5-point template of prep-lfw; none: already aligned crops "
                              "(the centred square, resized)."),
    seed: int = typer.Option(0, help="Seed of the split when the file has no split column."),
    val_fraction: float = typer.Option(0.1, help="Share of images in the validation split (seeded split)."),
    test_fraction: float = typer.Option(0.1, help="Share of images in the test split (seeded split)."),
    device: str = MTCNN_DEVICE_OPTION,
    batch_size: int = typer.Option(64, help="Images per batch."),
    limit: Optional[int] = LIMIT_OPTION,
    force: bool = DATASET_FORCE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Any labelled image folder: align (or take as is), join the CSV's attributes, split, write a dataset."""
    from data_prep.folder import folder_source

    _prepare(folder_source(images, attributes, file_column), out, size, align, device, batch_size, limit, force,
             progress, seed=seed, fractions=(1 - val_fraction - test_fraction, val_fraction, test_fraction))


def _prepare(source, out: Path, size: int, align: str, device: str, batch_size: int, limit: Optional[int],
             force: bool, progress: bool, **split) -> None:
    """The shared writer for a reader's source, with its summary."""
    from attrgan.device import resolve_device
    from data_prep.prep import PrepConfig, prepare_dataset

    if align not in ("celeba", "mtcnn", "none"):
        raise ValueError(f"--align must be celeba, mtcnn or none, got {align!r}")
    manifest = prepare_dataset(PrepConfig(
        images=None, out=out, source=source, crop=align, size=size, batch_size=batch_size, limit=limit, force=force,
        device=str(resolve_device(device)) if align == "mtcnn" else "cpu", **split), progress=progress)
    typer.echo(format_prep_summary(out, manifest))


@app.command("synth-celeba")
@user_errors
def synth_celeba(
    out: Path = typer.Argument(..., help="Folder to create in CelebA's official layout."),
    images: int = typer.Option(200, help="Number of images."),
    seed: int = typer.Option(0, help="Random seed; the same seed writes the same files."),
    zip_images: bool = typer.Option(False, "--zip", help="Ship the images as img_align_celeba.zip instead of a folder."),
    force: bool = typer.Option(False, help="Replace OUT if it exists (only once the new one is complete)."),
) -> None:
    """Write a synthetic CelebA (synth-lfw's faces under CelebA's attribute names) in the official layout."""
    from data_prep.synth import CELEBA_RENDERED, write_synthetic_celeba

    summary = write_synthetic_celeba(out, images, seed, zip_images, force=force)
    typer.echo(f"wrote {summary.images} images of {summary.people} people to {out} "
               f"(rendered: {', '.join(CELEBA_RENDERED)}; the other 30 attributes are random)")


def _condition_names(value: Optional[str]) -> Optional[list]:
    """--condition-on / --attributes: None (all attributes), [] for "none" (unconditional), or the names."""
    if value is None or not value.strip():
        return None
    if value.strip().lower() == "none":
        return []
    return [name.strip() for name in value.split(",")]


def _unlabelled_choice(value: str) -> str:
    if value not in ("use", "skip"):
        raise ValueError(f"--unlabelled must be use or skip, got {value!r}")
    return value


def format_prep_summary(out: Path, manifest: dict) -> str:
    """The one-screen summary printed at the end of prep-lfw, prep-celeba and prep-folder."""
    c = manifest["counts"]
    lines = [
        f"dataset written to {out}",
        f"  images      {c['images']} of {c['read']} read ({c['people']} people), {manifest['size']}x{manifest['size']}",
        f"  aligned     {c['aligned']} ({c['aligned'] / max(1, c['images']):.1%}); fallback centre crop {c['fallback']}"
        if manifest["alignment"].get("method", "mtcnn") == "mtcnn" else
        f"  crop        {manifest['alignment']['method']} (the same box for every image, no detector)",
        f"  unreadable  {c['unreadable']}" + (" (listed in manifest.json)" if c["unreadable"] else ""),
        f"  labelled    {c['labelled']}; attribute rows without an image: {c['attribute_rows_without_image']}",
    ]
    for split, s in c["per_split"].items():
        lines.append(f"  {split:<5}       {s['images']} images, {s['labelled']} labelled, {s['people']} people")
    lines.append(f"  time        {manifest['wall_time_s']:.1f} s ({manifest['images_per_s']} img/s)")
    if manifest["split"]["from"] == "seed" and c["people"] == c["images"] > 1:
        lines.append("  note        every image counts as its own person, so photos of one person can land in "
                     "train and test;\n              name them in an identity column (prep-folder) or "
                     "identity_CelebA.txt (prep-celeba)")
    return "\n".join(lines)


@app.command("train-conditional")
@user_errors
def train_conditional(
    data: Path = typer.Option(..., help="Dataset directory written by prep-lfw."),
    out: Path = typer.Option(..., help="Run directory (checkpoint.pt, config.yaml, metrics.csv, samples/)."),
    config: Optional[Path] = typer.Option(None, help="YAML config (configs/lfw64.yaml, lfw32.yaml, demo.yaml)."),
    model: Optional[str] = typer.Option(None, help="vaegan (default), vae or gan; overrides model.kind."),
    epochs: Optional[int] = typer.Option(None, help="Epochs over the labelled train split; overrides train.epochs."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many steps; overrides train.max_steps."),
    batch_size: Optional[int] = typer.Option(None, help="Global batch size; overrides train.batch_size."),
    device: Optional[str] = typer.Option(None, help="auto (CUDA when present), cpu or cuda[:N]."),
    precision: Optional[str] = typer.Option(None, help="auto (bf16 on CUDA and native-bf16 CPUs, else fp32), fp32, "
                                            "bf16 or fp16 (CUDA, with a grad scaler)."),
    unlabelled: Optional[str] = typer.Option(None, help="use (default): train on unlabelled train images too "
                                             "(y = 0, labelled = 0); skip: labelled images only. Overrides data.unlabelled."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor (train-regressor) for quality tracking every "
                                             "train.eval_every updates: Fréchet distance, cosine, grid."),
    resume: bool = typer.Option(False, help="Continue the run in OUT from its checkpoint, bit-for-bit."),
    allow_changes: bool = typer.Option(False, help="With --resume: continue under other training settings (--set, "
                                       "--config) than the checkpoint's; run.json records each change and its step."),
    force: bool = typer.Option(False, help="Replace a run already in OUT (it is deleted when the new run starts)."),
    seed: Optional[int] = typer.Option(None, help="Seed of initialisation, batch order and noise."),
    attributes: Optional[str] = typer.Option(None, help="Comma-separated subset of attribute names to condition on."),
    condition_on: Optional[str] = typer.Option(None, help="none: an unconditional model (the paper's CelebA "
                                               "experiment; edit it with attribute vectors); or names, as --attributes."),
    set: List[str] = typer.Option([], "--set", help="Override any config key, e.g. --set loss.gamma=0.1 (repeatable)."),
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Train a conditional VAE/GAN (or the VAE / GAN baselines) on a prep-lfw dataset.

    Multi-process: torchrun --nproc_per_node N -m cli.main train-conditional ... (gloo on CPU, NCCL on GPU).
    """
    from attrgan.config import load_config
    from attrgan.train import train

    flags = {
        "data.path": str(data), "model.kind": model, "train.epochs": epochs, "train.max_steps": max_steps,
        "train.batch_size": batch_size, "train.device": device, "train.precision": precision, "train.seed": seed,
        "train.progress": progress, "data.unlabelled": unlabelled and _unlabelled_choice(unlabelled),
    }
    overrides = [f"{key}={value}" for key, value in flags.items() if value is not None]
    if attributes and condition_on:
        raise ValueError("give --attributes or --condition-on, not both")
    wanted = _condition_names(condition_on or attributes)
    if wanted is not None:
        overrides.append("data.attributes=[" + ",".join(f'"{a}"' for a in wanted) + "]")
    if resume and config is None and (out / "config.yaml").is_file():
        config = out / "config.yaml"
    cfg = load_config(config, overrides + list(set))
    if regressor is not None and not cfg.train.eval_every:
        cfg.train.eval_every = DEFAULT_EVAL_EVERY
    checkpoint = train(cfg, out, resume=resume, argv=sys.argv, regressor=regressor, force=force,
                       allow_changes=allow_changes, config_path=config)
    typer.echo(f"checkpoint: {checkpoint}\nsamples: {out / 'samples'}\nmetrics: {out / 'metrics.csv'}")


@app.command("plot-quality")
@user_errors
def plot_quality(
    runs: List[Path] = typer.Argument(..., help="Run directories trained with --regressor (their metrics.csv)."),
    out: Path = typer.Option(..., help="Output PNG: Fréchet distance and cosine against updates and minutes."),
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Overlay the tracked quality curves of several training runs."""
    from attrgan.plots import plot_quality_comparison
    from data_prep.io import guard_output

    guard_output(out, [r / "metrics.csv" for r in runs], force, expect="file")
    missing = [str(r) for r in runs if not (r / "metrics.csv").is_file()]
    if missing:
        raise FileNotFoundError(f"no metrics.csv in {', '.join(missing)}")
    names = [r.name for r in runs]
    labels = names if len(set(names)) == len(names) else [str(r) for r in runs]
    if not plot_quality_comparison({label: r / "metrics.csv" for label, r in zip(labels, runs)}, out):
        raise ValueError("none of the runs tracked quality (train with --regressor)")
    typer.echo(f"wrote {out}")


@app.command("train-regressor")
@user_errors
def train_regressor_command(
    data: Path = typer.Option(..., help="Dataset directory written by prep-lfw."),
    out: Path = typer.Option(..., help="Run directory for regressor.pt and metrics.json."),
    image_size: Optional[int] = typer.Option(None, help="Input size (default: the dataset's); must match the generators scored."),
    epochs: int = typer.Option(30, help="Most epochs; training stops earlier when val error stops improving."),
    patience: int = typer.Option(5, help="Epochs without val improvement before early stopping."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    channels: str = typer.Option("64,128,256", help="Conv widths (stride 2 each); default: the paper's encoder."),
    fc: int = typer.Option(2048, help="Width of the fully connected layer."),
    attributes: Optional[str] = typer.Option(None, help="Comma-separated subset of attribute names."),
    device: str = DEVICE_OPTION,
    precision: str = typer.Option("auto", help="auto (bf16 where native), fp32 or bf16 (autocast)."),
    seed: int = typer.Option(0, help="Seed of initialisation, batch order and augmentation (member k: seed + k)."),
    ensemble: int = typer.Option(1, help="Members trained with successive seeds, each early-stopped; outputs averaged."),
    flip_average: bool = typer.Option(True, help="Average each image's prediction with its mirror image's."),
    progress: bool = PROGRESS_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists (only once the new regressor is complete)."),
) -> None:
    """Train the attribute regression network on real labelled train images (early stopping on val)."""
    from attrgan.data import open_dataset
    from attrgan.regressor import RegressorConfig, train_regressor
    from data_prep.limits import parse_list

    size = image_size or open_dataset(data).image_size
    config = RegressorConfig(
        data=str(data), image_size=size, channels=parse_list("--channels", channels, int), fc=fc,
        attributes=[a.strip() for a in attributes.split(",")] if attributes else None, epochs=epochs,
        batch_size=batch_size, lr=lr, patience=patience, seed=seed, ensemble=ensemble, flip_average=flip_average,
        device=device, precision=precision, progress=progress,
    )
    metrics = train_regressor(config, out, force=force)
    typer.echo(f"regressor: {out / 'regressor.pt'} (best epoch {metrics['best_epoch']}, {metrics['train_seconds']} s)")
    if "val" in metrics:
        typer.echo(f"val split ({metrics['val']['count']} images): cosine similarity "
                   f"{metrics['val']['cosine_similarity']:.4f}, squared error {metrics['val']['squared_error']:.2f}"
                   + (" (members alone, unflipped: " + ", ".join(f"{m['val']['cosine_similarity']:.4f}"
                                                                  for m in metrics["members"]) + ")"
                      if len(metrics["members"]) > 1 else ""))
    if "test" in metrics:
        t = metrics["test"]
        r2 = sorted(t["r2"].items(), key=lambda kv: -kv[1])
        typer.echo(f"test split ({t['count']} images): cosine similarity {t['cosine_similarity']:.4f}, "
                   f"squared error {t['squared_error']:.2f}")
        typer.echo("best R²: " + ", ".join(f"{k} {v:.2f}" for k, v in r2[:5]))
        if "accuracy" in t:  # binary attributes: a logistic head
            best = sorted(t["accuracy"].items(), key=lambda kv: -kv[1])
            typer.echo(f"binary attributes: mean accuracy {t['mean_accuracy']:.3f}; best: "
                       + ", ".join(f"{k} {v:.2f}" for k, v in best[:5]))


@app.command("eval-attributes")
@user_errors
def eval_attributes(
    data: Path = typer.Option(..., help="Dataset directory (queries and real images of --split)."),
    regressor: Path = typer.Option(..., help="Regressor run directory or regressor.pt (train-regressor)."),
    checkpoint: List[Path] = typer.Option(..., help="Generator run directory or checkpoint.pt; repeat for several models."),
    out: Path = typer.Option(..., help="Report directory (report.md, metrics.json, plots, grids)."),
    split: str = typer.Option("test", help="Split whose labelled images give the query attribute vectors."),
    queries: Optional[Path] = typer.Option(None, help="Score these vectors instead (lfw_attributes.txt format)."),
    seeds: int = typer.Option(5, help="Sampling seeds per query; the table reports mean ± std over them."),
    control: bool = typer.Option(True, help="Also score each model on shuffled queries (a no-conditioning control)."),
    inception_weights: Optional[Path] = typer.Option(None, help="Local Inception-v3 state dict for FID (never downloaded)."),
    device: str = DEVICE_OPTION,
    precision: str = typer.Option("auto", help="auto (bf16 where native), fp32 or bf16 for the regressor."),
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Score generated faces with the regression network: the paper's Table 1."""
    from attrgan.evaluate import EvalConfig, evaluate_attributes

    metrics = evaluate_attributes(EvalConfig(
        data=data, regressor=regressor, checkpoints=list(checkpoint), out=out, split=split, queries=queries,
        seeds=seeds, device=device, precision=precision, control=control, inception_weights=inception_weights,
        force=force,
    ))
    typer.echo(format_table(metrics))
    typer.echo(f"report: {out / 'report.md'}")


@app.command("reproduce")
@user_errors
def reproduce_command(
    images: Path = typer.Option(..., help="lfw: lfw.tgz or a folder of <Name>/<Name>_NNNN.jpg; celeba: the release's "
                                "root; folder: the image folder."),
    attributes: Optional[Path] = typer.Option(None, help="lfw: lfw_attributes.txt; folder: the CSV of labels; "
                                              "celeba: none (read from the root)."),
    dataset: str = typer.Option("lfw", help="lfw, celeba or folder: the reader of --images (prep-lfw, prep-celeba "
                                "with its default crop, prep-folder with MTCNN)."),
    config: Path = typer.Option(..., help="Training config for every model kind (e.g. configs/lfw32.yaml)."),
    out: Path = typer.Option(..., help="Folder for dataset/, runs/<kind>/, regressor/ and report/."),
    models: str = typer.Option("vaegan,vae,gan", help="Comma-separated model kinds to train and compare."),
    condition_on: Optional[str] = typer.Option(None, help="Comma-separated attribute subset (default: all), or "
                                               "none for unconditional models (scored with attribute vectors)."),
    size: int = typer.Option(64, help="prep-lfw crop size; models of a smaller image_size downsample it."),
    max_minutes: Optional[float] = typer.Option(None, help="Training time budget per model, in minutes."),
    regressor_channels: str = typer.Option("64,128,256", help="Regressor conv widths (default: the paper's encoder)."),
    regressor_fc: int = typer.Option(2048, help="Regressor FC width."),
    regressor_epochs: int = typer.Option(30, help="Most regressor epochs (early stopping on val)."),
    regressor_ensemble: int = typer.Option(1, help="Regressor members averaged (train-regressor --ensemble)."),
    seeds: int = typer.Option(5, help="Sampling seeds per query in the evaluation."),
    train_seeds: int = typer.Option(1, help="Training runs per model kind, with train.seed, train.seed + 1, ... "
                                    "(runs/<kind>, runs/<kind>-seed<N>); the report adds mean ± std across them and "
                                    "the paired difference VAE/GAN − other kind per training seed."),
    labelled_only: bool = typer.Option(False, help="Prep only images that have an attribute row."),
    unlabelled: str = typer.Option("use", help="use: prep and train on unlabelled images too (y = 0, labelled = 0); "
                                   "skip: labelled images only."),
    eval_every: int = typer.Option(250, help="Updates between tracked quality checks (0 = off)."),
    force: bool = typer.Option(False, help="OUT was made from other inputs or options: delete its results and redo them."),
    test_people: Optional[Path] = typer.Option(None, help="File of people forced into the test split."),
    device: str = DEVICE_OPTION,
    set: List[str] = typer.Option([], "--set", help="Config override for every model, e.g. --set train.epochs=5."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """The whole experiment in one command: prep, train each model kind, regressor, one Table-1 report."""
    from attrgan.pipeline import ReproduceConfig, reproduce
    from data_prep.limits import parse_list
    from data_prep.prep import read_test_people

    metrics = reproduce(ReproduceConfig(
        images=images, attributes_file=attributes, dataset=dataset, config=config, out=out,
        models=[m.strip() for m in models.split(",")],
        attributes=_condition_names(condition_on), size=size,
        max_minutes=max_minutes, overrides=list(set), regressor_channels=parse_list("--regressor-channels", regressor_channels, int),
        regressor_fc=regressor_fc, regressor_epochs=regressor_epochs, regressor_ensemble=regressor_ensemble, seeds=seeds, train_seeds=train_seeds,
        device=device, test_people=read_test_people(test_people) if test_people else [], test_people_file=test_people,
        labelled_only=labelled_only or _unlabelled_choice(unlabelled) == "skip", unlabelled=unlabelled,
        eval_every=eval_every, force=force, progress=progress,
    ), log=typer.echo, command=shlex.join(["attrgan", *sys.argv[1:]]))
    if "vector_scores" in metrics:  # --condition-on none
        from attrgan.vector_scores import format_vector_scores

        for kind, scores in metrics["vector_scores"].items():
            typer.echo(f"{kind}: " + format_vector_scores(scores, metrics["strength"]))
    else:
        typer.echo(format_table(metrics))
    typer.echo(f"report: {out / 'report' / 'report.md'}\nsample grids: {out / 'runs'}/<kind>/samples/final_samples.png")
    editable = [m.strip() for m in models.split(",") if m.strip() in ("vaegan", "vae")]
    if editable:
        program = sys.argv[0] if Path(sys.argv[0]).name == "attrgan" else "attrgan"  # as the user typed it
        serve = [program, "serve", "--checkpoint", str(out / "runs" / editable[0]), "--regressor", str(out / "regressor")]
        if "vector_scores" in metrics:
            serve += ["--vectors", str(out / "report" / f"vectors_{editable[0]}.pt")]
        typer.echo(f"edit in the browser: {shlex.join(serve)}  (then open http://127.0.0.1:8000/)")


def _inputs(checkpoint: Path, *others: Optional[Path]) -> list:
    """What a per-image command reads: the checkpoint file (not its whole run folder) and the rest."""
    from attrgan.checkpoint import checkpoint_file

    return [checkpoint_file(path) if path is not None else None for path in (checkpoint, *others)]


def _check_grid_memory(count: int, model, what: str) -> None:
    """Refuse a grid of ``count`` faces that this machine cannot hold (the images, then the grid)."""
    from data_prep.limits import check_memory, require

    require(what, count, 1)
    check_memory(count * 3 * model.image_size**2 * 4 * 3, f"{count:,} faces of {model.image_size}x{model.image_size}")


def _photos_for(model, images: List[Path], regressor: Optional[Path | LoadedRegressor]):
    """Aligned photos and their raw attribute rows (regressed by ``regressor``, a path or a
    loaded regressor, else the training mean); skipped photos are named on stderr."""
    from attrgan.editing import photos_with_attributes
    from attrgan.regressor import load_regressor

    if isinstance(regressor, Path):
        regressor = load_regressor(regressor)
    crops, raw, kept, skipped = photos_with_attributes(model, images, regressor)
    for _, message in skipped:
        typer.echo(message, err=True)
    return crops, raw, kept


@app.command("align")
@user_errors
def align_command(
    images: List[Path] = typer.Argument(..., help="Photos (jpg/png, any size)."),
    out: Path = typer.Option(..., help="Folder for the aligned crops (<name>.png); it may not hold the photos."),
    size: int = typer.Option(64, help="Side of the aligned crop."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace crops of the same names already in OUT."),
) -> None:
    """Align your own photos with the prep-lfw aligner; photos without a face are skipped."""
    from attrgan.device import resolve_device
    from attrgan.editing import align_photos, crop_files, save_crops
    from data_prep.io import guard_output
    from data_prep.limits import require

    files = crop_files(images, out)
    guard_output(out, images, force=True)  # the folder may hold other crops, never the photos
    for file in files:
        guard_output(file, images, force, expect="file")
    require("--size", size, 8)
    crops, kept, skipped = align_photos(list(images), size, device=str(resolve_device(device)))
    for _, message in skipped:
        typer.echo(message, err=True)
    if not kept:
        raise ValueError(f"none of the {len(images)} photos holds a face that could be aligned; nothing was written")
    save_crops(crops, [files[images.index(path)] for path in kept])
    typer.echo(f"aligned {len(kept)} of {len(images)} photos into {out}")


@app.command("reconstruct")
@user_errors
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
    from attrgan.data import to_model_range
    from attrgan.device import resolve_device
    from attrgan.plots import save_grid
    from data_prep.io import guard_output

    guard_output(out, [*images, *_inputs(checkpoint, regressor)], force, expect="file")
    model = attrgan.load(checkpoint, resolve_device(device))
    crops, raw, kept = _photos_for(model, images, regressor)
    save_grid(torch.cat([to_model_range(crops), model.reconstruct(crops, raw).cpu()]), out, nrow=len(kept))
    typer.echo(f"wrote {out}")


@app.command("sample")
@user_errors
def sample_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt."),
    out: Path = typer.Option(..., help="Output grid PNG."),
    set: List[str] = typer.Option([], "--set", help="Attribute=value in std devs from the mean, e.g. Smiling=2."),
    from_image: Optional[Path] = typer.Option(None, help="Start from this photo's regressed attributes (needs --regressor)."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor used with --from-image."),
    n: int = typer.Option(16, "-n", help="Number of samples."),
    seed: int = typer.Option(0, help="Seed of z."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Conditional samples with chosen attribute values (unset ones: training mean or an image's)."""
    import numpy as np

    import attrgan
    from attrgan.device import resolve_device
    from attrgan.editing import attribute_row, parse_attribute_settings
    from attrgan.plots import save_grid
    from data_prep.io import guard_output

    guard_output(out, [from_image, *_inputs(checkpoint, regressor)], force, expect="file")
    settings = parse_attribute_settings(set)
    model = attrgan.load(checkpoint, resolve_device(device))
    _check_grid_memory(n, model, "-n")
    base = None
    if from_image is not None:
        if regressor is None:
            raise ValueError("--from-image needs --regressor to read the photo's attributes")
        _, raw, _ = _photos_for(model, [from_image], regressor)
        base = raw[0]
    row = attribute_row(model, settings, base)
    save_grid(model.sample(np.repeat(row[None], n, 0), seed=seed).cpu(), out, nrow=int(n**0.5) or 1)
    typer.echo(f"wrote {out}")


@app.command("attribute-vectors")
@user_errors
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
    from attrgan.data import open_dataset
    from attrgan.device import resolve_device
    from attrgan.editing import compute_attribute_vectors, save_attribute_vectors
    from data_prep.io import guard_output
    from data_prep.limits import require

    guard_output(out, [data, *_inputs(checkpoint)], force, expect="file")
    require("--present", present)
    require("--absent", absent)
    model = attrgan.load(checkpoint, resolve_device(device))
    vectors = compute_attribute_vectors(model, open_dataset(data), present, absent, split)
    save_attribute_vectors(vectors, out, str(checkpoint))
    typer.echo(f"wrote {len(vectors)} attribute vectors to {out}")


@app.command("eval-vectors")
@user_errors
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
    from attrgan.data import open_dataset
    from attrgan.device import resolve_device
    from attrgan.editing import load_attribute_vectors
    from attrgan.regressor import load_regressor
    from attrgan.vector_scores import format_vector_scores, vector_edit_scores
    from data_prep.io import guard_output, write_json

    guard_output(out, [data, *_inputs(checkpoint, vectors, regressor)], force, expect="file")
    model = attrgan.load(checkpoint, resolve_device(device))
    loaded = load_attribute_vectors(vectors, model)
    results = vector_edit_scores(model, load_regressor(regressor), open_dataset(data), loaded, split, strength, limit)
    write_json(out, {"checkpoint": str(checkpoint), "vectors": str(vectors), "split": split, "strength": strength,
                     "scores": results})
    typer.echo(format_vector_scores(results, strength))
    typer.echo(f"wrote {out}")


@app.command("edit")
@user_errors
def edit_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt of a vaegan or vae model."),
    images: List[Path] = typer.Argument(..., help="Photos to edit (aligned first)."),
    attribute: str = typer.Option(..., help="Attribute name, e.g. Eyeglasses."),
    strength: str = typer.Option("-2,-1,0,1,2", help="Comma-separated strengths (std devs of y, or multiples of the vector)."),
    mode: str = typer.Option("latent", help="latent (add the attribute vector to z) or condition (move y)."),
    vectors: Optional[Path] = typer.Option(None, help="attribute-vectors output (needed for --mode latent)."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor: conditions on the photos' attributes and scores the edit."),
    report: bool = typer.Option(False, help="Print the regressed slope per attribute and save it as OUT with .json "
                                "(needs --regressor)."),
    out: Path = typer.Option(..., help="Output grid PNG, one row per image."),
    device: str = DEVICE_OPTION,
    force: bool = typer.Option(False, help="Replace OUT (and its .json report) if they exist."),
) -> None:
    """Edit one attribute of photos by latent arithmetic or by changing the condition."""
    import attrgan
    from attrgan.device import resolve_device
    from attrgan.editing import check_edit, edit_images, edit_slopes, load_attribute_vectors
    from attrgan.plots import save_grid
    from attrgan.regressor import load_regressor
    from data_prep.io import guard_output, write_json
    from data_prep.limits import parse_list

    report_file = out.with_suffix(".json")
    guard_output(out, [*images, *_inputs(checkpoint, vectors, regressor)], force, expect="file",
                 side_files=[report_file] if report else [])
    if report and regressor is None:
        raise ValueError("--report needs --regressor to score the edits")
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


@app.command("interpolate")
@user_errors
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
    from attrgan.device import resolve_device
    from attrgan.editing import interpolate
    from attrgan.plots import save_grid
    from data_prep.io import guard_output
    from data_prep.limits import require

    guard_output(out, [image_a, image_b, *_inputs(checkpoint, regressor)], force, expect="file")
    require("--steps", steps, 2)
    model = attrgan.load(checkpoint, resolve_device(device))
    _check_grid_memory(steps, model, "--steps")
    crops, raw, kept = _photos_for(model, [image_a, image_b], regressor)
    if len(kept) < 2:
        raise ValueError("both photos must hold a face")
    save_grid(interpolate(model, crops, raw, steps).cpu(), out, nrow=steps)
    typer.echo(f"wrote {out}")


@app.command("serve")
@user_errors
def serve_command(
    checkpoint: Path = typer.Option(..., help="Run directory or checkpoint.pt to serve."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor: estimates uploaded photos' attributes."),
    vectors: Optional[Path] = typer.Option(None, help="attribute-vectors output: enables latent edits."),
    data: Optional[Path] = typer.Option(None, help="Dataset whose test-split faces the page offers "
                                        "(default: the one the model was trained on, if present)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only."),
    port: int = typer.Option(8000, help="Port (0: any free port)."),
    device: str = DEVICE_OPTION,
) -> None:
    """An editing page in the browser: upload or pick a face, move attribute sliders, draw samples."""
    from attrgan.device import resolve_device
    from attrgan.studio import load_studio
    from attrgan.webapp import create_app, is_loopback, make_server
    from data_prep.limits import require

    require("--port", port, 0, 65535)
    studio = load_studio(checkpoint, regressor, vectors, data, str(resolve_device(device)))
    server = make_server(create_app(studio), host, port)
    shown = f"[{host}]" if ":" in host else host
    reach = "this machine only" if is_loopback(host) else "REACHABLE FROM OTHER MACHINES on your network"
    typer.echo(f"attrgan studio: http://{shown}:{server.server_port}/  ({reach}; Ctrl-C stops it)")
    faces = studio.describe()["test_faces"]
    typer.echo(f"model {studio.model.kind} {studio.model.image_size}px, {len(studio.model.attribute_names)} attributes; "
               f"edit modes: {', '.join(studio.modes) or 'none'}; {faces} test-split faces"
               + ("" if regressor else "; without --regressor, uploads start from the training-mean attributes"))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()


def format_table(metrics: dict) -> str:
    """The Table-1 rows as printed at the end of eval-attributes."""
    from attrgan.training_seeds import training_seeds_text

    lines = [f"{'model':<26}{'cosine':>11}{'':9}{'squared error':>13}{'':8}{'centred cosine':>16}{'sign acc.':>11}"
             f"{'colour speckle':>16}{'mid band':>10}{'corner':>10}{'shuffled-query cosine':>24}"]
    if metrics["upper_bound"]:
        u = metrics["upper_bound"]
        lines.append(f"{'real images (upper bound)':<26}{u['cosine_similarity']:>11.4f}{'':9}{u['squared_error']:>13.2f}"
                     f"{'':8}{u['centred_cosine']:>16.4f}{u['sign_accuracy']:>11.4f}{1:>16.2f}{1:>10.3f}{1:>10.1f}")
    for r in metrics["models"]:
        control = r.get("shuffled_query_control")
        lines.append(
            f"{r['model']:<26}{r['cosine_similarity']:>11.4f} ± {r['cosine_similarity_std']:.4f}"
            f"{r['squared_error']:>13.2f} ± {r['squared_error_std']:<5.2f}"
            f"{r['centred_cosine']:>16.4f}{r['sign_accuracy']:>11.4f}{r['colour_speckle_vs_real']:>16.2f}"
            f"{r['spectrum_mid_vs_real']:>10.3f}{r['spectrum_corner_vs_real']:>10.1f}"
            + (f"{control['cosine_similarity']:>24.4f}" if control else "")
        )
    if metrics["upper_bound"]:
        blur = metrics["upper_bound"]["blur_response"]
        lines.append("regressor on blurred real images (cosine / centred cosine): " + ", ".join(
            f"{name.removeprefix('sigma_')} {f['cosine']:.4f} / {f['centred_cosine']:.4f}" for name, f in blur.items()))
    return "\n".join(lines + training_seeds_text(metrics.get("across_training_seeds")))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
