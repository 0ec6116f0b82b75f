"""Coarse block pruning: b×b blocks kept or dropped, kept blocks stored dense."""

from __future__ import annotations

import numpy as np

from codesign.models.format import Decoded, Encoded, Format, Stream, value_width
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


def block_prune(weights: np.ndarray, sparsity: float, b: int) -> np.ndarray:
    """Drop whole b×b blocks by L2 norm until at least ``sparsity`` of the weights
    are pruned (edge blocks count their in-bounds area); kept blocks are unchanged."""
    check_sparsity(sparsity)
    blocks = _blocks(weights.astype(np.float64), b)
    area = _blocks(np.ones(weights.shape), b).sum(axis=(2, 3)).ravel()
    norms = np.sqrt((blocks**2).sum(axis=(2, 3))).ravel()
    order = np.argsort(-norms, kind="stable")
    budget = (1.0 - sparsity) * weights.size
    n_keep = int(np.searchsorted(np.cumsum(area[order]), budget, side="right"))
    keep = np.zeros(norms.size, dtype=bool)
    keep[order[:n_keep]] = True
    keep_map = np.broadcast_to(keep.reshape(blocks.shape[:2])[:, :, None, None], blocks.shape)
    return np.where(_unblocks(keep_map, weights.shape), weights, 0).astype(weights.dtype)


class BlockFormat(Format):
    """Index bits ⌈m/b⌉·⌈n/b⌉ (one per block); values = in-bounds area of kept blocks·b."""

    name = "block"
    summary = "b×b blocks kept or dropped, one bit per block"
    memory_per_weight = 30

    def prune(self, weights: np.ndarray, sparsity: float, spec: Spec | None = None) -> np.ndarray:
        """Block pruning by L2 norm with the spec's block size."""
        spec = spec if isinstance(spec, BlockSpec) else BlockSpec()
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
