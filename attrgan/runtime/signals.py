"""Signal handling shared by the commands: SIGTERM handled like Ctrl-C (the work in flight stops
with KeyboardInterrupt, so atomic writes remove their temporaries, and the command exits 128 +
the signal's number), and the handlers training installs to finish its update first."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator


class Interrupted(KeyboardInterrupt):
    """A signal stopped the command; ``exit_code`` is 128 + its number (130 Ctrl-C, 143 SIGTERM)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def handling(handler: Callable, *signums: int) -> Iterator[None]:
    """``handler`` for ``signums`` inside the block (main thread only: elsewhere Python cannot
    install handlers, and the block runs with the process's own); the previous ones come back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def terminate_as_interrupt(what: str) -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Interrupted` (message: "interrupted by SIGTERM:
    ``what``")."""
    def interrupt(signum, _frame) -> None:
        raise Interrupted(signum, f"interrupted by {signal.Signals(signum).name}: {what}")

    with handling(interrupt, signal.SIGTERM):
        yield
