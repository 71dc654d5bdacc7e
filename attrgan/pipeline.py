"""`reproduce`: the whole experiment in one call — prep (LFW, CelebA or a labelled folder),
train the regressor, train each model kind with the same config and budget (tracking its
quality with the regressor), and write one Table-1 report.

Re-running with the same OUT reuses what is complete (the dataset, finished runs, the
regressor) and resumes an interrupted training run from its checkpoint, but only when the
inputs and options recorded in OUT/reproduce.json are unchanged (``--force`` redoes it)."""
from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from attrgan.checkpoint import GENERATOR_FILE, checkpoint_file, load_checkpoint
from attrgan.config import REGRESSOR_CHANNELS, REGRESSOR_FC, TRACKED_EVAL_EVERY, load_config
from attrgan.data.dataset import select_attributes
from attrgan.editing.vector_scores import vector_report
from attrgan.evaluation.evaluate import EvalConfig, evaluate_attributes
from attrgan.evaluation.regressor import RegressorConfig, check_regressor_config, train_regressor
from attrgan.runtime.device import resolve_device
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import guard_output, write_json
from attrgan.runtime.limits import require
from attrgan.runtime.lock import writer_lock
from attrgan.training.loop import train
from attrgan.training.resume import dataset_fingerprint
from data_prep.attributes import LFW_ATTRIBUTE_NAMES
from data_prep.prep import PrepConfig, prepare_dataset
from data_prep.sources import open_source, sha256_of


@dataclass
class ReproduceConfig:
    images: Path  # lfw: lfw.tgz or its folder; celeba: the release's root; folder: the image folder
    out: Path
    config: Path
    attributes_file: Path | None = None  # lfw: lfw_attributes.txt; folder: the CSV; celeba: none (in the root)
    dataset: str = "lfw"  # lfw | celeba | folder
    models: list[str] = field(default_factory=lambda: ["vaegan", "vae", "gan"])
    attributes: list[str] | None = None  # condition on (and score) this subset
    size: int = 64  # prep size; models downsample when their image_size is smaller
    max_minutes: float | None = None  # training budget per model
    overrides: list[str] = field(default_factory=list)
    regressor_channels: list[int] = field(default_factory=lambda: list(REGRESSOR_CHANNELS))
    regressor_fc: int = REGRESSOR_FC
    regressor_epochs: int = 30
    regressor_ensemble: int = 1
    seeds: int = 5
    train_seeds: int = 1  # training runs per model kind (train.seed, train.seed + 1, ...), compared across seeds
    device: str = "auto"
    test_people: list[str] = field(default_factory=list)
    test_people_file: Path | None = None  # where test_people came from (an input the stages may not overlap)
    labelled_only: bool = False
    subset: bool = False  # celeba: a partial copy, rows without an image skipped (prep-celeba --subset)
    align: str | None = None  # the crop (prep-celeba / prep-folder --align); None: the source's default
    unlabelled: str = "use"  # data.unlabelled of every model
    eval_every: int = TRACKED_EVAL_EVERY  # updates between tracked quality checks (0 = off)
    force: bool = False  # redo everything when OUT was made from other inputs
    progress: bool = True


class ReproduceInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during reproduce: what was finished is kept; the message names the command that resumes."""

    def __init__(self, cause: KeyboardInterrupt, command: str) -> None:
        super().__init__(f"{str(cause) or 'interrupted'}\nto resume the experiment, run the same command again "
                         f"(finished stages are reused, training resumes from its checkpoint):\n  {command}")
        self.exit_code = getattr(cause, "exit_code", 130)


def reproduce(cfg: ReproduceConfig, log=print, command: str = "attrgan reproduce ...") -> dict:
    """Run every stage into ``cfg.out`` (dataset/, runs/<kind>/, regressor/, report/); return the
    metrics. ``command`` (the command line) is named in the message of an interrupt."""
    try:
        with writer_lock(cfg.out):
            return _run_stages(cfg, log)
    except KeyboardInterrupt as exc:
        raise ReproduceInterrupted(exc, command) from None


def _run_stages(cfg: ReproduceConfig, log) -> dict:
    for stage in STAGES:  # OUT itself may hold the inputs (make demo does); its stage folders may not
        guard_output(cfg.out / stage, [cfg.images, cfg.attributes_file, cfg.config, cfg.test_people_file], force=True)
    if cfg.out.exists() and not cfg.out.is_dir():
        raise UserError(f"{cfg.out} is a file; --out must name a folder")
    dataset = cfg.out / "dataset"
    source = dataset_source(cfg)  # reads and checks the label files
    configs, regressor_config = _stage_configs(cfg, dataset, source)  # every option checked before any stage runs
    _check_same_inputs(cfg, log)
    stages = StageRecord(cfg.out / RECORD, log)
    if stages.reusable("dataset", dataset):
        log(f"[1/4] reusing {dataset}")
    else:
        log(f"[1/4] prep-{cfg.dataset} -> {dataset}")
        prepare_dataset(PrepConfig(images=cfg.images, attributes=cfg.attributes_file, source=source, out=dataset,
                                   size=cfg.size, crop=cfg.align, device=cfg.device, test_people=cfg.test_people,
                                   labelled_only=cfg.labelled_only, force=True),
                        progress=cfg.progress)
        stages.done("dataset", dataset)
    # The regressor comes first: the training runs track their sample quality with it.
    regressor = cfg.out / "regressor"
    if stages.reusable("regressor", regressor):
        log(f"[2/4] reusing {regressor}")
    else:
        log(f"[2/4] train-regressor -> {regressor}")
        regressor_config.data = str(dataset)
        scores = train_regressor(regressor_config, regressor, force=True)
        stages.done("regressor", regressor)
        if "test" in scores:
            test = scores["test"]
            log(f"      regressor on the real test images: cosine {test['cosine_similarity']:.4f}, "
                f"squared error {test['squared_error']:.2f}"
                + (f", binary attributes' mean accuracy {test['mean_accuracy']:.3f}"
                   if "mean_accuracy" in test else ""))
    runs = []
    for name, config in configs.items():
        run = cfg.out / "runs" / name
        if stages.reusable(f"runs/{name}", run):
            log(f"[3/4] reusing finished run {run}")
        else:
            resume = not stages.stale and f"runs/{name}" not in stages.changed and (run / GENERATOR_FILE).is_file()
            log(f"[3/4] train-conditional {config.model.kind} (seed {config.train.seed}) -> {run}"
                + (" (resuming)" if resume else ""))
            train(config, run, resume=resume, force=not resume, regressor=regressor if cfg.eval_every else None)
            stages.done(f"runs/{name}", run)
        runs.append(run)
    report = cfg.out / "report"
    if cfg.attributes == []:  # unconditional models: scored by their attribute vectors

        log(f"[4/4] attribute-vectors + eval-vectors -> {report}")
        return vector_report(dataset, regressor, runs, report, device=str(resolve_device(cfg.device)), force=True)
    log(f"[4/4] eval-attributes -> {report}")
    return evaluate_attributes(EvalConfig(data=dataset, regressor=regressor, checkpoints=runs, out=report,
                                          seeds=cfg.seeds, device=cfg.device, force=True))


def dataset_source(cfg: ReproduceConfig):
    """The registered reader of ``cfg.dataset`` over ``cfg.images`` (and ``cfg.attributes_file``)."""
    return open_source(cfg.dataset, cfg.images, cfg.attributes_file, subset=cfg.subset, align=cfg.align)


def _stage_configs(cfg: ReproduceConfig, dataset: Path, source) -> tuple[dict, RegressorConfig]:
    """The training config of each run (by its folder under runs/: the kind for the first
    training seed, ``<kind>-seed<N>`` for the others) and the regressor's, checked (with the
    attribute subset and the evaluation's seeds) before the first stage starts."""
    require("--seeds", cfg.seeds, 1)
    require("--train-seeds", cfg.train_seeds, 1)
    if cfg.attributes == [] and "gan" in cfg.models:
        raise UserError("--condition-on none scores models by their attribute vectors, and a GAN has no encoder "
                         "to make them; use --models vaegan,vae")
    if cfg.attributes:
        select_attributes(source.table.names if source.table else list(LFW_ATTRIBUTE_NAMES), cfg.attributes)
    configs = {}
    for kind in cfg.models:
        overrides = [f"data.path={dataset}", f"model.kind={kind}", f"train.device={cfg.device}",
                     f"train.progress={cfg.progress}", f"data.unlabelled={cfg.unlabelled}",
                     f"train.eval_every={cfg.eval_every}", *cfg.overrides]
        if cfg.max_minutes is not None:
            overrides.append(f"train.max_minutes={cfg.max_minutes}")
        config = load_config(cfg.config, overrides)
        config.data.attributes = cfg.attributes
        first_seed = config.train.seed
        for k in range(cfg.train_seeds):
            config = copy.deepcopy(config)
            config.train.seed = first_seed + k
            configs[kind if k == 0 else f"{kind}-seed{first_seed + k}"] = config
    regressor_config = RegressorConfig(data=str(dataset), image_size=next(iter(configs.values())).model.image_size,
                                       channels=cfg.regressor_channels, fc=cfg.regressor_fc,
                                       attributes=cfg.attributes or None,
                                       epochs=cfg.regressor_epochs, ensemble=cfg.regressor_ensemble,
                                       device=cfg.device, progress=cfg.progress)
    check_regressor_config(regressor_config)
    return configs, regressor_config


