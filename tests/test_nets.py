"""Stage nets: the paper's networks and losses, the exact update step against the reference step, init."""
from __future__ import annotations

import pytest
import torch
from helpers import TINY_MODEL

from attrgan.config import DIS_AUGMENTS, DIS_NORMS, UPSAMPLING, ModelConfig, from_dict, load_config
from attrgan.nets.dis_augment import AugmentDraw, augment_for_dis, draw_augment
from attrgan.nets.losses import discriminator_loss, gaussian_nll, generator_loss, kl_prior
from attrgan.nets.models import Decoder, Discriminator, Encoder, build_models
from attrgan.nets.reference_steps import vaegan_step_reference
from attrgan.nets.steps import Noise, vaegan_step
from attrgan.runtime.errors import UserError

A = 73


@pytest.mark.parametrize("size", [32, 64])
def test_paper_shapes_and_fc_widths_include_attributes(size):
    cfg = ModelConfig(image_size=size)
    enc, dec, dis = Encoder(cfg, A), Decoder(cfg, A), Discriminator(cfg, A)
    base = size // 8
    assert enc.fc[0].in_features == 256 * base * base + A
    assert dec.fc[0].in_features == 128 + A
    assert dec.fc[0].out_features == 256 * base * base
    assert dis.fc[0].in_features == 256 * base * base + A
    x, y = torch.randn(2, 3, size, size), torch.randn(2, A)
    mu, logvar = enc(x, y)
    assert mu.shape == logvar.shape == (2, 128)
    assert dec(mu, y).shape == (2, 3, size, size)
    logits, features = dis(x, y)
    assert logits.shape == (2,) and features.shape == (2, 256, base, base)  # Dis_l: 4th conv layer
    kernels = [m.kernel_size for m in [*enc.modules(), *dec.modules(), *dis.modules()] if hasattr(m, "kernel_size")]
    assert set(kernels) == {(5, 5)}


def test_resize_upsampling_cannot_make_a_checkerboard():
    """A flat input through one x2 step with flat weights: the paper's stride-2 transposed 5x5
    conv covers neighbouring output pixels with 3 and 2 taps per axis, a period-2 pattern; nearest
    x2 then a 5x5 conv stays flat. The resize decoder keeps the paper's shapes."""
    from attrgan.nets.models import up_block

    flat = torch.ones(1, 4, 8, 8)
    interiors = {}
    for upsample in UPSAMPLING:
        scale = up_block(4, 4, upsample=upsample)[:-2]  # the x2 step, without BN and ReLU
        for module in scale:
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.ones_(module.weight)
        with torch.no_grad():
            interiors[upsample] = scale(flat)[0, 0, 4:-4, 4:-4]
    transposed = interiors["transposed"]
    assert transposed[0::2, 0::2].unique().tolist() != transposed[1::2, 1::2].unique().tolist()  # 9 vs 4 taps x 4
    assert interiors["resize"].unique().tolist() == [100.0]  # 25 taps x 4 channels everywhere
    assert interiors["bilinear"].unique().tolist() == [100.0]
    assert interiors["transposed4"].unique().tolist() == [16.0]  # 2 x 2 taps x 4 channels everywhere
    torch.testing.assert_close(interiors["blur"], torch.full_like(interiors["blur"], 6.25 * 4))  # (9+6+6+4)/4 taps x 4
    for upsample in UPSAMPLING:
        cfg = ModelConfig(image_size=32, upsample=upsample)
        assert Decoder(cfg, A)(torch.randn(2, 128), torch.randn(2, A)).shape == (2, 3, 32, 32), upsample


def test_blur_keeps_an_image_where_a_resize_puts_it():
    """The paper's transposed conv centres input pixel i at output 2i; the blur's (2, 1) padding
    moves it to 2i + 0.5, as nearest x2 does: an impulse's blurred response is centred there."""
    from attrgan.nets.models import Blur

    impulse = torch.zeros(1, 1, 16, 16)
    impulse[0, 0, 8, 8] = 1.0
    response = Blur(1)(impulse)[0, 0]
    coordinates = torch.arange(16.0)
    centre = [float((response.sum(axis) * coordinates).sum() / response.sum()) for axis in (1, 0)]
    assert centre == [pytest.approx(8.5), pytest.approx(8.5)]
    assert float(response.sum()) == pytest.approx(1.0)  # a low-pass of unit gain


