"""Stopping a command on SIGINT (Ctrl-C) or SIGTERM the same way.

Inside :func:`stop_on_signals` both signals raise :class:`Stopped` in the main thread,
a ``KeyboardInterrupt`` that carries the signal: a sweep cancels its pending points,
kills its workers and keeps the committed rows, a file being written is left as it was
(:mod:`codesign.files`), and the command exits with ``128 + signal`` (130 for SIGINT,
143 for SIGTERM) after one line, without a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: The signals that stop a command.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 128 + its number."""
        return 128 + self.signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Stopped`; the previous
    handlers come back after it. Outside the main thread (where Python runs signal
    handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
