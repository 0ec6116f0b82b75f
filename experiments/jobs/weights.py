"""`codesign weights`: write layers to a weight file that ``--weights`` reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import safetensors.numpy

from codesign.experiments.jobs.compress import Layer
from codesign.files import replacing

#: The file kinds written, by suffix (those :mod:`codesign.models.weight_files` reads).
SUFFIXES = (".safetensors", ".npz")


def save_layers(layers: list[Layer], path: str | Path) -> Path:
    """Write ``layers`` (name -> (out, in) matrix, in order) to ``path``: ``.safetensors``
    (each layer a tensor of its own dtype) or ``.npz`` (each an array), atomically; parent
    directories are created. A suffix other than :data:`SUFFIXES` raises ``ValueError``
    before anything is written."""
    out = Path(path)
    if out.suffix not in SUFFIXES:
        raise ValueError(f"{out}: the weight file must end in {' or '.join(SUFFIXES)}")
    arrays = {layer.name: np.ascontiguousarray(layer.weights) for layer in layers}
    with replacing(out) as tmp:
        if out.suffix == ".safetensors":
            safetensors.numpy.save_file(arrays, tmp)
        else:
            np.savez(tmp, **arrays)
    return out
