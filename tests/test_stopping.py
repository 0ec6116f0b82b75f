"""SIGINT and SIGTERM inside :func:`stop_on_signals`, and steps that must finish together
(:func:`deferred`)."""

from __future__ import annotations

import os
import signal

import pytest

from codesign.experiments.sweeps.stopping import Stopped, deferred, stop_on_signals


def test_a_signal_raises_stopped_with_its_exit_code():
    with pytest.raises(Stopped) as info, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs at the next bytecode
            pass
    assert info.value.exit_code == 143


def test_a_signal_inside_a_deferred_step_waits_for_its_end():
    done = []
    with pytest.raises(Stopped) as info, stop_on_signals():
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.extend(range(1000))
            with deferred():  # nested: still held until the outer block ends
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("inner")
            done.append("after inner")
        done.append("never")
    assert done[-2:] == ["inner", "after inner"]
    assert info.value.signum == signal.SIGINT


def test_previous_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        pass
    assert signal.getsignal(signal.SIGTERM) is before
