"""SIGTERM handled like Ctrl-C: the work in flight stops with KeyboardInterrupt, so atomic
writes remove their temporaries, and the command exits 128 + the signal's number."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Interrupted(KeyboardInterrupt):
    """A signal stopped the command; ``exit_code`` is 128 + its number (130 Ctrl-C, 143 SIGTERM)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def terminate_as_interrupt(what: str) -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Interrupted` (message: "interrupted by SIGTERM:
    ``what``"); the previous handler comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, _frame) -> None:
        raise Interrupted(signum, f"interrupted by {signal.Signals(signum).name}: {what}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
