"""Latency of `attrgan serve` over real HTTP on loopback: one slider edit, one photo upload
(decode + MTCNN alignment + regressor + encoder), and a burst of slider moves (200 in 10 s
from one client with a browser's 6 connections), against the bare ``Studio.edit`` call in the
same process. The networks are the paper's at ``--size`` with random weights (latency does
not depend on training); memory is the process's resident set before and after.

Run: .venv/bin/python benchmarks/serve_latency.py [--size 64] [--edits 200] [--uploads 20]
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from common import reported_cpu_flags
from PIL import Image

from attrgan.config import ModelConfig
from attrgan.data.dataset import Standardizer
from attrgan.editing.studio import Studio
from attrgan.editing.webapp import create_app, make_server
from attrgan.evaluation.regressor import LoadedRegressor, Outputs, Regressor
from attrgan.nets.loaded import ConditionalModel
from attrgan.nets.models import build_models

ATTRIBUTES = 73


def random_studio(size: int) -> Studio:
    """A Studio over the paper's networks at ``size`` (random weights), a regressor and vectors."""
    torch.manual_seed(0)
    names = [f"attribute {i}" for i in range(ATTRIBUTES)]
    scaler = Standardizer(names, np.zeros(ATTRIBUTES, np.float32), np.ones(ATTRIBUTES, np.float32))
    cfg = ModelConfig(image_size=size)
    nets = {name: net.eval() for name, net in build_models(cfg, ATTRIBUTES).items()}
    model = ConditionalModel("vaegan", nets, scaler, size, cfg.z_dim, Path("random"))
    regressor = LoadedRegressor([Regressor(size, [64, 128, 256], 2048, ATTRIBUTES).eval()],
                                scaler, size, Path("random"),
                                Outputs.continuous(ATTRIBUTES))
    vectors = {name: torch.randn(cfg.z_dim) for name in names}
    return Studio(model, regressor, vectors)


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def summary(name: str, ms: list[float]) -> str:
    p95 = float(np.percentile(ms, 95))
    return f"{name:<44}{statistics.median(ms):>9.1f} ms median{p95:>9.1f} ms p95   (n={len(ms)})"


def fetch(url: str, data: bytes | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=120) as response:
        return response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--uploads", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; cpu flags: {', '.join(reported_cpu_flags())}")
    studio = random_studio(args.size)
    server = make_server(create_app(studio), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    from skimage.data import astronaut

    photo = io.BytesIO()
    Image.fromarray(astronaut()).save(photo, format="JPEG", quality=92)
    photo_id = json.loads(fetch(base + "/api/photos", photo.getvalue()))["id"]  # also warms MTCNN up
    uploads = [timed(lambda: fetch(base + "/api/photos", photo.getvalue())) for _ in range(args.uploads)]
    values = np.round(np.linspace(-3, 3, args.edits), 2)
    studio.edit(photo_id, {}, "condition")  # warm-up
    direct = [timed(lambda v=v: studio.edit(photo_id, {"attribute 1": float(v)}, "condition")) for v in values]
    url = base + f"/api/edit.png?photo={photo_id}&set=attribute%201%3D"
    edits = [timed(lambda v=v: fetch(url + str(v))) for v in values]
    latent = [timed(lambda v=v: fetch(url.replace("photo=", "mode=latent&photo=") + str(v))) for v in values]
    samples = [timed(lambda s=s: fetch(base + f"/api/sample.png?n=16&seed={s}")) for s in range(20)]

    before = resident_mib()
    burst: list[float] = []
    with ThreadPoolExecutor(6) as pool:  # 200 slider moves in 10 s, open loop
        started = time.perf_counter()
        futures = []
        for i, v in enumerate(np.tile(values, 2)[:200]):
            time.sleep(max(0.0, started + i * 0.05 - time.perf_counter()))
            futures.append(pool.submit(lambda v=v: burst.append(timed(lambda: fetch(url + str(v))))))
        for future in futures:
            future.result()
        burst_s = time.perf_counter() - started
    server.shutdown()
    server.server_close()

    print(f"{args.size}x{args.size} model, {ATTRIBUTES} attributes, one client over loopback HTTP")
    print(summary("Studio.edit in-process (baseline)", direct))
    print(summary("slider edit, condition (GET /api/edit.png)", edits)
          + f"   {statistics.median(edits) / statistics.median(direct):.1f}x baseline")
    print(summary("slider edit, latent vector", latent))
    print(summary("16 samples (GET /api/sample.png)", samples))
    print(summary("photo upload (POST /api/photos, 512x512 JPEG)", uploads))
    print(summary(f"burst: 200 edits sent in 10 s, done in {burst_s:.1f} s", burst))
    print(f"resident memory: {before:.0f} MiB before the burst, {resident_mib():.0f} MiB after")


if __name__ == "__main__":
    main()