def test_spectral_discriminator_has_unit_norm_layers_and_no_batch_coupling():
    """model.dis_norm=spectral: no BN in D, every conv and FC weight (as used) has spectral norm
    ~1, each row's output is independent of the rest of the batch, and the normalised layers
    load back from a state dict to the same function."""
    from torch.nn.utils import parametrize

    cfg = ModelConfig(**{**TINY_MODEL, "dis_norm": "spectral"})
    torch.manual_seed(0)
    dis = build_models(from_dict({"model": {**TINY_MODEL, "dis_norm": "spectral"}}).model, A)["discriminator"]
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in dis.modules())
    layers = [m for m in dis.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 6 and all(parametrize.is_parametrized(m, "weight") for m in layers)
    x, y = torch.randn(4, 3, 32, 32), torch.randn(4, A)
    for _ in range(10):
        dis(x, y)  # power iterations (training mode)
    for layer in layers:
        assert float(torch.linalg.matrix_norm(layer.weight.detach().flatten(1), 2)) == pytest.approx(1.0, rel=0.02)
    power_iteration = {k: v.clone() for k, v in dis.state_dict().items()}
    logits, _ = dis(x, y)
    dis.load_state_dict(power_iteration)  # the same power-iteration step for the second call
    alone, _ = dis(x[:1], y[:1])
    torch.testing.assert_close(alone, logits[:1])  # a batch-norm D would normalise row 0 by the batch's statistics
    copy = Discriminator(cfg, A)
    copy.load_state_dict(dis.state_dict())
    dis.eval(), copy.eval()
    torch.testing.assert_close(copy(x, y)[0], dis(x, y)[0])


def test_r1_penalty_flattens_the_discriminator_around_real_faces():
    """Training D alone on fixed real and fake batches: with the R1 penalty its input gradient at
    the real images ends far smaller than without; the penalty's gradient is that of
    r1_every * r1_weight / 2 * E|grad_x D(x)|^2, and its extra forward pass leaves D's buffers alone."""
    from attrgan.nets.steps import r1_grads, trainable

    torch.manual_seed(0)
    real, fake, y = torch.rand(8, 3, 32, 32) * 2 - 1, torch.rand(8, 3, 32, 32) * 0.2, torch.randn(8, A)

    def input_gradient_norm(r1_weight: float) -> float:
        cfg = from_dict({"model": {**TINY_MODEL, "kind": "gan"}, "loss": {"r1_weight": r1_weight}})
        torch.manual_seed(1)
        dis = build_models(cfg.model, A)["discriminator"]
        optimizer = torch.optim.RMSprop(dis.parameters(), lr=1e-3)
        for _ in range(40):
            logits, _ = dis(torch.cat([real, fake]), y.repeat(2, 1))
            grads = torch.autograd.grad(discriminator_loss(*logits.chunk(2)), trainable(dis))
            if r1_weight:
                penalty, _ = r1_grads(dis, real, y, None, cfg.loss)
                grads = [g + p for g, p in zip(grads, penalty)]
            for p, g in zip(trainable(dis), grads):
                p.grad = g
            optimizer.step()
        x = real.clone().requires_grad_()
        (grad_x,) = torch.autograd.grad(dis(x, y)[0].sum(), x)
        return float(grad_x.pow(2).flatten(1).sum(1).mean())

    assert input_gradient_norm(10.0) < 0.2 * input_gradient_norm(0.0)

    for norm in DIS_NORMS:  # the lazy weighting, in training mode; D's buffers are left as they were
        cfg = from_dict({"model": {**TINY_MODEL, "dis_norm": norm}, "loss": {"r1_weight": 2.0, "r1_every": 4}})
        dis = build_models(cfg.model, A)["discriminator"]
        buffers = {k: v.clone() for k, v in dis.state_dict().items() if "running" in k or "._u" in k or "._v" in k}
        grads, value = r1_grads(dis, real, y, None, cfg.loss)
        for key, before in buffers.items():
            assert torch.equal(dis.state_dict()[key], before), key
        x = real.clone().requires_grad_()
        (grad_x,) = torch.autograd.grad(dis(x, y)[0].sum(), x, create_graph=True)
        penalty = grad_x.pow(2).flatten(1).sum(1).mean()
        assert value == pytest.approx(float(penalty.detach()), rel=1e-4)
        expected = torch.autograd.grad(2.0 / 2 * 4 * penalty, trainable(dis), materialize_grads=True)
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()))


