"""Training-step throughput per model kind, image size and precision, batch 64, on this machine.

Prints images/s, model FLOPs per image per step (counted with FlopCounterMode on one real
step), the utilisation against a matmul peak measured in the same run, and a "plain"
baseline: the same 64x64 networks with one combined backward over the summed losses
(the usual shortcut, which mixes every loss into every network).

Run: .venv/bin/python benchmarks/train_step.py [--steps 3] [--sizes 32,64] [--kinds vaegan,vae,gan]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import matmul_peak

from attrgan.config import from_dict
from attrgan.losses import discriminator_loss, gaussian_nll, generator_loss, kl_prior
from attrgan.models import build_models
from attrgan.steps import STEPS, Noise

BATCH, ATTRIBUTES = 64, 73


def make_step(kind: str, size: int, precision: str, channels_last: bool, plain: bool = False):
    """A closure running one full training step (gradients and RMSProp updates)."""
    cfg = from_dict({"model": {"kind": kind, "image_size": size}})
    torch.manual_seed(0)
    nets = build_models(cfg.model, ATTRIBUTES)
    if channels_last:
        nets = {n: net.to(memory_format=torch.channels_last) for n, net in nets.items()}
    optims = {n: torch.optim.RMSprop(net.parameters(), lr=3e-4) for n, net in nets.items()}
    x = torch.rand(BATCH, 3, size, size) * 2 - 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randn(BATCH, ATTRIBUTES)
    noise = Noise(torch.randn(BATCH, 128), torch.randn(BATCH, 128))
    dtype = torch.bfloat16

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
            if plain:
                _plain_vaegan_backward(nets, x, y, noise)
            else:
                result = STEPS[kind](nets, x, y, noise, cfg.loss)
                for name, grads in result.grads.items():
                    for p, g in zip(nets[name].parameters(), grads or ()):
                        p.grad = g
        for opt in optims.values():
            opt.step()
            opt.zero_grad(set_to_none=True)

    return step


def _plain_vaegan_backward(nets, x, y, noise) -> None:
    """The shortcut baseline: every loss summed, one backward into every network."""
    enc, dec, dis = nets["encoder"], nets["decoder"], nets["discriminator"]
    mu, logvar = enc(x, y)
    x_rec = dec(mu + (0.5 * logvar).exp() * noise.eps, y)
    x_p = dec(noise.z_prior, y)
    logits, features = dis(torch.cat([x, x_rec, x_p]), y.repeat(3, 1))
    l_real, l_rec, l_p = logits.chunk(3)
    f_real, f_rec, _ = features.chunk(3)
    loss = (kl_prior(mu, logvar) + gaussian_nll(f_real.detach(), f_rec) + discriminator_loss(l_real, l_rec, l_p)
            + generator_loss(l_rec, l_p))
    loss.backward()


def measure(step, steps: int) -> tuple[float, float]:
    """(images/s, GFLOP per image per step)."""
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    step()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = (time.perf_counter() - started) / steps
    return BATCH / elapsed, flops / BATCH / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sizes", default="32,64")
    parser.add_argument("--kinds", default="vaegan,vae,gan")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16, n=256, repeats=2)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    modes = [("fp32", False), ("fp32", True)]
    if peaks["bf16"] > peaks["fp32"] / 2:
        modes += [("bf16", False), ("bf16", True)]
    else:  # e.g. AVX2-only CPUs: bf16 is emulated, tens of times slower than fp32
        print("bf16 rows skipped: this CPU has no native bf16 matmul (no AVX-512 BF16 / AMX)")
    print(f"{'kind':<8}{'size':>5}  {'mode':<22}{'img/s':>8}{'GFLOP/img':>11}{'util':>7}")
    rows = [(k, int(s), p, cl) for s in args.sizes.split(",") for k in args.kinds.split(",") for p, cl in modes]
    results = {}
    for kind, size, precision, channels_last in rows:
        ips, gflop = measure(make_step(kind, size, precision, channels_last), args.steps)
        results[(kind, size, precision, channels_last)] = ips
        util = ips * gflop / peaks[precision]
        mode = precision + (" + channels-last" if channels_last else "")
        print(f"{kind:<8}{size:>5}  {mode:<22}{ips:>8.1f}{gflop:>11.2f}{util:>7.0%}")
    if "64" in args.sizes.split(",") and "vaegan" in args.kinds:
        for precision, channels_last in modes[:: len(modes) - 1]:
            ips, gflop = measure(make_step("vaegan", 64, precision, channels_last, plain=True), args.steps)
            ours = results[("vaegan", 64, precision, channels_last)]
            print(f"plain one-backward vaegan 64 {precision}{' + channels-last' if channels_last else ''}: "
                  f"{ips:.1f} img/s, {gflop:.2f} GFLOP/img; ours/plain = {ours / ips:.2f}")
        if ("vaegan", 64, "bf16", True) in results:
            print(f"bf16+channels-last / fp32 (vaegan 64): "
                  f"{results[('vaegan', 64, 'bf16', True)] / results[('vaegan', 64, 'fp32', False)]:.2f}x")


if __name__ == "__main__":
    main()
