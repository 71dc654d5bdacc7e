"""Training commands: train-conditional, plot-quality, train-regressor."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from attrgan.config import REGRESSOR_CHANNELS, REGRESSOR_FC, TRACKED_EVAL_EVERY
from attrgan.runtime.errors import UserError
from cli.common import DEVICE_OPTION, PROGRESS_OPTION, condition_names, unlabelled_choice


def train_conditional(
    data: Optional[Path] = typer.Option(None, help="Dataset directory written by prep-lfw (default: the config's "
                                        "data.path, e.g. the run's own config.yaml on --resume)."),
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
                                             "(y = 0, labelled = 0); skip: labelled images only. Overrides "
                                             "data.unlabelled."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor (train-regressor) for quality tracking every "
                                             "train.eval_every updates: Fréchet distance, cosine, grid."),
    resume: bool = typer.Option(False, help="Continue the run in OUT from its checkpoint, bit-for-bit."),
    init: Optional[str] = typer.Option(None, help="Start from this model's weights and architecture (a checkpoint, "
                                       "or a bundled model's name: attrgan models) to fine-tune it on --data."),
    allow_changes: bool = typer.Option(False, help="With --resume: continue under other training settings (--set, "
                                       "--config) than the checkpoint's; run.json records each change and its step."),
    force: bool = typer.Option(False, help="Replace a run already in OUT (it is deleted when the new run starts)."),
    seed: Optional[int] = typer.Option(None, help="Seed of initialisation, batch order and noise."),
    attributes: Optional[str] = typer.Option(None, help="Comma-separated subset of attribute names to condition on."),
    condition_on: Optional[str] = typer.Option(None, help="none: an unconditional model (the paper's CelebA "
                                               "experiment; edit it with attribute vectors); or names, as "
                                               "--attributes."),
    set: List[str] = typer.Option([], "--set", help="Override any config key, e.g. --set loss.gamma=0.1 (repeatable; "
                                  "`attrgan config-keys` lists them)."),
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Train a conditional VAE/GAN (or the VAE / GAN baselines) on a prep-lfw dataset.

    Multi-process: torchrun --nproc_per_node N -m cli.main train-conditional ... (gloo on CPU, NCCL on GPU).
    """
    from attrgan.config import load_config
    from attrgan.training.loop import train

    flags = {
        "data.path": data and str(data), "model.kind": model, "train.epochs": epochs, "train.max_steps": max_steps,
        "train.batch_size": batch_size, "train.device": device, "train.precision": precision, "train.seed": seed,
        "train.progress": progress, "data.unlabelled": unlabelled and unlabelled_choice(unlabelled),
    }
    overrides = [f"{key}={value}" for key, value in flags.items() if value is not None]
    if attributes and condition_on:
        raise UserError("give --attributes or --condition-on, not both")
    wanted = condition_names(condition_on or attributes)
    if wanted is not None:
        overrides.append("data.attributes=[" + ",".join(f'"{a}"' for a in wanted) + "]")
    if resume and config is None and (out / "config.yaml").is_file():
        config = out / "config.yaml"
    cfg = load_config(config, overrides + list(set))
    if not cfg.data.path:
        raise UserError("--data is needed: the dataset folder a prep command wrote (the config names none)")
    if regressor is not None and not cfg.train.eval_every:
        cfg.train.eval_every = TRACKED_EVAL_EVERY
    checkpoint = train(cfg, out, resume=resume, argv=sys.argv, regressor=regressor, force=force,
                       allow_changes=allow_changes, config_path=config, init=init)
    typer.echo(f"checkpoint: {checkpoint}\nsamples: {out / 'samples'}\nmetrics: {out / 'metrics.csv'}")


def plot_quality(
    runs: List[Path] = typer.Argument(..., help="Run directories trained with --regressor (their metrics.csv)."),
    out: Path = typer.Option(..., help="Output PNG: Fréchet distance and cosine against updates and minutes."),
    force: bool = typer.Option(False, help="Replace OUT if it exists."),
) -> None:
    """Overlay the tracked quality curves of several training runs."""
    from attrgan.evaluation.plots import check_figure_output, plot_quality_comparison
    from attrgan.runtime.files import guard_output

    guard_output(out, [r / "metrics.csv" for r in runs], force, expect="file")
    check_figure_output(out)
    missing = [str(r) for r in runs if not (r / "metrics.csv").is_file()]
    if missing:
        raise FileNotFoundError(f"no metrics.csv in {', '.join(missing)}")
    names = [r.name for r in runs]
    labels = names if len(set(names)) == len(names) else [str(r) for r in runs]
    if not plot_quality_comparison({label: r / "metrics.csv" for label, r in zip(labels, runs)}, out):
        raise UserError("none of the runs tracked quality (train with --regressor)")
    typer.echo(f"wrote {out}")


def train_regressor_command(
    data: Path = typer.Option(..., help="Dataset directory written by prep-lfw."),
    out: Path = typer.Option(..., help="Run directory for regressor.pt and metrics.json."),
    image_size: Optional[int] = typer.Option(None, help="Input size (default: the dataset's); must match the "
                                                        "generators scored."),
    epochs: int = typer.Option(30, help="Most epochs; training stops earlier when val error stops improving."),
    patience: int = typer.Option(5, help="Epochs without val improvement before early stopping."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    channels: str = typer.Option(",".join(map(str, REGRESSOR_CHANNELS)),
                                 help="Conv widths (stride 2 each); default: the paper's encoder."),
    fc: int = typer.Option(REGRESSOR_FC, help="Width of the fully connected layer."),
    attributes: Optional[str] = typer.Option(None, help="Comma-separated subset of attribute names."),
    device: str = DEVICE_OPTION,
    precision: str = typer.Option("auto", help="auto (bf16 where native), fp32 or bf16 (autocast)."),
    seed: int = typer.Option(0, help="Seed of initialisation, batch order and augmentation (member k: seed + k)."),
    ensemble: int = typer.Option(1,
                                 help="Members trained with successive seeds, each early-stopped; outputs averaged."),
    flip_average: bool = typer.Option(True, help="Average each image's prediction with its mirror image's."),
    progress: bool = PROGRESS_OPTION,
    force: bool = typer.Option(False, help="Replace OUT if it exists (only once the new regressor is complete)."),
) -> None:
    """Train the attribute regression network on real labelled train images (early stopping on val)."""
    from attrgan.data.dataset import open_dataset
    from attrgan.evaluation.regressor import RegressorConfig, train_regressor
    from attrgan.runtime.limits import parse_list

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


def config_keys(
    model: Optional[str] = typer.Option(None, help="Only the keys this model kind reads (vaegan, vae or gan)."),
) -> None:
    """Every config key that --set and the YAML configs take: type, default, allowed values,
    run-time or not, meaning."""
    from attrgan.config import Config
    from attrgan.config_keys import MODEL_KINDS, reference_markdown

    if model is not None and model not in MODEL_KINDS:
        raise UserError(f"--model must be one of {', '.join(MODEL_KINDS)}, got {model!r}")
    typer.echo(reference_markdown(Config, model), nl=False)


COMMANDS = {"train-conditional": train_conditional, "plot-quality": plot_quality,
            "train-regressor": train_regressor_command,
            "config-keys": config_keys}