def test_dis_augment_moves_cuts_and_recolours_each_row_pair_alike():
    """Translation moves a pixel by its shift, cutout zeroes a square of half the side, colour
    shifts brightness; rows i and B+i (a real face and its reconstruction) get draw i; the
    transforms pass gradients back; and with x_rec = x, L_llike stays zero under augmentation."""
    image = torch.zeros(2, 3, 32, 32)
    image[:, :, 10, 20] = 1.0
    moved = augment_for_dis(image.repeat(2, 1, 1, 1), AugmentDraw(shift=torch.tensor([[3, -2], [-4, 4]])))
    assert moved[0, :, 13, 18].tolist() == moved[2, :, 13, 18].tolist() == [1.0] * 3
    assert moved[1, :, 6, 24].tolist() == moved[3, :, 6, 24].tolist() == [1.0] * 3
    assert float(moved.sum()) == 4 * 3  # each image keeps its one lit pixel: nothing wraps or spreads

    ones = torch.ones(1, 3, 32, 32)
    cut = augment_for_dis(ones, AugmentDraw(cutout_centre=torch.tensor([[16, 16]])))
    assert float((cut == 0).sum()) == 3 * 16 * 16 and float(cut[0, :, 8:24, 8:24].abs().sum()) == 0
    edge = augment_for_dis(ones, AugmentDraw(cutout_centre=torch.tensor([[0, 32]])))
    assert float((edge == 0).sum()) == 3 * 8 * 8  # a square at the corner is clipped to its quarter

    grey = torch.zeros(1, 3, 32, 32)
    brighter = augment_for_dis(grey, AugmentDraw(brightness=torch.tensor([0.25]), saturation=torch.tensor([1.0]),
                                                 contrast=torch.tensor([1.0])))
    torch.testing.assert_close(brighter, torch.full_like(grey, 0.25))

    draw = draw_augment(list(DIS_AUGMENTS), 4, 32, torch.Generator().manual_seed(0))
    again = draw_augment(list(DIS_AUGMENTS), 4, 32, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(draw.__dict__.values(), again.__dict__.values()))
    assert draw_augment([], 4, 32, torch.Generator()) is None
    assert int(draw.shift.abs().max()) <= 4
    assert 0 <= int(draw.cutout_centre.min()) <= int(draw.cutout_centre.max()) <= 32
    x = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_()
    out = augment_for_dis(torch.cat([x, x]), draw)
    torch.testing.assert_close(out[:4], out[4:])
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert float(grad.abs().sum()) > 0

    cfg = from_dict({"model": TINY_MODEL, "loss": {"dis_augment": list(DIS_AUGMENTS)}})
    torch.manual_seed(0)
    dis = build_models(cfg.model, A)["discriminator"]
    y = torch.randn(4, A)
    _, features = dis(augment_for_dis(torch.cat([x, x, x]).detach(), draw), y.repeat(3, 1))
    real, rec, _ = features.chunk(3)
    assert float(gaussian_nll(real, rec).detach()) == 0.0


def test_changing_y_changes_the_decoder_output():
    dec = Decoder(ModelConfig(**TINY_MODEL), A).eval()
    z = torch.randn(4, TINY_MODEL["z_dim"])
    y = torch.zeros(4, A)
    y2 = y.clone()
    y2[:, 17] = 2.0  # one attribute
    with torch.no_grad():
        assert (dec(z, y) - dec(z, y2)).abs().mean() > 1e-4
        assert torch.equal(dec(z, y), dec(z, y.clone()))
    with pytest.raises(UserError, match="attribute vector y must be"):
        dec(z, torch.zeros(4, A - 1))


