"""Evaluation commands: eval-attributes (Table 1) and reproduce (every stage in one command)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer

from attrgan.config import REGRESSOR_CHANNELS, REGRESSOR_FC, TRACKED_EVAL_EVERY
from cli.common import DEVICE_OPTION, condition_names, unlabelled_choice


def eval_attributes(
    data: Path = typer.Option(..., help="Dataset directory (queries and real images of --split)."),
    regressor: Path = typer.Option(..., help="Regressor run directory or regressor.pt (train-regressor)."),
    checkpoint: List[Path] = typer.Option(...,
                                          help="Generator run directory or checkpoint.pt; repeat for several models."),
    out: Path = typer.Option(..., help="Report directory (report.md, metrics.json, plots, grids)."),
    split: str = typer.Option("test", help="Split whose labelled images give the query attribute vectors."),
    queries: Optional[Path] = typer.Option(None, help="Score these vectors instead (lfw_attributes.txt format)."),
    seeds: int = typer.Option(5, help="Sampling seeds per query; the table reports mean ± std over them."),
    control: bool = typer.Option(True, help="Also score each model on shuffled queries (a no-conditioning control)."),
    inception_weights: Optional[Path] = typer.Option(None,
                                                     help="Local Inception-v3 state dict for FID (never downloaded)."),
    device: str = DEVICE_OPTION,
    precision: str = typer.Option("auto", help="auto (bf16 where native), fp32 or bf16 for the regressor."),
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Score generated faces with the regression network: the paper's Table 1."""
    from attrgan.evaluation.evaluate import EvalConfig, evaluate_attributes
    from attrgan.evaluation.report import format_table

    metrics = evaluate_attributes(EvalConfig(
        data=data, regressor=regressor, checkpoints=list(checkpoint), out=out, split=split, queries=queries,
        seeds=seeds, device=device, precision=precision, control=control, inception_weights=inception_weights,
        force=force,
    ))
    typer.echo(format_table(metrics))
    typer.echo(f"report: {out / 'report.md'}")


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
    regressor_channels: str = typer.Option(",".join(map(str, REGRESSOR_CHANNELS)),
                                           help="Regressor conv widths (default: the paper's encoder)."),
    regressor_fc: int = typer.Option(REGRESSOR_FC, help="Regressor FC width."),
    regressor_epochs: int = typer.Option(30, help="Most regressor epochs (early stopping on val)."),
    regressor_ensemble: int = typer.Option(1, help="Regressor members averaged (train-regressor --ensemble)."),
    seeds: int = typer.Option(5, help="Sampling seeds per query in the evaluation."),
    train_seeds: int = typer.Option(1, help="Training runs per model kind, with train.seed, train.seed + 1, ... "
                                    "(runs/<kind>, runs/<kind>-seed<N>); the report adds mean ± std across them and "
                                    "the paired difference VAE/GAN − other kind per training seed."),
    labelled_only: bool = typer.Option(False, help="Prep only images that have an attribute row."),
    subset: bool = typer.Option(False, help="--dataset celeba: a partial copy (prep-celeba --subset)."),
    align: Optional[str] = typer.Option(None, help="--dataset celeba or folder: the crop, as prep-celeba / prep-folder "
                                        "--align (default: celeba's box; mtcnn for a folder)."),
    unlabelled: str = typer.Option("use", help="use: prep and train on unlabelled images too (y = 0, labelled = 0); "
                                   "skip: labelled images only."),
    eval_every: int = typer.Option(TRACKED_EVAL_EVERY, help="Updates between tracked quality checks (0 = off)."),
    force: bool = typer.Option(False,
                               help="OUT was made from other inputs or options: delete its results and redo them."),
    test_people: Optional[Path] = typer.Option(None, help="File of people forced into the test split."),
    device: str = DEVICE_OPTION,
    set: List[str] = typer.Option([], "--set", help="Config override for every model, e.g. --set train.epochs=5."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """The whole experiment in one command: prep, train each model kind, regressor, one Table-1 report."""
    from attrgan.evaluation.report import format_table
    from attrgan.pipeline import ReproduceConfig, reproduce
    from attrgan.runtime.limits import parse_list
    from data_prep.prep import read_test_people

    metrics = reproduce(ReproduceConfig(
        images=images, attributes_file=attributes, dataset=dataset, config=config, out=out,
        models=[m.strip() for m in models.split(",")],
        attributes=condition_names(condition_on), size=size,
        max_minutes=max_minutes, overrides=list(set),
        regressor_channels=parse_list("--regressor-channels", regressor_channels, int), regressor_fc=regressor_fc,
        regressor_epochs=regressor_epochs, regressor_ensemble=regressor_ensemble, seeds=seeds, train_seeds=train_seeds,
        device=device, test_people=read_test_people(test_people) if test_people else [], test_people_file=test_people,
        labelled_only=labelled_only or unlabelled_choice(unlabelled) == "skip", subset=subset, align=align,
        unlabelled=unlabelled,
        eval_every=eval_every, force=force, progress=progress,
    ), log=typer.echo, command=shlex.join(["attrgan", *sys.argv[1:]]))
    if "vector_scores" in metrics:  # --condition-on none
        from attrgan.editing.vector_scores import format_vector_scores

        for kind, scores in metrics["vector_scores"].items():
            typer.echo(f"{kind}: " + format_vector_scores(scores, metrics["strength"]))
    else:
        typer.echo(format_table(metrics))
    typer.echo(f"report: {out / 'report' / 'report.md'}\nsample grids: {out / 'runs'}/<kind>/samples/final_samples.png")
    editable = [m.strip() for m in models.split(",") if m.strip() in ("vaegan", "vae")]
    if editable:
        program = sys.argv[0] if Path(sys.argv[0]).name == "attrgan" else "attrgan"  # as the user typed it
        serve = [program, "serve", "--checkpoint", str(out / "runs" / editable[0]),
                 "--regressor", str(out / "regressor")]
        if "vector_scores" in metrics:
            serve += ["--vectors", str(out / "report" / f"vectors_{editable[0]}.pt")]
        typer.echo(f"edit in the browser: {shlex.join(serve)}  (then open http://127.0.0.1:8000/)")


COMMANDS = {"eval-attributes": eval_attributes, "reproduce": reproduce_command}
