"""Peak memory of `attrgan serve` under parallel large uploads: 8 clients each POST a
7,000x7,000 one-colour RGBA PNG (~0.2 MB on the wire, 49 megapixels, just under the decode
cap) at once. The studio decodes uploads one at a time inside its bounded queue; the
baseline, in the same process, decodes the same 8 files in 8 threads at once (what the
server did before: decoding ran before the queue). Memory is the process's resident set,
sampled every 5 ms; the target is a server under 2.5 GB.

Run: .venv/bin/python benchmarks/upload_memory.py [--clients 8] [--side 7000]
"""
from __future__ import annotations

import argparse
import io
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import torch
from common import reported_cpu_flags
from PIL import Image
from serve_latency import random_studio, resident_mib

from attrgan.editing.edits import decode_photo
from attrgan.editing.webapp import create_app, make_server


class PeakSampler:
    """The highest resident set seen while the block runs."""

    def __enter__(self) -> "PeakSampler":
        self.peak, self._running = resident_mib(), True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, resident_mib())
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self._running = False
        self._thread.join()


def post(url: str, data: bytes) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=600) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--side", type=int, default=7000)
    args = parser.parse_args()
    print(f"torch {torch.__version__}; cpu flags: {', '.join(reported_cpu_flags())}")
    buffer = io.BytesIO()
    Image.new("RGBA", (args.side, args.side), (200, 120, 90, 255)).save(buffer, format="PNG")
    upload = buffer.getvalue()
    studio = random_studio(32)
    server = make_server(create_app(studio), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/photos"
    post(url, upload)  # warm-up: MTCNN loaded, allocator settled
    idle = resident_mib()

    with PeakSampler() as served, ThreadPoolExecutor(args.clients) as pool:
        started = time.perf_counter()
        statuses = list(pool.map(lambda _: post(url, upload), range(args.clients)))
        served_s = time.perf_counter() - started
    server.shutdown()
    server.server_close()
    with PeakSampler() as unqueued, ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(lambda _: decode_photo(upload, "upload"), range(args.clients)))

    print(f"{args.clients} parallel uploads of a {args.side}x{args.side} RGBA PNG ({len(upload) / 1e6:.2f} MB each);"
          f" answers {sorted(set(statuses))} in {served_s:.1f} s")
    print(f"server resident set, idle after a warm-up upload:     {idle:8.0f} MiB")
    print(f"peak while serving the {args.clients} uploads (queued decode):  {served.peak:8.0f} MiB"
          f"   (+{served.peak - idle:.0f} MiB)")
    print(f"baseline: {args.clients} decodes at once in this process:      {unqueued.peak:8.0f} MiB"
          f"   (+{unqueued.peak - idle:.0f} MiB, {(unqueued.peak - idle) / max(served.peak - idle, 1):.1f}x the queued rise)")
    print(f"target: under 2,500 MB (2,384 MiB): {'met' if served.peak < 2384 else 'missed'}")


if __name__ == "__main__":
    main()