def test_loss_signs_on_hand_made_logits():
    confident_real, confident_fake = torch.tensor([8.0]), torch.tensor([-8.0])
    # D that is right has a small loss, D that is wrong a large one
    assert discriminator_loss(confident_real, confident_fake) < 0.01
    assert discriminator_loss(confident_fake, confident_real) > 15
    # the decoder's loss is small when D calls its samples real (non-saturating form)
    assert generator_loss(confident_real) < 0.01 < 7 < generator_loss(confident_fake)
    assert kl_prior(torch.zeros(3, 5), torch.zeros(3, 5)) == 0
    assert torch.isclose(kl_prior(torch.ones(1, 4), torch.zeros(1, 4)), torch.tensor(2.0))
    assert torch.isclose(gaussian_nll(torch.zeros(2, 3), torch.ones(2, 3)), torch.tensor(1.5))


def _step_inputs(seed=0):
    torch.manual_seed(seed)
    cfg = from_dict({"model": TINY_MODEL})
    nets = build_models(cfg.model, A)
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    y = torch.randn(6, A)
    noise = Noise(torch.randn(6, 16), torch.randn(6, 16))
    return cfg, nets, x, y, noise


def test_gradient_isolation():
    cfg, nets, x, y, noise = _step_inputs()
    state = {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in nets.items()}
    result = vaegan_step(nets, x, y, noise, cfg.loss)

    def fresh():
        for n, net in nets.items():
            net.load_state_dict(state[n])
        enc, dec, dis = nets["encoder"], nets["decoder"], nets["discriminator"]
        mu, logvar = enc(x, y)
        x_rec = dec(mu + (0.5 * logvar).exp() * noise.eps, y)
        logits, features = dis(torch.cat([x, x_rec, dec(noise.z_prior, y)]), y.repeat(3, 1))
        l_real, l_rec, l_p = logits.chunk(3)
        f_real, f_rec, _ = features.chunk(3)
        return kl_prior(mu, logvar), gaussian_nll(f_real.detach(), f_rec), l_real, l_rec, l_p

    enc_p = list(nets["encoder"].parameters())
    dis_p = list(nets["discriminator"].parameters())
    # the encoder's gradient is exactly that of L_prior + L_llike ...
    prior, llike, l_real, l_rec, l_p = fresh()
    expected_enc = torch.autograd.grad(prior + llike, enc_p)
    for got, want in zip(result.grads["encoder"], expected_enc):
        torch.testing.assert_close(got, want)
    # ... and L_GAN would have changed it: the test can tell
    prior, llike, l_real, l_rec, l_p = fresh()
    with_gan = torch.autograd.grad(prior + llike + generator_loss(l_rec, l_p), enc_p)
    assert any(not torch.allclose(a, b) for a, b in zip(with_gan, expected_enc))
    # the discriminator's gradient is exactly that of -L_GAN: no L_llike or L_prior in it
    prior, llike, l_real, l_rec, l_p = fresh()
    expected_dis = torch.autograd.grad(discriminator_loss(l_real, l_rec, l_p), dis_p)
    for got, want in zip(result.grads["discriminator"], expected_dis):
        torch.testing.assert_close(got, want)
    prior, llike, l_real, l_rec, l_p = fresh()
    with_llike = torch.autograd.grad(discriminator_loss(l_real, l_rec, l_p) + llike, dis_p, allow_unused=True)
    assert any(b is not None and not torch.allclose(a, b) for a, b in zip(expected_dis, with_llike))


