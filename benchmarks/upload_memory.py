"""Peak memory of `attrgan serve` under parallel large uploads of a real face, and what it keeps
afterwards: 8 clients each POST a 7,000x7,000 RGBA PNG of scikit-image's astronaut (one face;
enlarged by pixel repetition, so the file stays small on the wire while the decoded image is
49 megapixels, just under the decode cap), at once. The studio decodes one upload at a time
inside its bounded queue (reduced to 2,048 px, data_prep.decode), detects the face with MTCNN
and warps the crop, then hands the freed heap back to the OS (malloc_trim). The baseline, in the
same process, serves the same burst without that hand-back: each request thread's heap arena
keeps what the decoder freed. Memory is the process's resident set, sampled every 5 ms.
Targets: a peak under 2.5 GB, and back within 200 MB of idle after the burst.

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
from common import cpu_model, reported_cpu_flags
from PIL import Image
from serve_latency import random_studio, resident_mib

import attrgan.editing.studio
from attrgan.editing.webapp import create_app, make_server
from attrgan.runtime.limits import release_freed_memory


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


def face_png(side: int) -> bytes:
    """The astronaut photo (one face) enlarged to ``side`` x ``side`` by pixel repetition, as an RGBA PNG."""
    from skimage.data import astronaut

    buffer = io.BytesIO()
    Image.fromarray(astronaut()).convert("RGBA").resize((side, side), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def burst(studio, upload: bytes, clients: int) -> tuple[float, float, float, list[int], float]:
    """Serve ``studio``, warm it up with one upload, then ``clients`` parallel uploads: (idle MiB,
    peak MiB, MiB 1 s after the burst, the answers' statuses, seconds)."""
    server = make_server(create_app(studio), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/photos"
    try:
        post(url, upload)  # warm-up: MTCNN loaded, allocator settled
        idle = resident_mib()
        with PeakSampler() as served, ThreadPoolExecutor(clients) as pool:
            started = time.perf_counter()
            statuses = list(pool.map(lambda _: post(url, upload), range(clients)))
            seconds = time.perf_counter() - started
        time.sleep(1.0)
        return idle, served.peak, resident_mib(), sorted(set(statuses)), seconds
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--side", type=int, default=7000)
    args = parser.parse_args()
    print(f"torch {torch.__version__}; cpu: {cpu_model()}; flags: {', '.join(reported_cpu_flags())}")
    upload = face_png(args.side)
    print(f"{args.clients} parallel uploads of a {args.side}x{args.side} RGBA PNG of a face ({len(upload) / 1e6:.2f} "
          "MB "
          "each), resident set in MiB:")
    print(f"{'after each upload':<34}{'idle':>7}{'peak':>14}{'1 s after':>14}  answers")
    for label, hand_back in (("heap kept (baseline)", lambda: None), ("freed heap handed back", release_freed_memory)):
        attrgan.editing.studio.release_freed_memory = hand_back
        idle, peak, after, statuses, seconds = burst(random_studio(32), upload, args.clients)
        print(f"{label:<34}{idle:7.0f}{peak:8.0f} (+{peak - idle:4.0f}){after:8.0f} (+{after - idle:4.0f})  {statuses} "
              f"in {seconds:.1f} s")
    print(f"targets (the second row): peak under 2,500 MB (2,384 MiB): {'met' if peak < 2384 else 'missed'}; "
          f"back within 200 MB (191 MiB) of idle: {'met' if after - idle < 191 else 'missed'}")


if __name__ == "__main__":
    main()
