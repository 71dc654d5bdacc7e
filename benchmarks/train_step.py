"""Training-step throughput per model kind, image size and precision, batch 64, on this machine.

Prints images/s, model FLOPs per image per step (counted with FlopCounterMode on one real
step) and the GFLOP/s they make (beside a square-matmul figure measured in the same run), and for the VAE/GAN
two baselines run in the same process:
  reference  the three-pass step attrgan used before (attrgan/nets/reference_steps.py): exact, but
             the decoder is backpropagated twice and D's batch walked by three full passes;
  plain      one combined backward over the summed losses (the usual shortcut, which mixes
             every loss into every network: not the paper's training, a speed yardstick only).
With --compile, the exact step also runs with torch.compile'd networks (compile time printed).

With --levers, the exact step also runs under each given config override (the speckle levers:
model.upsample=transposed4|blur|resize|bilinear, model.dis_norm=spectral, loss.r1_weight=1, the
R1 pass then taken on every step, so its lazy cost is a quarter of the difference with
r1_every=4; loss.dis_augment=[translation,cutout]), and the VAE/GAN's ratio to the default step
is printed. --upsample transposed,resize is the older spelling of --levers model.upsample=resize.

Run: .venv/bin/python benchmarks/train_step.py [--steps 3] [--sizes 32,64] [--kinds vaegan,vae,gan]
     [--device cuda] [--compile] [--levers model.upsample=blur,model.dis_norm=spectral,loss.r1_weight=1]
"""
from __future__ import annotations

import argparse
import platform
import re
import time

import torch
from common import matmul_peak, reported_cpu_flags
from torch.utils.flop_counter import FlopCounterMode

from attrgan.config import from_dict, load_config
from attrgan.nets.dis_augment import draw_augment
from attrgan.nets.losses import discriminator_loss, gaussian_nll, generator_loss, kl_prior
from attrgan.nets.models import build_models
from attrgan.nets.reference_steps import vaegan_step_reference
from attrgan.nets.steps import STEPS, Noise
from attrgan.runtime.device import compile_networks

BATCH, ATTRIBUTES = 64, 73


def make_step(kind: str, size: int, precision: str, channels_last: bool, device: torch.device,
              variant: str = "ours", compiled: bool = False, overrides: tuple[str, ...] = ()):
    """A closure running one full training step (gradients and RMSProp updates); ``variant``
    is ours, reference or plain (VAE/GAN only); ``overrides`` are dotted config overrides."""
    cfg = load_config(None, [f"model.kind={kind}", f"model.image_size={size}", *overrides])
    torch.manual_seed(0)
    nets = {n: net.to(device) for n, net in build_models(cfg.model, ATTRIBUTES).items()}
    if channels_last:
        nets = {n: net.to(memory_format=torch.channels_last) for n, net in nets.items()}
    optims = {n: torch.optim.RMSprop(net.parameters(), lr=3e-4) for n, net in nets.items()}
    step_nets = compile_networks(nets, device) if compiled else nets
    x = torch.rand(BATCH, 3, size, size, device=device) * 2 - 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randn(BATCH, ATTRIBUTES, device=device)
    augment = draw_augment(cfg.loss.dis_augment, BATCH, size, torch.Generator().manual_seed(0))
    noise = Noise(torch.randn(BATCH, 128, device=device), torch.randn(BATCH, 128, device=device),
                  dis_augment=augment and augment.to(device))
    step_fn = {"ours": STEPS[kind], "reference": vaegan_step_reference}.get(variant)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            if variant == "plain":
                _plain_vaegan_backward(step_nets, x, y, noise)
            else:
                result = step_fn(step_nets, x, y, noise, cfg.loss, r1=True)  # R1 on every step where r1_weight > 0
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


