"""`codesign weights`: write layers to a weight file that ``--weights`` reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import safetensors.numpy

from codesign.experiments.jobs.compress import Layer

#: The file kinds written, by suffix (those :func:`codesign.models.workloads.load_weights`
#: reads).
SUFFIXES = (".safetensors", ".npz")


def save_layers(layers: list[Layer], path: str | Path) -> Path:
    """Write ``layers`` (name -> (out, in) matrix, in order) to ``path``: ``.safetensors``
    (each layer a tensor of its own dtype) or ``.npz`` (each an array); parent
    directories are created. A suffix other than :data:`SUFFIXES` raises ``ValueError``
    before anything is written."""
    out = Path(path)
    if out.suffix not in SUFFIXES:
        raise ValueError(f"{out}: the weight file must end in {' or '.join(SUFFIXES)}")
    arrays = {layer.name: np.ascontiguousarray(layer.weights) for layer in layers}
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".safetensors":
        safetensors.numpy.save_file(arrays, out)
    else:
        np.savez(out, **arrays)
    return out
