"""Helper processes that end with the process they serve.

A local sweep runs its points in processes forked by a multiprocessing forkserver,
beside a resource-tracker process. If the sweep process is killed (SIGKILL, the
out-of-memory killer), nothing tells them: the workers would finish their point and
wait for the next one forever, keeping the forkserver and the resource tracker alive.
:func:`die_with_parent` asks the kernel to kill the calling process when its parent
dies (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, which works even while the process
runs native code holding the GIL); elsewhere a daemon thread polls the parent pid.
The forkserver calls it at start (:mod:`.forkserver_preload`), each worker in its
initializer, so that the sweep's death kills the forkserver, whose death kills the
workers; the resource tracker then sees its last client go and exits.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time

#: ``PR_SET_PDEATHSIG`` of ``<linux/prctl.h>``.
PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the parent pid where prctl is not available.
POLL_S = 0.5


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (False once it has exited, even unreaped)."""
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        try:
            return not select.select([fd], [], [], 0)[0]
        finally:
            os.close(fd)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def die_with_parent() -> None:
    """Make the kernel kill this process with SIGKILL when its parent dies (Linux);
    elsewhere, a daemon thread exits the process when the parent pid changes."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
