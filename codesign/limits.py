"""The memory limit every command checks its work against before it allocates.

Every large allocation or exponential search of the project is estimated first, from
the shapes and the spec (a *pre-flight*): a layer's encoding and its search tables, a
simulated machine, a synthesized block, a weight file's tensors. When the estimate
exceeds the limit, :func:`check_memory` raises :class:`ResourceError` with one line:
what the work needs, the limit and the machine's memory, and the parameter to lower.
Nothing has been allocated by then, so the command ends at once with exit code 2
instead of being killed by the kernel minutes later.

**The limit.** 75 % of the machine's memory (:func:`machine_memory`: the physical
memory, or a lower cgroup limit of this process), unless the ``CODESIGN_MAX_MEMORY``
environment variable gives another (``4G``, ``512M``, ``1.5T``, a byte count, or a
percentage of the machine's memory such as ``50%``; :func:`parse_size`). `codesign
--max-memory SIZE` sets that variable, so sweep workers started by the command read the
same limit. Sizes use binary units (``G`` = GiB = 2^30 bytes).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

ENV = "CODESIGN_MAX_MEMORY"
"""Environment variable holding the memory limit (:func:`parse_size` syntax)."""
DEFAULT_FRACTION = 0.75
"""Default limit: this fraction of :func:`machine_memory`."""

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*%")
_CGROUP_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


class ResourceError(ValueError):
    """Work that would need more memory than the limit; the message names what it
    needs, the limit, the machine's memory and the parameter to lower."""


def machine_memory() -> int:
    """Bytes of memory this process can have: the physical memory, or the cgroup
    limit when one is set lower."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 4 * 2**30
    for path in _CGROUP_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < physical:
            physical = int(text)
    return int(physical)


def parse_size(text: str, what: str = "--max-memory") -> int:
    """Bytes of a size: ``4G``, ``4GiB``, ``512M``, ``1.5T``, ``1000000`` (bytes) or
    ``50%`` (of :func:`machine_memory`); ``ValueError`` naming ``what`` otherwise."""
    raw = str(text).strip()
    percent = _PERCENT.fullmatch(raw)
    size = _SIZE.fullmatch(raw)
    if percent:
        value = float(percent.group(1)) / 100 * machine_memory()
    elif size:
        value = float(size.group(1)) * _UNITS[size.group(2).lower()]
    else:
        value = 0.0
    if not (percent or size) or not math.isfinite(value) or value < 1:
        raise ValueError(
            f"{what}: {text!r} is not a memory size; expected a number of bytes with an "
            f"optional unit K, M, G, T (powers of 1024), e.g. 4G or 512M, or a percentage "
            f"of this machine's memory, e.g. 50%"
        )
    return int(value)


def human(nbytes: float) -> str:
    """A byte count for people: ``74.5 GiB``, ``512 MiB``, ``900 bytes``."""
    if nbytes < 1024:
        return f"{int(nbytes)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        nbytes /= 1024
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if nbytes < 100 else f"{nbytes:.0f} {unit}"
    raise AssertionError("unreachable")


def set_memory_limit(text: str) -> int:
    """Make ``text`` (:func:`parse_size`) the limit of this process and of the
    processes it starts (through :data:`ENV`); return it in bytes."""
    limit = parse_size(text)
    os.environ[ENV] = str(text).strip()
    return limit


def memory_limit() -> int:
    """The limit in bytes: :data:`ENV` when set, else :data:`DEFAULT_FRACTION` of
    :func:`machine_memory`."""
    given = os.environ.get(ENV)
    if given:
        return parse_size(given, f"{ENV}={given}")
    return int(DEFAULT_FRACTION * machine_memory())


def limit_text() -> str:
    """The limit and where it comes from, for a message: ``the limit of 17.6 GiB (75 %
    of this machine's 23.5 GiB; --max-memory to change it)``."""
    machine = human(machine_memory())
    given = os.environ.get(ENV)
    if given:
        source = f"--max-memory {given}; this machine has {machine}"
    else:
        source = f"{DEFAULT_FRACTION:.0%} of this machine's {machine}; --max-memory to change it"
    return f"the limit of {human(memory_limit())} ({source})"


def resident_bytes() -> int:
    """Bytes this process holds in memory now (its resident set; 0 when unknown)."""
    try:
        fields = Path("/proc/self/statm").read_text().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


@dataclasses.dataclass(frozen=True)
class Need:
    """One part of a piece of work's peak memory: ``nbytes``, ``what`` it is (``the
    trellis survivors of 2^12 states``) and ``lower``: the parameter that shrinks it
    (``n_ff or segment``)."""

    nbytes: int
    what: str
    lower: str


def check_memory(task: str, needs: Iterable[Need], resident: bool = True) -> int:
    """Refuse ``task`` (``compress layer fc1 in viterbi``) when its ``needs`` — plus
    what this process holds already when ``resident`` — exceed :func:`memory_limit`:
    :class:`ResourceError` naming the total, its largest part and that part's
    parameter to lower. Returns the estimate (bytes) otherwise."""
    parts = [n for n in needs if n.nbytes > 0]
    held = resident_bytes() if resident else 0
    total = held + sum(n.nbytes for n in parts)
    if total <= memory_limit():
        return total
    top = max(parts, key=lambda n: n.nbytes, default=Need(held, "this process", "the input"))
    raise ResourceError(
        f"{task} needs about {human(total)} of memory ({top.what}: {human(top.nbytes)}), "
        f"more than {limit_text()}; lower {top.lower}"
    )
