"""`train-conditional`: the training loop for the conditional VAE/GAN and its baselines.

Reads top to bottom: data, networks and optimisers (or their resumed state), the run folder,
then one loop of updates (batch, gradients, checks, update, log, checkpoint) with per-epoch
schedules and sample grids. Its parts live beside it: the state and checkpoint (state.py), one
update (update.py), the stop conditions (stopping.py), the run folder's files (run_files.py).
Determinism: the batch order of epoch e is seeded by (seed, e) (attrgan/data/batches.py), the
step noise comes from a dedicated generator saved in the checkpoint, so `--resume` continues
bit-for-bit."""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from functools import partial
from pathlib import Path

import torch

from attrgan import __version__
from attrgan.checkpoint import GENERATOR_FILE, CheckpointError, checkpoint_file, load_checkpoint
from attrgan.config import Config
from attrgan.data.batches import epoch_order
from attrgan.data.dataset import open_dataset, select_attributes
from attrgan.data.training_set import batch_layout, training_set
from attrgan.nets.steps import STEPS
from attrgan.runtime.device import compile_networks, resolve_compile, resolve_device, resolve_precision
from attrgan.runtime.distributed import DistInfo, all_agree, init_distributed, shutdown
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import guard_output
from attrgan.runtime.lock import writer_lock
from attrgan.runtime.progress import progress_bar
from attrgan.training.averages import update_averages
from attrgan.training.pretrained import check_same_attributes, load_pretrained, start_from
from attrgan.training.resume import check_compatible, dataset_fingerprint
from attrgan.training.run_files import (
    EpochGrids,
    MetricsLog,
    finish_run_folder,
    prepare_run_folder,
    saving_in_order,
    write_run_record,
)
from attrgan.training.state import build_state, precision_context, save_run, scheduled_per_update, warmup_factor
from attrgan.training.stopping import check_finite_losses, check_finite_weights, interrupted, stop_on_signals
from attrgan.training.tracking import QualityTracker, quality_fields
from attrgan.training.update import apply_gradients, make_batch


