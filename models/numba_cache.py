"""Where numba keeps the compiled kernels of :mod:`codesign.models` between processes.

Every numba kernel here is compiled with ``cache=True``: the first process compiles
(seconds per kernel), later processes load the machine code. numba caches beside the
sources (``models/__pycache__``) or, when that directory is read-only (a package
installed by another user), in the user-wide cache (``$XDG_CACHE_HOME/numba``, else
``~/.cache/numba``). When neither is writable — a read-only install with a read-only
home, as in some containers — numba cannot cache at all and refuses to define the
kernels. :func:`configure` then points ``NUMBA_CACHE_DIR`` at a per-user directory under
the system's temporary directory. A ``NUMBA_CACHE_DIR`` the user set is always kept.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SOURCES = Path(__file__).resolve().parent
"""The folder of the kernels' source files."""


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists or can be created, and a file can be created in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def user_cache() -> Path:
    """numba's user-wide cache folder: ``$XDG_CACHE_HOME/numba``, else ``~/.cache/numba``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "numba"


def fallback_dir(sources: Path = SOURCES, user: Path | None = None) -> Path | None:
    """The cache folder numba needs to be given, or None: None when ``NUMBA_CACHE_DIR``
    is set or numba can cache beside ``sources`` or in ``user`` (default
    :func:`user_cache`); else ``codesign-numba-<uid>`` in the temporary directory."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(sources / "__pycache__") or _writable(user or user_cache()):
        return None
    return Path(tempfile.gettempdir()) / f"codesign-numba-{os.getuid()}"


def configure() -> None:
    """Give numba the :func:`fallback_dir` when it needs one (before or after numba is
    imported; kernels defined afterwards use it)."""
    folder = fallback_dir()
    if folder is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    config = sys.modules.get("numba.core.config")
    if config is not None:
        config.CACHE_DIR = str(folder)
