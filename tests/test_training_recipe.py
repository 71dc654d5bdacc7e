"""Stage training, the recipe's switches and the unlabelled-image training: labelled input, Dis_l
choice, saturating generator, augmentation, schedules, weight decay, quality tracking."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import RENDERED, ROOT, TINY_MODEL, tiny_config

from attrgan.checkpoint import load_checkpoint
from attrgan.config import ConfigError, from_dict, load_config
from attrgan.data.augment import augment_batch
from attrgan.data.batches import epoch_order
from attrgan.data.dataset import open_dataset
from attrgan.data.training_set import training_set
from attrgan.nets.losses import generator_loss
from attrgan.nets.models import build_models
from attrgan.nets.steps import STEPS, equilibrium_gates
from attrgan.runtime.device import cpu_has_native_bf16, resolve_precision
from attrgan.training.loop import train
from attrgan.training.state import make_optimizer, make_scheduler, scheduled_per_update

A = 73


def tiny_nets(**model):
    return build_models(from_dict({"model": {**TINY_MODEL, **model}}).model, A)


def test_labelled_input_widens_every_fc_layer_and_defaults_to_labelled():
    plain, flagged = tiny_nets(), tiny_nets(labelled_input=True)
    for name in ("encoder", "decoder", "discriminator"):
        assert flagged[name].fc[0].in_features == plain[name].fc[0].in_features + 1, name
    torch.manual_seed(0)
    dec = flagged["decoder"].eval()
    z, y = torch.randn(4, TINY_MODEL["z_dim"]), torch.randn(4, A)
    with torch.no_grad():
        default, ones, zeros = dec(z, y), dec(z, y, torch.ones(4)), dec(z, y, torch.zeros(4))
    assert torch.equal(default, ones)  # generation conditions as labelled
    assert (default - zeros).abs().max() > 0.01 * default.abs().max()  # the flag reaches the output


@pytest.fixture(scope="module")
def half_labelled_dataset(tmp_path_factory):
    """A synthetic LFW where 40% of the images have no attribute row, through prep-lfw."""
    from data_prep.prep import PrepConfig, prepare_dataset
    from data_prep.synth import write_synthetic_lfw

    root = tmp_path_factory.mktemp("half")
    write_synthetic_lfw(root / "src", people=40, max_images=3, seed=5, unlabelled_fraction=0.4)
    prepare_dataset(PrepConfig(images=root / "src" / "lfw", attributes=root / "src" / "lfw_attributes.txt",
                               out=root / "dataset", size=32), progress=False)
    return root / "dataset"


def test_unlabelled_images_come_only_from_the_training_split(half_labelled_dataset):
    synthetic_dataset = half_labelled_dataset
    dataset = open_dataset(synthetic_dataset)
    index = dataset.index
    assert (~index["labelled"] & (index["split"] != "train")).any(), "fixture needs unlabelled val/test images"
    names = dataset.attribute_names
    used = training_set(dataset, tiny_config(synthetic_dataset), names)
    skipped = training_set(dataset, from_dict({"model": TINY_MODEL, "data": {"path": str(synthetic_dataset),
                                                                            "unlabelled": "skip"}}), names)
    rows = index.iloc[used.rows]
    assert (rows["split"] == "train").all()
    held_out_people = set(index.loc[index["split"] != "train", "person"])
    assert not held_out_people & set(rows["person"])  # no val/test person, labelled or not
    unlabelled = ~rows["labelled"].to_numpy()
    assert unlabelled.sum() == (~index["labelled"] & (index["split"] == "train")).sum() > 0
    assert torch.equal(used.labelled, torch.from_numpy(~unlabelled).float())
    assert torch.all(used.y[torch.from_numpy(unlabelled)] == 0)  # y = the standardized mean
    assert len(skipped.rows) == (~unlabelled).sum() and skipped.labelled.all()
    np.testing.assert_allclose(used.scaler.mean, skipped.scaler.mean)  # fitted on labelled rows only


def test_labelled_share_fixes_the_labelled_count_of_every_batch(half_labelled_dataset, tmp_path, monkeypatch):
    """data.labelled_share: every batch the step sees holds round(share · batch) labelled images;
    the labelled rows are all used before one repeats; the order is seeded, so resume is exact."""
    labelled = torch.tensor([1.0] * 10 + [0.0] * 50)
    order = epoch_order(3, 0, labelled, batch=8, batches=7, share=0.25).view(7, 8)
    assert (labelled[order].sum(1) == 2).all()
    assert sorted(order[:5, :2].flatten().tolist()) == list(range(10))  # one pass over the labelled rows first
    assert torch.equal(order.flatten(), epoch_order(3, 0, labelled, 8, 7, 0.25))
    assert not torch.equal(order.flatten(), epoch_order(3, 1, labelled, 8, 7, 0.25))
    assert torch.equal(epoch_order(3, 0, labelled, 8, 7),
                       torch.randperm(60, generator=torch.Generator().manual_seed(3_000_009)))

    seen = []
    step = STEPS["vaegan"]

    def recording_step(nets, x, y, noise, loss, scale, **options):
        if noise.labelled is not None:  # without unlabelled images the models see no labelled flag
            seen.append(int(noise.labelled.sum()))
            assert torch.all(y[noise.labelled == 0] == 0)
        return step(nets, x, y, noise, loss, scale=scale, **options)

    monkeypatch.setitem(STEPS, "vaegan", recording_step)
    config = tiny_config(half_labelled_dataset, max_steps=6, batch_size=8)
    config.data.labelled_share = 0.5
    train(config, tmp_path / "a")
    assert seen == [4] * 6
    first = tiny_config(half_labelled_dataset, max_steps=3, batch_size=8)
    first.data.labelled_share = 0.5
    train(first, tmp_path / "b")
    train(config, tmp_path / "b", resume=True)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for net in a["nets"]:
        assert all(torch.equal(v, b["nets"][net][k]) for k, v in a["nets"][net].items()), net

    config.data.unlabelled = first.data.unlabelled = "skip"  # every image labelled: the share changes nothing
    config.train.max_steps = first.train.max_steps = 2
    first.data.labelled_share = None
    train(config, tmp_path / "c")
    train(first, tmp_path / "d")
    c, d = load_checkpoint(tmp_path / "c"), load_checkpoint(tmp_path / "d")
    assert all(torch.equal(v, d["nets"]["decoder"][k]) for k, v in c["nets"]["decoder"].items())
    with pytest.raises(ConfigError, match="labelled_share must be in"):
        load_config(None, ["data.labelled_share=0"])


def test_dis_l_pre_bn_is_the_fourth_conv_before_batch_norm():
    dis = tiny_nets()["discriminator"]
    x, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, A)
    logits_pre, pre = dis(x, y, dis_l="pre_bn")
    logits_post, post = dis(x, y)
    conv, bn, _ = dis.convs[-1]
    expected_pre = conv(dis.convs[:-1](dis.first(x)))
    torch.testing.assert_close(pre, expected_pre)
    assert (pre < 0).any() and (post >= 0).all()  # post is after ReLU, pre is not
    torch.testing.assert_close(logits_pre, logits_post)  # the choice changes Dis_l only


def test_dis_l_layer_moves_the_similarity_to_an_earlier_conv():
    dis = tiny_nets()["discriminator"].eval()
    x, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, A)
    with torch.no_grad():
        logits_last, last = dis(x, y)
        logits_third, third = dis(x, y, dis_l_layer=3)
        logits_fourth, fourth = dis(x, y, dis_l_layer=4)
        expected = dis.convs[:2](dis.first(x))
    assert last.shape[-1] == 4 and third.shape[-1] == 8  # 32x32: the 3rd conv keeps an 8x8 grid
    torch.testing.assert_close(third, expected)
    torch.testing.assert_close(fourth, last)
    torch.testing.assert_close(logits_third, logits_last)  # the choice changes Dis_l only
    for bad in ("loss.dis_l_layer=1", "loss.dis_l_layer=5"):
        with pytest.raises(ConfigError, match="dis_l_layer"):
            load_config(None, [bad])


def test_gate_rule_both_keeps_training_a_discriminator_that_loses_on_real_faces():
    """D wins on fakes (BCE 0.05) but loses on real faces (BCE 0.90): the public ports' rule
    freezes it; the `both` rule keeps training it."""
    real, fake = torch.full((8,), -0.378), torch.full((8,), -3.0)
    either = load_config(None, ["loss.equilibrium=0.68", "loss.margin=0.35"]).loss
    both = load_config(None, ["loss.equilibrium=0.68", "loss.margin=0.35", "loss.gate_rule=both"]).loss
    assert equilibrium_gates(real, fake, either) == (False, True)
    assert equilibrium_gates(real, fake, both) == (True, True)
    won = torch.full((8,), 3.0)  # D confidently right on both sides: both rules pause it
    assert equilibrium_gates(won, -won, either) == equilibrium_gates(won, -won, both) == (False, True)


def lr_trace(net, optim_config, updates: int):
    """The optimizer and its learning rate before each of ``updates`` scheduler steps (per-update stepping)."""
    optimizer = make_optimizer(net, optim_config)
    scheduler = make_scheduler(optimizer, optim_config)
    lrs = []
    for _ in range(updates):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return optimizer, lrs


def test_per_update_decay_and_discriminator_lr_ratio():
    config = load_config(None, ["optim.lr=1e-3", "optim.lr_decay=0.5", "optim.lr_decay_every=10",
                                "optim.dis_lr_ratio=0.25"])
    assert scheduled_per_update(config.optim) and not scheduled_per_update(load_config(None).optim)
    nets = tiny_nets()
    _, lrs = lr_trace(nets["decoder"], config.optim, 21)
    assert lrs[0] == pytest.approx(1e-3) and lrs[10] == pytest.approx(5e-4) and lrs[20] == pytest.approx(2.5e-4)
    assert lrs[5] == pytest.approx(1e-3 * 0.5**0.5)  # smooth within the interval
    dis_optimizer = make_optimizer(nets["discriminator"], config.optim, config.optim.dis_lr_ratio)
    assert dis_optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-4)


def test_saturating_generator_loss():
    logits = torch.tensor([-3.0, 0.0, 2.0])
    expected = torch.log(1 - torch.sigmoid(logits) + 1e-3).mean()
    torch.testing.assert_close(generator_loss(logits, saturating=True), expected)
    torch.testing.assert_close(generator_loss(logits), -torch.log(torch.sigmoid(logits)).mean())


def test_augmentation_is_seeded_and_small():
    x = torch.rand(64, 3, 32, 32) * 2 - 1
    a = augment_batch(x, "authors", torch.Generator().manual_seed(1))
    b = augment_batch(x, "authors", torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    flipped = augment_batch(x, "flip", torch.Generator().manual_seed(1))
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and 10 < mirrored.sum() < 54
    # jitter on a smooth image: close to the (possibly mirrored) input, never identical
    smooth = torch.linspace(-0.8, 0.8, 32).view(1, 1, 1, 32).expand(8, 3, 32, 32).contiguous()
    jittered = augment_batch(smooth, "authors", torch.Generator().manual_seed(2))
    gap = torch.minimum((jittered - smooth).abs().mean((1, 2, 3)), (jittered - smooth.flip(3)).abs().mean((1, 2, 3)))
    assert (gap > 1e-4).all() and (gap < 0.15).all(), gap
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)


def test_power_schedule_and_weight_decay_groups():
    config = load_config(None, ["optim.schedule=power", "optim.lr=1e-3", "optim.lr_end=1e-5",
                                "optim.schedule_steps=100", "optim.weight_decay=1e-5"])
    optimizer, lrs = lr_trace(tiny_nets()["decoder"], config.optim, 120)
    assert lrs[0] == pytest.approx(1e-3) and lrs[100] == pytest.approx(1e-5) and lrs[119] == pytest.approx(1e-5)
    assert lrs[50] == pytest.approx(1e-3 - 0.5**0.75 * (1e-3 - 1e-5))
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    decayed, rest = optimizer.param_groups
    assert decayed["weight_decay"] == 1e-5 and rest["weight_decay"] == 0.0
    assert all(p.dim() > 1 for p in decayed["params"]) and all(p.dim() == 1 for p in rest["params"])


def test_recipe_values_are_validated():
    for bad in ("loss.dis_l=middle", "loss.dis_sees=[real]", "loss.dis_sees=[]", "loss.generator=wasserstein",
                "data.unlabelled=maybe", "data.augment=heavy", "model.init=xavier", "optim.schedule=cosine",
                "optim.lr_decay=-0.5", "optim.weight_decay=-1", "train.precision=fp8", "loss.gate_rule=sometimes",
                "loss.pixel_weight=-1", "loss.prior_weight=-0.1", "optim.dis_lr_ratio=0", "optim.lr_decay_every=0"):
        with pytest.raises(ConfigError):
            load_config(None, [bad])


def test_authors_configs_load_and_differ_from_ours_only_in_named_keys():

    ours = load_config(ROOT / "configs" / "lfw32.yaml").to_dict()
    for name, size in (("authors32.yaml", 32), ("authors64.yaml", 64)):
        authors = load_config(ROOT / "configs" / name)
        assert authors.model.image_size == size and authors.loss.dis_sees == ["prior"]
        assert (authors.loss.dis_l, authors.loss.generator, authors.model.init) == ("pre_bn", "saturating", "authors")
        assert authors.data.augment == "authors" and authors.optim.schedule == "power"
        assert authors.to_dict()["model"]["enc_channels"] == ours["model"]["enc_channels"]


def test_native_bf16_detection(tmp_path):
    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert cpu_has_native_bf16(with_bf16) and not cpu_has_native_bf16(without)
    assert not cpu_has_native_bf16(tmp_path / "missing")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")


def test_quality_is_tracked_during_training(learnable_dataset, trained_regressor, tmp_path):
    config = tiny_config(learnable_dataset, "vaegan", max_steps=6, eval_every=3, eval_queries=40)
    config.data.attributes = RENDERED
    train(config, tmp_path / "run", regressor=trained_regressor)
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    checked = metrics.dropna(subset=["quality_frechet"])
    assert checked["step"].tolist() == [3, 6]
    assert (checked["quality_frechet"] > 0).all() and checked["quality_cosine"].between(-1, 1).all()
    assert (tmp_path / "run" / "quality_curves.png").is_file()
    assert (tmp_path / "run" / "samples" / "step000006_quality.png").is_file()
    # the logged colour speckle is the final decoder's, measured again from the checkpoint
    from attrgan.nets.loaded import load
    from attrgan.training.tracking import QualityTracker

    model = load(tmp_path / "run")
    tracker = QualityTracker.create(trained_regressor, open_dataset(learnable_dataset), RENDERED, model.scaler, config,
                                    torch.device("cpu"), "fp32")
    again = tracker.measure(model.nets["decoder"], tmp_path / "again", 6)
    assert again["quality_colour_speckle"] == pytest.approx(checked["quality_colour_speckle"].iloc[-1], abs=2e-3)
    assert again["quality_colour_speckle"] > 0
    wrong = tiny_config(learnable_dataset, "vaegan", max_steps=1, eval_every=1)  # all 73 attributes
    with pytest.raises(ValueError, match="attribute names differ"):
        train(wrong, tmp_path / "other", regressor=trained_regressor)


def test_loss_curves_show_the_share_of_updates_d_trained():
    """The gate's on/off column becomes the share of updates D trained (a rolling mean in [0, 1]);
    losses keep their raw values beside the smoothed curve."""
    from attrgan.evaluation.plots import loss_panels

    frame = pd.DataFrame({"step": range(1, 101), "E/llike": np.linspace(10, 1, 100),
                          "D/trained": [1.0] * 20 + [0.0] * 80, "time_s": np.arange(100.0)})
    panels = loss_panels(frame)
    assert set(panels) == {"E/llike", "D/trained (share of updates)"}
    raw, share = panels["D/trained (share of updates)"]
    assert raw is None and share.iloc[9] == 1.0 and share.iloc[24] == pytest.approx(0.5) and share.iloc[-1] == 0.0
    assert panels["E/llike"][0].equals(frame["E/llike"])


def test_every_config_key_carries_its_rules_and_the_reference_is_current():
    """The config dataclasses are the one source: each field has a doc and a rule; the keys a
    kind never reads and the run-time keys come from them; docs/config.md is what
    `attrgan config-keys` prints."""

    from attrgan.config import KEYS, Config, runtime_keys, unread_keys
    from attrgan.config_keys import reference_markdown

    assert all(key.rule.doc for key in KEYS.values())
    assert "loss.prior_weight" in unread_keys("vae") and "loss.prior_weight" not in unread_keys("vaegan")
    assert "model.enc_fc" in unread_keys("gan") and "optim.ema" not in unread_keys("gan")
    assert {"train.max_steps", "train.threads", "data.path"} <= runtime_keys()
    assert "train.batch_size" not in runtime_keys()
    table = reference_markdown(Config)
    stale = "docs/config.md is stale: regenerate it from `attrgan config-keys`"
    assert table in (ROOT / "docs" / "config.md").read_text(), stale
    assert len(table.splitlines()) == len(KEYS) + 2


def test_adam_and_a_warm_up_that_the_schedule_never_sees():
    """optim.optimizer adam takes beta1 and beta2; optim.warmup_steps lets update t step at
    t / warmup_steps of the scheduled learning rate, which is restored after each step."""
    from attrgan.training.state import warmup_factor
    from attrgan.training.update import scaled_learning_rate

    config = load_config(None, ["optim.optimizer=adam", "optim.beta1=0.5", "optim.warmup_steps=4",
                                "optim.lr_decay=0.5", "optim.lr_decay_every=1"])
    net = torch.nn.Linear(3, 1)
    optimizer = make_optimizer(net, config.optim)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert [warmup_factor(config.optim, t) for t in (1, 2, 4, 9)] == [0.25, 0.5, 1.0, 1.0]
    scheduler = make_scheduler(optimizer, config.optim)
    seen = []
    for t in (1, 2):
        net(torch.ones(1, 3)).sum().backward()
        with scaled_learning_rate(optimizer, warmup_factor(config.optim, t)):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([3e-4 * 0.25, 3e-4 * 0.5 * 0.5])  # warm-up share x the decayed schedule
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.25)  # the schedule's own: two halvings
    assert warmup_factor(load_config(None).optim, 1) == 1.0  # off by default
