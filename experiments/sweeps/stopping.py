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


#: Signals held back by :func:`deferred` (the first one is raised at its end);
#: None outside such a block.
_held: list[int] | None = None


def _raise(signum: int, frame: FrameType | None) -> None:
    if _held is not None:
        _held.append(signum)
        return
    raise Stopped(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A step that must finish together, such as committing a row and counting it: a
    stop signal arriving inside the block raises :class:`Stopped` only once the block
    has run to its end."""
    global _held
    outer = _held
    _held = [] if outer is None else outer
    try:
        yield
    finally:
        held, _held = _held, outer
        if outer is None and held:
            raise Stopped(held[0])


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
