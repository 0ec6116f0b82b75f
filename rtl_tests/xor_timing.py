"""The XOR decoder's timing oracle, computed from the patch stream a test sends.

The rule (the decoder's documentation and its sidecar's ``protocol.cycles``), restated
here so that the RTL benches do not take it from the code under test: with every stream
ready, a block with k patches occupies max(1, k) cycles (one patch applied per cycle),
plus one when it is the first block of its plane and k >= 1 (the plane's first patch is
fetched in that block's first cycle).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def block_cycles(blocks: Sequence[int], patch_blocks: Sequence[Sequence[int]]) -> list[int]:
    """Cycles of every block, plane by plane: ``blocks[p]`` blocks in plane p, whose
    patches name the blocks ``patch_blocks[p]`` (in stream order)."""
    cycles = []
    for count, named in zip(blocks, patch_blocks, strict=True):
        k = Counter(named)
        cycles += [max(1, k[b]) + int(b == 0 and k[b] > 0) for b in range(count)]
    return cycles