STAGES = ("dataset", "runs", "regressor", "report")
RECORD = "reproduce.json"
# options added after the record's first version: what older records meant
RECORD_DEFAULTS = {"train_seeds": 1, "regressor_ensemble": 1, "subset": False, "align": None}


def inputs_record(cfg: ReproduceConfig) -> dict:
    """What a reproduce folder is made from: the content of its inputs (sha256 of the archive,
    or of every image's path and bytes in a folder, and of the attribute file: under 1 s for
    lfw.tgz, docs/performance.md), the config's text and every option that changes a stage's result."""
    def content(path: Path | None) -> dict | None:
        if path is None:
            return None
        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        return {"path": str(Path(path).resolve()), "sha256": sha256_of(path)}

    return {
        "dataset": cfg.dataset, "images": content(cfg.images), "attributes": content(cfg.attributes_file),
        "config": Path(cfg.config).read_text(), "overrides": list(cfg.overrides), "models": list(cfg.models),
        "condition_on": cfg.attributes, "size": cfg.size, "max_minutes": cfg.max_minutes,
        "regressor": [cfg.regressor_channels, cfg.regressor_fc, cfg.regressor_epochs], "seeds": cfg.seeds,
        "regressor_ensemble": cfg.regressor_ensemble,
        "train_seeds": cfg.train_seeds,
        "test_people": sorted(cfg.test_people), "labelled_only": cfg.labelled_only, "subset": cfg.subset,
        "align": cfg.align, "unlabelled": cfg.unlabelled,
        "eval_every": cfg.eval_every,
    }


def _check_same_inputs(cfg: ReproduceConfig, log) -> None:
    """Reuse ``cfg.out`` only if it was made from the same inputs and options; with ``force``
    delete its stages and start over; refuse otherwise, naming the first difference."""
    if not Path(cfg.config).is_file():
        raise FileNotFoundError(f"{cfg.config}: config file not found")
    record, path = inputs_record(cfg), cfg.out / RECORD
    stages = [cfg.out / stage for stage in STAGES if (cfg.out / stage).exists()]
    kept = {}
    if path.is_file():
        old = json.loads(path.read_text())
        kept = {"stages": old.get("stages", {})}
        changed = [key for key in record if old.get(key, RECORD_DEFAULTS.get(key)) != record[key]]
        if changed and not cfg.force:
            raise UserError(f"{cfg.out} was made from other inputs ({', '.join(changed)} changed); "
                             "pass --force to redo it there, or choose another --out")
    elif stages and not cfg.force:
        raise UserError(f"{cfg.out} holds results without a {RECORD}; pass --force to redo them, or choose another "
                        "--out")
    if cfg.force and stages:
        log(f"--force: removing {', '.join(p.name for p in stages)} in {cfg.out}")
        for stage in stages:
            shutil.rmtree(stage)
        kept = {}
    cfg.out.mkdir(parents=True, exist_ok=True)
    write_json(path, {**record, **kept})


class StageRecord:
    """Each finished stage's output fingerprint, kept in reproduce.json: a stage is reused only
    while its files are as reproduce left them (a run only once finished); one that changed or
    is missing is redone, and so is every later stage (the runs stand apart from each other)."""

    def __init__(self, path: Path, log) -> None:
        self.path, self.log = path, log
        self.fingerprints: dict[str, str] = json.loads(path.read_text()).get("stages", {})
        self.stale = False  # an earlier stage was redone
        self.changed: set[str] = set()  # stages whose files changed: redone from scratch

    def reusable(self, name: str, output: Path) -> bool:
        present = (output / "manifest.json").is_file() if name == "dataset" else checkpoint_file(output).is_file()
        if self.stale or not present:
            self.stale = self.stale or name in ("dataset", "regressor")
            return False
        if name.startswith("runs/") and not load_checkpoint(output).get("finished", False):
            return False  # resumed, not redone: the later runs stand
        current, recorded = stage_fingerprint(output), self.fingerprints.get(name)
        if recorded is None:  # a record from before fingerprints: taken as it is now
            self._record(name, current)
        elif recorded != current:
            self.log(f"      {output} changed since reproduce wrote it: redoing it"
                     + ("" if name.startswith("runs/") else " and every later stage"))
            self.changed.add(name)
            self.stale = self.stale or not name.startswith("runs/")
            return False
        return True

    def done(self, name: str, output: Path) -> None:
        self._record(name, stage_fingerprint(output))

    def _record(self, name: str, fingerprint: str) -> None:
        self.fingerprints[name] = fingerprint
        write_json(self.path, {**json.loads(self.path.read_text()), "stages": self.fingerprints})


def stage_fingerprint(output: Path) -> str:
    """sha256 of a stage's output: a dataset's three files, or a regressor's or run's checkpoint."""
    if (output / "manifest.json").is_file():
        return dataset_fingerprint(output)
    return sha256_of(checkpoint_file(output))
