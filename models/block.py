"""Coarse block pruning: b×b blocks kept or dropped, kept blocks stored dense."""

from __future__ import annotations

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, FormatError, Stream, value_width
from codesign.models.specs import BlockSpec, Spec
from codesign.models.workloads import check_sparsity


def _blocks(a: np.ndarray, b: int) -> np.ndarray:
    """(block_rows, block_cols, b, b) tiling of ``a``, zero-padded at the edges."""
    m, n = a.shape
    mb, nb = -(-m // b), -(-n // b)
    padded = np.zeros((mb * b, nb * b), dtype=a.dtype)
    padded[:m, :n] = a
    return padded.reshape(mb, b, nb, b).transpose(0, 2, 1, 3)


def _unblocks(blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mb, nb, b, _ = blocks.shape
    return blocks.transpose(0, 2, 1, 3).reshape(mb * b, nb * b)[: shape[0], : shape[1]]


BLOCK_SPARSITY_TOLERANCE = 0.01
"""How far (absolute) a block-pruned layer's sparsity may lie from the requested one.

Block pruning moves in steps of one b×b block (b²/(m·n) of a layer: 4×4 blocks are
1.6 % of the digits MLP's 10×100 output layer) and keeps the count of blocks that brings
it nearest the request, so it is held to twice the tolerance of the formats whose
structure fixes the sparsity (:data:`~codesign.models.format.SPARSITY_TOLERANCE`);
farther, it refuses and names the sparsities it reaches and a block size that reaches
the request."""


def _block_order(weights: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, area, kept)``: the blocks by decreasing L2 norm (stable), each block's
    in-bounds area, and the weights kept by keeping the first k blocks of ``order``
    (``kept[k]``, k = 0..blocks)."""
    blocks = _blocks(weights.astype(np.float64), b)
    area = _blocks(np.ones(weights.shape), b).sum(axis=(2, 3)).ravel()
    norms = np.sqrt((blocks**2).sum(axis=(2, 3))).ravel()
    order = np.argsort(-norms, kind="stable")
    return order, area, np.concatenate([[0.0], np.cumsum(area[order])])


def _nearest_count(kept: np.ndarray, budget: float) -> int:
    """The count of blocks whose kept area is nearest ``budget`` (a tie keeps fewer)."""
    above = int(np.searchsorted(kept, budget, side="left"))
    if above == 0:
        return 0
    if above == kept.size:
        return kept.size - 1
    return above if kept[above] - budget < budget - kept[above - 1] else above - 1


def block_prune(weights: np.ndarray, sparsity: float, b: int) -> np.ndarray:
    """Keep the b×b blocks of largest L2 norm, as many as bring the kept weights
    nearest ``(1 − sparsity)·m·n`` (edge blocks count their in-bounds area; a tie keeps
    fewer); kept blocks are unchanged."""
    check_sparsity(sparsity)
    order, _, kept = _block_order(weights, b)
    n_keep = _nearest_count(kept, (1.0 - sparsity) * weights.size)
    grid = _blocks(np.ones(weights.shape, dtype=bool), b).shape
    keep = np.zeros(order.size, dtype=bool)
    keep[order[:n_keep]] = True
    keep_map = np.broadcast_to(keep.reshape(grid[:2])[:, :, None, None], grid)
    return np.where(_unblocks(keep_map, weights.shape), weights, 0).astype(weights.dtype)


def block_reach(weights: np.ndarray, sparsity: float, b: int) -> tuple[float, float, float]:
    """``(reached, below, above)``: the sparsity :func:`block_prune` reaches with b×b
    blocks, and the nearest sparsities it can reach at or below and at or above the
    request (keeping one block more or one fewer)."""
    _, _, kept = _block_order(weights, b)
    budget = (1.0 - sparsity) * weights.size
    n_keep = _nearest_count(kept, budget)
    points = 1.0 - kept / weights.size
    at_or_below = points[points <= sparsity + 1e-12]
    at_or_above = points[points >= sparsity - 1e-12]
    below = float(at_or_below.max()) if at_or_below.size else float(points.min())
    above = float(at_or_above.min()) if at_or_above.size else float(points.max())
    return float(points[n_keep]), below, above


def _reaching_block(weights: np.ndarray, sparsity: float, b: int) -> int | None:
    """The largest block size below ``b`` (halving it) whose pruning reaches
    ``sparsity`` within :data:`BLOCK_SPARSITY_TOLERANCE`; None when not even b = 1 does."""
    size = b
    while size > 1:
        size //= 2
        if abs(block_reach(weights, sparsity, size)[0] - sparsity) <= BLOCK_SPARSITY_TOLERANCE:
            return size
    return None


class BlockFormat(Format):
    """Index bits ⌈m/b⌉·⌈n/b⌉ (one per block); values = in-bounds area of kept blocks·b."""

    name = "block"
    summary = "b×b blocks kept or dropped, one bit per block"
    memory_per_weight = 30

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """Block pruning by L2 norm with the spec's block size; a sparsity its blocks
        cannot reach within :data:`BLOCK_SPARSITY_TOLERANCE` raises :class:`FormatError`
        naming the sparsities they reach and a block size that reaches the request."""
        spec = spec if isinstance(spec, BlockSpec) else BlockSpec()
        reached, below, above = block_reach(weights, check_sparsity(sparsity), spec.b)
        if abs(reached - sparsity) > BLOCK_SPARSITY_TOLERANCE:
            m, n = weights.shape
            blocks = -(-m // spec.b) * -(-n // spec.b)
            better = _reaching_block(weights, sparsity, spec.b)
            use = f"use b={better}" if better else "no smaller block reaches it"
            raise FormatError(
                f"block keeps or drops whole {spec.b}x{spec.b} blocks ({blocks} on this "
                f"{m}x{n} layer), so the sparsities nearest the requested {sparsity:.6g} it "
                f"reaches are {below:.6g} and {above:.6g}, farther than "
                f"{BLOCK_SPARSITY_TOLERANCE}; ask for one of those, or {use}"
            )
        return block_prune(weights, sparsity, spec.b)

    def _encode(self, weights: np.ndarray, spec: BlockSpec) -> Encoded:
        blocks = _blocks(weights, spec.b)
        inside = _blocks(np.ones(weights.shape, dtype=bool), spec.b)
        kept = (blocks != 0).any(axis=(2, 3))
        values = blocks[kept][inside[kept]]
        b = value_width(weights.dtype)
        streams = {
            "block_mask": Stream(kept.ravel().astype(np.uint8), 1, "index"),
            "values": Stream(values, b, "value"),
        }
        return self._bundle(weights, spec, streams, kept.size, values.size * b)

    def decode(self, enc: Encoded) -> Decoded:
        b = enc.spec.b
        inside = _blocks(np.ones(enc.shape, dtype=bool), b)
        kept = enc.streams["block_mask"].data.astype(bool).reshape(inside.shape[:2])
        blocks = np.zeros(inside.shape, dtype=enc.dtype)
        sel = np.zeros(inside.shape, dtype=bool)
        sel[kept] = inside[kept]
        blocks[sel] = enc.streams["values"].data
        mask = np.broadcast_to(kept[:, :, None, None], inside.shape) & inside
        return Decoded(_unblocks(blocks, enc.shape).copy(), _unblocks(mask, enc.shape).copy())
