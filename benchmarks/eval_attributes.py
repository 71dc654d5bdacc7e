"""Throughput of eval-attributes' inner loop at 64x64: generate Dec(z, y) and regress the
attributes of the generated faces, batched (as eval-attributes runs it) vs a naive
per-query loop (batch 1), with FLOPs per image and utilisation against a matmul peak
measured in the same run (bf16 where the CPU has it natively, else fp32).

Run: .venv/bin/python benchmarks/eval_attributes.py [--queries 512]
"""
from __future__ import annotations

import argparse
import time

import torch
from common import matmul_peak
from torch.utils.flop_counter import FlopCounterMode

from attrgan.config import ModelConfig
from attrgan.evaluation.regressor import Regressor
from attrgan.nets.models import Decoder

ATTRIBUTES = 73


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    fp32, bf16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16, n=256, repeats=2)
    dtype, peak = (torch.bfloat16, bf16) if bf16 > fp32 / 2 else (torch.float32, fp32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul peak fp32 {fp32:.0f}, "
          f"bf16 {bf16:.0f} GFLOP/s; measuring in {str(dtype).split('.')[-1]}")
    cfg = ModelConfig(image_size=64)
    decoder, regressor = Decoder(cfg, ATTRIBUTES).eval(), Regressor(64, [64, 128, 256], 2048, ATTRIBUTES).eval()
    z, y = torch.randn(args.queries, cfg.z_dim), torch.randn(args.queries, ATTRIBUTES)

    def run(batch: int, n: int) -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            for i in range(0, n, batch):
                regressor(decoder(z[i : i + batch], y[i : i + batch]))

    with FlopCounterMode(display=False) as counter:
        run(args.batch, args.batch)
    gflop = counter.get_total_flops() / args.batch / 1e9
    run(args.batch, args.batch)  # warm-up
    started = time.perf_counter()
    run(args.batch, args.queries)
    batched = args.queries / (time.perf_counter() - started)
    naive_n = min(64, args.queries)
    run(1, 4)
    started = time.perf_counter()
    run(1, naive_n)
    naive = naive_n / (time.perf_counter() - started)
    print(f"decoder + regressor: {gflop:.2f} GFLOP per image")
    print(f"batched ({args.batch}): {batched:.1f} img/s, utilisation {batched * gflop / peak:.0%}")
    print(f"per-query loop (batch 1): {naive:.1f} img/s; batched / per-query = {batched / naive:.1f}x")


if __name__ == "__main__":
    main()