def measure(step, steps: int, device: torch.device) -> tuple[float, float, float]:
    """(images/s, GFLOP per image per step (nan where it cannot be counted), seconds of the first two calls)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    step()  # first call: compiles where torch.compile is on
    step()
    sync()
    first = time.perf_counter() - started
    try:
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
    except RuntimeError:  # the counter's module hooks refuse spectral_norm's parametrized layers (torch 2.14)
        step()
        flops = float("nan")
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    elapsed = (time.perf_counter() - started) / steps
    return BATCH / elapsed, flops / BATCH / 1e9, first


def _forward_costs(size: int, device: torch.device) -> dict[str, float]:
    """GFLOP per image of one forward pass of each VAE/GAN network (E, Dec, D)."""
    nets = {n: net.to(device) for n,
            net in build_models(from_dict({"model": {"image_size": size}}).model, ATTRIBUTES).items()}
    x, y, z = (torch.rand(BATCH, 3, size, size, device=device), torch.randn(BATCH, ATTRIBUTES, device=device),
               torch.randn(BATCH, 128, device=device))
    calls = {"E": lambda: nets["encoder"](x, y), "Dec": lambda: nets["decoder"](z, y),
             "D": lambda: nets["discriminator"](x, y)}
    costs = {}
    for name, call in calls.items():
        with FlopCounterMode(display=False) as counter:
            call()
        costs[name] = counter.get_total_flops() / BATCH / 1e9
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--sizes", default="32,64")
    parser.add_argument("--kinds", default="vaegan,vae,gan")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time the exact step with torch.compile'd networks")
    parser.add_argument("--levers", default="", help="config overrides, each timed as its own exact step, "
                                                     "e.g. model.upsample=blur,model.dis_norm=spectral")
    parser.add_argument("--upsample", default="transposed",
                        help="older spelling: transposed,resize = --levers model.upsample=resize")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, batch {BATCH}")
        peaks = {"fp32": matmul_peak(torch.float32, device=device, n=8192, repeats=10),
                 "bf16": matmul_peak(torch.bfloat16, device=device, n=8192, repeats=10)}
    else:
        print(f"{platform.processor() or platform.machine()}, flags: {' '.join(reported_cpu_flags())}; torch "
              f"{torch.__version__}, "
              f"{torch.get_num_threads()} threads, batch {BATCH}")
        peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16, n=256, repeats=2)}
    print(f"square matmul: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    channels_last = True  # what the configs select (+1-7% on these CPUs)
    precisions = ["fp32"]
    if peaks["bf16"] > peaks["fp32"] / 2:
        precisions.append("bf16")
    else:  # e.g. AVX2-only CPUs: bf16 is emulated, tens of times slower than fp32
        print("bf16 rows skipped: this CPU has no native bf16 matmul (no AVX-512 BF16 / AMX)")
    layout = " + channels-last" if channels_last else ""
    print(f"{'kind':<8}{'size':>5}  "
          f"{'step':<36}{'mode':<22}{'img/s':>8}{'GFLOP/img':>11}{'GFLOP/s':>9}{'first 2 s':>11}")
    variants = ["ours", "reference", "plain"] + (["compiled"] if args.compile else [])
    levers = [f"model.upsample={u}" for u in args.upsample.split(",")[1:]]
    levers += [lever for lever in re.split(r",(?![^\[]*\])", args.levers) if lever]  # a [list] keeps its commas
    variants += [f"ours/{lever}" for lever in levers]  # the exact step under each lever
    results: dict[tuple, tuple[float, float]] = {}
    for size in map(int, args.sizes.split(",")):
        for kind in args.kinds.split(","):
            for precision in precisions:
                for variant in variants if kind == "vaegan" else ["ours"]:
                    base = [f"model.upsample={args.upsample.split(',')[0]}"]
                    step = make_step(kind, size, precision, channels_last, device,
                                     variant="ours" if variant == "compiled" or "/" in variant else variant,
                                     compiled=variant == "compiled", overrides=(*base, *variant.split("/")[1:]))
                    ips, gflop, first = measure(step, args.steps, device)
                    results[(kind, size, precision, variant)] = ips, gflop
                    print(f"{kind:<8}{size:>5}  {variant:<36}{precision + layout:<22}{ips:>8.1f}{gflop:>11.2f}"
                          f"{ips * gflop:>9.0f}{first:>11.1f}")
    if "vaegan" not in args.kinds:
        return
    for size in map(int, args.sizes.split(",")):
        cost = _forward_costs(size, device)
        bound = 3 * cost["E"] + 7 * cost["Dec"] + 15 * cost["D"]
        print(f"vaegan {size}: forward GFLOP/img E {cost['E']:.3f}, Dec {cost['Dec']:.3f}, D {cost['D']:.3f}; "
              f"exact lower bound 3E + 7Dec + 15D = {bound:.2f}, plain 3E + 6Dec + 9D = "
              f"{3 * cost['E'] + 6 * cost['Dec'] + 9 * cost['D']:.2f}")
        for precision in precisions:
            ours, ours_flops = results[("vaegan", size, precision, "ours")]
            reference = results[("vaegan", size, precision, "reference")]
            plain = results[("vaegan", size, precision, "plain")]
            line = (f"vaegan {size} {precision}: ours/reference {ours / reference[0]:.2f}x, ours/plain "
                    f"{ours / plain[0]:.2f}x img/s; FLOPs ours/plain {ours_flops / plain[1]:.2f}")
            if args.compile:
                line += f"; compiled/eager {results[('vaegan', size, precision, 'compiled')][0] / ours:.2f}x"
            for lever in levers:
                ips, flops = results[("vaegan", size, precision, f"ours/{lever}")]
                line += f"; {lever} {ips / ours:.2f}x img/s"
                line += "" if flops != flops else f", {flops / ours_flops:.2f}x FLOPs"
            print(line)
        if "bf16" in precisions:
            print(f"vaegan {size}: bf16 / fp32 (ours) = "
                  f"{results[('vaegan', size, 'bf16', 'ours')][0] / results[('vaegan', size, 'fp32', 'ours')][0]:.2f}x")


if __name__ == "__main__":
    main()