def train(config: Config, out: str | Path, resume: bool = False, argv: list[str] | None = None,
          regressor: str | Path | None = None, force: bool = False, allow_changes: bool = False,
          config_path: str | Path | None = None, init: str | Path | None = None) -> Path:
    """Train ``config.model.kind`` on ``config.data.path``; write the run directory ``out``.

    Returns the checkpoint path. With ``resume`` the run continues from ``out/checkpoint.pt``
    (with other training settings only if ``allow_changes``); with ``force`` an existing run in
    ``out`` is replaced once the new one starts. ``out`` may not overlap the dataset, the
    regressor or ``config_path`` (the YAML the config came from; on resume the run's own
    config.yaml is fine). With a ``regressor`` (and ``train.eval_every``) the run tracks its
    sample quality on fixed queries of ``train.eval_split``: Fréchet distance, cosine and a
    grid (attrgan.training.tracking). With ``init`` (a checkpoint or a bundled model's name) a new
    run starts from that model's weights and architecture (attrgan.training.pretrained).
    """
    out = Path(out)
    if resume and force:
        raise UserError("--resume continues the run in OUT and --force replaces it: pass one of them")
    if resume and init is not None:
        raise UserError("--init starts a new run from a model's weights; --resume continues OUT's own: pass one")
    pretrained = None
    if init is not None:
        config, pretrained = start_from(config, init)
    own_config = resume and config_path is not None and Path(config_path).resolve() == (out / "config.yaml").resolve()
    guard_output(out, [config.data.path, regressor and checkpoint_file(regressor), None if own_config else config_path],
                 force=force or resume)
    device = resolve_device(config.train.device)
    info = init_distributed(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
    if config.train.threads and device.type == "cpu":
        torch.set_num_threads(config.train.threads)
    try:
        with stop_on_signals() as stop, writer_lock(out) if info.is_main else contextlib.nullcontext():
            return _train(config, out, resume, argv, device, info, regressor, stop, force, allow_changes,
                          pretrained and (init, pretrained))
    finally:
        shutdown(info)


def _train(config: Config, out: Path, resume: bool, argv, device: torch.device, info: DistInfo, regressor,
           stop: dict, force: bool, allow_changes: bool, pretrained: tuple | None) -> Path:
    tc, kind = config.train, config.model.kind
    ckpt_path = out / GENERATOR_FILE
    if resume and not ckpt_path.exists():
        raise CheckpointError(f"{ckpt_path}: nothing to resume")
    previous = load_checkpoint(ckpt_path, expect_kinds=("vaegan", "vae", "gan")) if resume else None

    # ---------------------------------------------------------------- data
    dataset = open_dataset(config.data.path)
    fingerprint = dataset_fingerprint(config.data.path)
    names = select_attributes(dataset.attribute_names, config.data.attributes)
    # with unlabelled images in the batch, the FC layers also see a labelled flag; an
    # unconditional model sees no attributes, so every image is alike and needs none
    config = dataclasses.replace(config, model=dataclasses.replace(  # a copy: the caller's config stays as given
        config.model, labelled_input=bool(names) and (config.model.labelled_input or config.data.unlabelled == "use")))
    changes = check_compatible(previous, config, ckpt_path, fingerprint, allow_changes) if previous is not None else {}
    if pretrained is not None:
        check_same_attributes(names, pretrained[1], pretrained[0])
    data = training_set(dataset, config, names, previous)
    batch, batches_per_epoch = batch_layout(data, config, info.world_size, warn=info.is_main)
    total_steps = tc.max_steps if tc.max_steps is not None else tc.epochs * batches_per_epoch
    if previous is not None and previous["step"] >= total_steps:
        if info.is_main:
            print(f"{ckpt_path}: already at step {previous['step']}, at or past the step limit {total_steps}: "
                  "nothing to train, the run is left as it is (raise --max-steps or --epochs to go on)",
                  file=sys.stderr)
        return ckpt_path

    # ---------------------------------------------------------------- networks, optimisers, precision
    run = build_state(config, len(names), device, info, previous, ckpt_path,
                      start=pretrained and partial(load_pretrained, payload=pretrained[1], init=pretrained[0]))
    at = run.position
    precision = resolve_precision(tc.precision, device)
    autocast, grad_scaler = precision_context(precision, device)
    step_nets = compile_networks(run.nets, device) if resolve_compile(tc.compile, device, precision) else run.nets
    compiled = step_nets is not run.nets  # the same parameters; compile_networks may decline
    tracker = QualityTracker.create(regressor, dataset, names, data.scaler, config, device, precision) \
        if regressor is not None and tc.eval_every and info.is_main else None
    grids = EpochGrids(data.images, data.y, config.model.z_dim, tc.seed + 1, device)

    # ---------------------------------------------------------------- the run folder
    labelled = int(data.labelled.sum())
    if info.is_main:
        prepare_run_folder(out, replace=force)
        print(f"train {kind}: {len(data.rows)} train images ({labelled} labelled), {device}, {precision}"
              f"{', compiled' if compiled else ''}", file=sys.stderr)
    log = MetricsLog(out / "metrics.csv", truncate_after=at.step, enabled=info.is_main,
                     extra_fields=(*(("D/r1",) if kind != "vae" and config.loss.r1_weight else ()),
                                   *(quality_fields() if tracker else ())))
    record = partial(write_run_record, out, config, resume=resume, changes=changes, step=at.step, record={
        "argv": argv or sys.argv, "version": __version__, "device": str(device), "precision": precision,
        "compiled": compiled, "world_size": info.world_size, "train_images": len(data.rows),
        "labelled_train_images": labelled, "regressor": str(regressor) if tracker else None,
        "init": pretrained and str(pretrained[0])})
    save = saving_in_order(partial(save_run, ckpt_path, run, config, data.scaler, fingerprint, info), log,
                          record if info.is_main else None)

    # ---------------------------------------------------------------- training loop
    bar = progress_bar(info.is_main and tc.progress, total=total_steps, initial=at.step,
                       unit="step", desc=f"train {kind}")
    started = time.perf_counter()
    if at.step == 0:
        save()  # a good checkpoint exists from the start, so a NaN at step 1 still leaves one

    def must_stop() -> bool:
        late = tc.max_minutes is not None and time.perf_counter() - started > 60 * tc.max_minutes
        return not all_agree(not (late or stop["signal"]), info)

    while at.step < total_steps and not must_stop():
        order = epoch_order(tc.seed, at.epoch, data.labelled, batch, batches_per_epoch, config.data.labelled_share)
        while at.batch_in_epoch < batches_per_epoch and at.step < total_steps and not must_stop():
            idx = order[at.batch_in_epoch * batch : (at.batch_in_epoch + 1) * batch][info.rank :: info.world_size]
            x, y, noise = make_batch(data, idx, config, run.noise, device)
            for net in run.nets.values():
                net.train()
            with autocast():  # gradients, each network from its own loss; lazy R1 every r1_every-th update
                result = STEPS[kind](step_nets, x, y, noise, config.loss, scale=grad_scaler.scale,
                                     r1=at.step % config.loss.r1_every == 0)
            check_finite_losses(result.logs, at.step + 1, out, info)
            apply_gradients(result.grads, run, grad_scaler, config, info)
            check_finite_weights(run.nets, at.step + 1, out, info)
            at.step += 1
            update_averages(run.averages, run.nets, config.optim.ema, at.step)
            at.batch_in_epoch += 1
            if scheduled_per_update(config.optim):
                run.step_schedules()
            quality = {}
            if tracker is not None and at.step % tc.eval_every == 0:
                quality = tracker.measure(run.outputs["decoder"], out / "samples", at.step)
            if at.step % tc.log_every == 0 or quality:
                log.write({"step": at.step, "epoch": at.epoch,
                           "time_s": round(log.elapsed + time.perf_counter() - started, 3),
                           "lr": run.lr * warmup_factor(config.optim, at.step), **result.logs, **quality})
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in result.logs.items() if "trained" not in k}, refresh=False)
            snapshot = bool(tc.snapshot_every) and at.step % tc.snapshot_every == 0
            if snapshot or (tc.checkpoint_every and at.step % tc.checkpoint_every == 0):
                save(snapshot=snapshot)
        if at.batch_in_epoch >= batches_per_epoch:  # end of epoch: lr decay, sample grids
            if not scheduled_per_update(config.optim):
                run.step_schedules()
            if info.is_main and tc.sample_every_epoch:
                grids.write(run.outputs, out / "samples", f"epoch{at.epoch:03d}")
            at.epoch += 1
            at.batch_in_epoch = 0
    bar.close()
    if not all_agree(stop["signal"] is None, info):  # a signal reached some rank: every rank saves and stops
        save()
        log.close()
        raise interrupted(stop["signal"], at.step, out)
    save(finished=True)
    if info.is_main:
        log.close()
        finish_run_folder(out, tracked=tracker is not None)
        if tc.sample_every_epoch:
            grids.write(run.outputs, out / "samples", "final")
    return ckpt_path

