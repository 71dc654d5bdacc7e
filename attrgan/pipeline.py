"""`reproduce`: the whole experiment in one call — prep-lfw, train the regressor, train each
model kind with the same config and budget (tracking its quality with the regressor), and
write one Table-1 report.

Re-running with the same OUT reuses what is complete (the dataset, finished runs, the
regressor) and resumes an interrupted training run from its checkpoint, but only when the
inputs and options recorded in OUT/reproduce.json are unchanged (``--force`` redoes it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import GENERATOR_FILE, load_checkpoint
from .config import load_config
from .evaluate import EvalConfig, evaluate_attributes
from .regressor import REGRESSOR_FILE, RegressorConfig, train_regressor
from .train import train


@dataclass
class ReproduceConfig:
    images: Path
    out: Path
    config: Path
    attributes_file: Path | None = None
    models: list[str] = field(default_factory=lambda: ["vaegan", "vae", "gan"])
    attributes: list[str] | None = None  # condition on (and score) this subset
    size: int = 64  # prep size; models downsample when their image_size is smaller
    max_minutes: float | None = None  # training budget per model
    overrides: list[str] = field(default_factory=list)
    regressor_channels: list[int] = field(default_factory=lambda: [64, 128, 256])
    regressor_fc: int = 2048
    regressor_epochs: int = 30
    seeds: int = 5
    device: str = "auto"
    test_people: list[str] = field(default_factory=list)
    labelled_only: bool = False
    unlabelled: str = "use"  # data.unlabelled of every model
    eval_every: int = 250  # updates between tracked quality checks (0 = off)
    force: bool = False  # redo everything when OUT was made from other inputs
    progress: bool = True


def reproduce(cfg: ReproduceConfig, log=print) -> dict:
    """Run every stage into ``cfg.out`` (dataset/, runs/<kind>/, regressor/, report/); return the metrics."""
    from data_prep.prep import PrepConfig, prepare_dataset

    from data_prep.io import refuse_overlap

    for stage in STAGES:  # OUT itself may hold the inputs (make demo does); its stage folders may not
        refuse_overlap(cfg.out / stage, [cfg.images, cfg.attributes_file, cfg.config])
    _check_same_inputs(cfg, log)
    dataset = cfg.out / "dataset"
    if not (dataset / "manifest.json").is_file():
        log(f"[1/4] prep-lfw -> {dataset}")
        prepare_dataset(PrepConfig(images=cfg.images, attributes=cfg.attributes_file, out=dataset, size=cfg.size,
                                   device=cfg.device, test_people=cfg.test_people, labelled_only=cfg.labelled_only),
                        progress=cfg.progress)
    else:
        log(f"[1/4] reusing {dataset}")
    configs = {}
    for kind in cfg.models:
        overrides = [f"data.path={dataset}", f"model.kind={kind}", f"train.device={cfg.device}",
                     f"train.progress={cfg.progress}", f"data.unlabelled={cfg.unlabelled}",
                     f"train.eval_every={cfg.eval_every}", *cfg.overrides]
        if cfg.max_minutes is not None:
            overrides.append(f"train.max_minutes={cfg.max_minutes}")
        configs[kind] = load_config(cfg.config, overrides)
        configs[kind].data.attributes = cfg.attributes
    image_size = next(iter(configs.values())).model.image_size
    # The regressor comes first: the training runs track their sample quality with it.
    regressor = cfg.out / "regressor"
    if not (regressor / REGRESSOR_FILE).is_file():
        log(f"[2/4] train-regressor -> {regressor}")
        scores = train_regressor(RegressorConfig(data=str(dataset), image_size=image_size,
                                                 channels=cfg.regressor_channels, fc=cfg.regressor_fc,
                                                 attributes=cfg.attributes, epochs=cfg.regressor_epochs,
                                                 device=cfg.device,
                                                 progress=cfg.progress), regressor)
        if "test" in scores:
            log(f"      regressor on the real test images: cosine {scores['test']['cosine_similarity']:.4f}, "
                f"squared error {scores['test']['squared_error']:.2f}")
    else:
        log(f"[2/4] reusing {regressor}")
    runs = []
    for kind, config in configs.items():
        run = cfg.out / "runs" / kind
        resume = (run / GENERATOR_FILE).is_file()
        if resume and _finished(run):
            log(f"[3/4] reusing finished run {run}")
        else:
            log(f"[3/4] train-conditional {kind} -> {run}" + (" (resuming)" if resume else ""))
            train(config, run, resume=resume, regressor=regressor if cfg.eval_every else None)
        runs.append(run)
    report = cfg.out / "report"
    log(f"[4/4] eval-attributes -> {report}")
    return evaluate_attributes(EvalConfig(data=dataset, regressor=regressor, checkpoints=runs, out=report,
                                          seeds=cfg.seeds, device=cfg.device, force=True))


STAGES = ("dataset", "runs", "regressor", "report")
RECORD = "reproduce.json"


def inputs_record(cfg: ReproduceConfig) -> dict:
    """What a reproduce folder is made from: input files (size, mtime), the config's text and
    every option that changes a stage's result."""
    def stat(path: Path | None) -> dict | None:
        if path is None:
            return None
        info = Path(path).stat()
        return {"path": str(Path(path).resolve()), "bytes": info.st_size, "mtime": int(info.st_mtime)}

    return {
        "images": stat(cfg.images), "attributes": stat(cfg.attributes_file),
        "config": Path(cfg.config).read_text(), "overrides": list(cfg.overrides), "models": list(cfg.models),
        "condition_on": cfg.attributes, "size": cfg.size, "max_minutes": cfg.max_minutes,
        "regressor": [cfg.regressor_channels, cfg.regressor_fc, cfg.regressor_epochs], "seeds": cfg.seeds,
        "test_people": sorted(cfg.test_people), "labelled_only": cfg.labelled_only, "unlabelled": cfg.unlabelled,
        "eval_every": cfg.eval_every,
    }


def _check_same_inputs(cfg: ReproduceConfig, log) -> None:
    """Reuse ``cfg.out`` only if it was made from the same inputs and options; with ``force``
    delete its stages and start over; refuse otherwise, naming the first difference."""
    import json
    import shutil

    from data_prep.io import write_json

    if not Path(cfg.config).is_file():
        raise FileNotFoundError(f"{cfg.config}: config file not found")
    record, path = inputs_record(cfg), cfg.out / RECORD
    stages = [cfg.out / stage for stage in STAGES if (cfg.out / stage).exists()]
    if path.is_file():
        old = json.loads(path.read_text())
        changed = [key for key in record if old.get(key) != record[key]]
        if changed and not cfg.force:
            raise ValueError(f"{cfg.out} was made from other inputs ({', '.join(changed)} changed); "
                             "pass --force to redo it there, or choose another --out")
    elif stages and not cfg.force:
        raise ValueError(f"{cfg.out} holds results without a {RECORD}; pass --force to redo them, or choose another --out")
    if cfg.force and stages:
        log(f"--force: removing {', '.join(p.name for p in stages)} in {cfg.out}")
        for stage in stages:
            shutil.rmtree(stage)
    cfg.out.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


def _finished(run: Path) -> bool:
    """Whether the run's checkpoint was written at the end of training (not mid-run)."""
    return bool(load_checkpoint(run).get("finished", False))