def test_decoder_gradient_is_gamma_weighted_llike_plus_gan():
    grads = {}
    for gamma in (0.0, 1.0, 3.0):
        cfg, nets, x, y, noise = _step_inputs()
        cfg.loss.gamma = gamma
        grads[gamma] = vaegan_step(nets, x, y, noise, cfg.loss).grads["decoder"]
    for g0, g1, g3 in zip(grads[0.0], grads[1.0], grads[3.0]):
        # the step sums gamma * L_llike's and L_gen's upstreams: fp32 rounding is relative to the sum
        expected = 3 * (g1 - g0)
        torch.testing.assert_close(g3 - g0, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


LOSS_VARIANTS = {
    "ours": {},
    "dis_l pre_bn": {"dis_l": "pre_bn"},
    "dis_sees prior": {"dis_sees": ["prior"]},
    "saturating generator": {"generator": "saturating"},
    "gamma 1e-6": {"gamma": 1e-6},
    "D paused by the gate": {"equilibrium": 5.0, "margin": 0.1},  # BCE ~0.7 < 4.9: D 'winning'
    "GAN term paused by the gate": {"equilibrium": -5.0, "margin": 0.1},  # BCE > -4.9: D 'losing'
    "gate rule both": {"equilibrium": 5.0, "margin": 0.1, "gate_rule": "both"},
    "Dis_l at the 3rd conv": {"dis_l_layer": 3},
    "Dis_l at the 2nd conv, pre_bn": {"dis_l_layer": 2, "dis_l": "pre_bn"},
    "pixel term and prior weight": {"pixel_weight": 0.5, "prior_weight": 2.0},
    "authors32.yaml": "authors32",
    # (model, loss) pairs: the speckle levers
    "spectral D": ({"dis_norm": "spectral"}, {}),
    "spectral D, no gate, lazy R1": ({"dis_norm": "spectral"}, {"r1_weight": 5.0, "r1_every": 4}),
    "R1 on the batch-norm D": ({}, {"r1_weight": 1.0, "equilibrium": 0.68}),
    "transposed4 upsampling": ({"upsample": "transposed4"}, {}),
    "bilinear upsampling": ({"upsample": "bilinear"}, {}),
    "blur upsampling, spectral D": ({"upsample": "blur", "dis_norm": "spectral"}, {"r1_weight": 1.0}),
    # the time-to-quality levers
    "D's inputs augmented, lazy R1": ({}, {"dis_augment": list(DIS_AUGMENTS), "r1_weight": 1.0, "r1_every": 4}),
}


@pytest.mark.parametrize("variant", LOSS_VARIANTS)
@pytest.mark.parametrize("with_unlabelled", [False, True])
def test_fast_step_matches_the_reference_step(variant, with_unlabelled):
    """Every network's gradient and every logged loss of the exact fast step equal those of
    the straightforward three-pass reference (fp32, rtol 1e-4), for each loss variant."""
    model, loss = LOSS_VARIANTS[variant] if isinstance(LOSS_VARIANTS[variant], tuple) else ({}, LOSS_VARIANTS[variant])
    if isinstance(loss, str):
        loss = load_config(f"configs/{loss}.yaml").loss.__dict__
    cfg = from_dict({"model": {**TINY_MODEL, **model, "labelled_input": with_unlabelled}, "loss": loss})
    torch.manual_seed(3)
    nets = build_models(cfg.model, A)
    x, y = torch.rand(6, 3, 32, 32) * 2 - 1, torch.randn(6, A)
    labelled = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0]) if with_unlabelled else None
    noise = Noise(torch.randn(6, TINY_MODEL["z_dim"]), torch.randn(6, TINY_MODEL["z_dim"]), labelled,
                  draw_augment(cfg.loss.dis_augment, 6, 32, torch.Generator().manual_seed(5)))
    initial = {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in nets.items()}
    fast = vaegan_step(nets, x, y, noise, cfg.loss, r1=True)
    after_fast = {n: net.state_dict() for n, net in nets.items()}
    for name, net in nets.items():
        net.load_state_dict(initial[name])
    reference = vaegan_step_reference(nets, x, y, noise, cfg.loss, r1=True)
    assert fast.logs == reference.logs
    assert ("D/r1" in fast.logs) == bool(cfg.loss.r1_weight and fast.logs["D/trained"])
    for name in ("encoder", "decoder", "discriminator"):
        got, want = fast.grads[name], reference.grads[name]
        assert (got is None) == (want is None), name
        for g, w in zip(got or (), want or ()):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5 * float(w.abs().max()))
    for name, net in nets.items():  # batch-norm running statistics: one forward pass each
        for key, value in net.state_dict().items():
            torch.testing.assert_close(after_fast[name][key], value)
    expected_gates = {"D paused by the gate": (0.0, 1.0), "GAN term paused by the gate": (1.0, 0.0),
                      "gate rule both": (0.0, 1.0)}
    if variant in expected_gates:  # the gate variants do take the branches they name
        assert (fast.logs["D/trained"], fast.logs["G/gan_trained"]) == expected_gates[variant]
