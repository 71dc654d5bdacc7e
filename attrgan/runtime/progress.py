"""Progress bars that suit their terminal: a live tqdm bar on a TTY; elsewhere (CI, nohup,
job schedulers) the same figures as one plain log line every LOG_INTERVAL_S seconds and at
the end, instead of a carriage-return redraw per update."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm

LOG_INTERVAL_S = 30.0


class _LineWriter:
    """A file for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(enabled: bool = True, **kwargs):
    """A tqdm progress bar (``kwargs`` as for tqdm) that logs lines when stderr is not a TTY."""
    if enabled and not sys.stderr.isatty():
        kwargs.update(file=_LineWriter(sys.stderr), mininterval=LOG_INTERVAL_S, maxinterval=LOG_INTERVAL_S,
                      ascii=True, ncols=120, dynamic_ncols=False)
    else:
        kwargs.setdefault("dynamic_ncols", True)
    return tqdm(disable=not enabled, **kwargs)
