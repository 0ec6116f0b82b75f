"""Example whole-model files: a transformer encoder and a ResNet-18-shaped CNN.

Seeded generators of realistic model files — every tensor kind a real checkpoint has,
named as Hugging Face / torchvision name them, with heavy-tailed weights like trained
networks — for the whole-model paths (compress, simulate, sweeps) to run on without a
download:

* ``encoder``: a stack of 6 transformer encoder blocks of width 384 and FFN width 1536
  (the shape of MiniLM-L6-H384): per block the query, key, value and attention-output
  matrices (384×384), the FFN's up (1536×384) and down (384×1536) matrices, their biases
  and two LayerNorms; an embeddings LayerNorm, a pooler (384×384 + bias) and the int64
  buffer ``embeddings.position_ids`` (1×512). 37 matrices, 10,764,288 weights.
* ``resnet18``: torchvision's ResNet-18 layout: a 7×7 stem convolution, four stages of
  two basic blocks of 3×3 convolutions (64, 128, 256, 512 channels) with 1×1 downsample
  convolutions, BatchNorm vectors (weight, bias, running mean and variance, the int64
  ``num_batches_tracked``) after every convolution, a 1000×512 classifier. 21 kernels
  and matrices, 11,689,512 parameters.

**Weights** [ours]: Student-t distributed (ν = 4 for the encoder, 5 for the CNN; heavier
tails than a Gaussian, as trained weights have) with standard deviation gain/√fan_in,
plus a few large outliers per row (2 per row at 6–12 standard deviations) and per
matrix (4 at 220–260 standard deviations; the outliers inflate the measured standard
deviation, so a 384×384 matrix has max/std ≈ 130–160 and an FFN matrix ≈ 180, like the
max/std ≈ 175 of trained transformer FFNs). LayerNorm and BatchNorm scales are 1 plus a
small spread, biases and running means small, running variances in [0.5, 1.5].

:func:`example_geometry` gives how each layer meets its input — the token count of a
transformer matmul, or a convolution's stride, padding and input size — as plain data
for the simulator. :func:`example_path` writes a model once into the cache directory and
returns its path.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codesign.models.disk_cache import default_cache_dir
from codesign.models.errors import WeightsError
from codesign.models.weight_files import save_model

__all__ = [
    "EXAMPLES",
    "encoder_arrays",
    "example_arrays",
    "example_geometry",
    "example_path",
    "heavy_tailed",
    "resnet18_arrays",
    "write_example",
]

#: Bump when a generator's output changes (the cache file name carries it).
GENERATOR_VERSION = 4
ENCODER_TOKENS = 128
"""Tokens per sequence of the encoder's simulated matmuls (the pooler sees 1)."""
RESNET_INPUT = 224
"""Input image size (pixels, square) of the CNN's simulated convolutions."""


def heavy_tailed(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    fan_in: int,
    df: float,
    gain: float = 1.0,
) -> np.ndarray:
    """float32 weights of ``shape`` (out, …): Student-t with ``df`` degrees of freedom,
    standard deviation ``gain``/√``fan_in``, plus 2 outliers per output row at 6–12
    standard deviations and 4 per tensor at 220–260 (random positions and signs)."""
    std = gain / math.sqrt(fan_in)
    scale = std / math.sqrt(df / (df - 2.0))
    w = rng.standard_t(df, size=shape) * scale
    flat = w.reshape(shape[0], -1)
    rows, cols = flat.shape
    first = rng.integers(0, cols, size=rows)
    second = (first + rng.integers(1, max(cols, 2), size=rows)) % cols  # another column
    pick = np.stack([first, second], axis=1)
    flat[np.arange(rows)[:, None], pick] = _signed(rng, (rows, 2), 6.0, 12.0) * std
    where = rng.integers(0, flat.size, size=4)
    flat.reshape(-1)[where] = _signed(rng, 4, 220.0, 260.0) * std
    return w.astype(np.float32)


def _signed(rng: np.random.Generator, size: Any, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, size) * rng.choice([-1.0, 1.0], size)


def _norm(rng: np.random.Generator, n: int, prefix: str, stats: bool) -> dict[str, np.ndarray]:
    """A LayerNorm (``stats`` False) or BatchNorm's vectors (``stats`` True)."""
    out = {
        f"{prefix}.weight": (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32),
        f"{prefix}.bias": (0.05 * rng.standard_normal(n)).astype(np.float32),
    }
    if stats:
        out[f"{prefix}.running_mean"] = (0.1 * rng.standard_normal(n)).astype(np.float32)
        out[f"{prefix}.running_var"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        out[f"{prefix}.num_batches_tracked"] = np.array(1000, dtype=np.int64)
    return out


def _linear(rng: np.random.Generator, prefix: str, out: int, inp: int) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.weight": heavy_tailed(rng, (out, inp), inp, df=4.0),
        f"{prefix}.bias": (0.02 * rng.standard_normal(out)).astype(np.float32),
    }


def _encoder_layout(blocks: int, width: int, ffn: int) -> list[tuple[str, int, int]]:
    """(prefix, out, in) of every linear layer and (prefix, n, 0) of every LayerNorm of
    the encoder, in order."""
    items = [("embeddings.LayerNorm", width, 0)]
    for i in range(blocks):
        p = f"encoder.layer.{i}"
        items += [
            (f"{p}.attention.self.{part}", width, width) for part in ("query", "key", "value")
        ]
        items += [
            (f"{p}.attention.output.dense", width, width),
            (f"{p}.attention.output.LayerNorm", width, 0),
            (f"{p}.intermediate.dense", ffn, width),
            (f"{p}.output.dense", width, ffn),
            (f"{p}.output.LayerNorm", width, 0),
        ]
    return [*items, ("pooler.dense", width, width)]


def encoder_arrays(
    seed: int = 0, blocks: int = 6, width: int = 384, ffn: int = 1536, positions: int = 512
) -> dict[str, np.ndarray]:
    """The ``encoder`` model's tensors by name (module docstring), from ``seed``."""
    rng = np.random.default_rng(seed)
    arrays = {"embeddings.position_ids": np.arange(positions, dtype=np.int64)[None, :]}
    for prefix, out, inp in _encoder_layout(blocks, width, ffn):
        if inp:
            arrays.update(_linear(rng, prefix, out, inp))
        else:
            arrays.update(_norm(rng, out, prefix, stats=False))
    return arrays


#: ResNet-18's stages: (name, channels, stride of the first block).
_STAGES = (("layer1", 64, 1), ("layer2", 128, 2), ("layer3", 256, 2), ("layer4", 512, 2))


def _resnet18_convs(input_size: int) -> list[tuple[str, int, int, int, int, int, int]]:
    """(name, out, in, k, stride, padding, input size) of every convolution, in order."""
    convs = [("conv1", 64, 3, 7, 2, 3, input_size)]
    size = _out_size(_out_size(input_size, 7, 2, 3), 3, 2, 1)  # stem conv, then max-pool
    channels = 64
    for stage, width, stride in _STAGES:
        for block in range(2):
            s = stride if block == 0 else 1
            p = f"{stage}.{block}"
            out_size = _out_size(size, 3, s, 1)
            convs.append((f"{p}.conv1", width, channels, 3, s, 1, size))
            convs.append((f"{p}.conv2", width, width, 3, 1, 1, out_size))
            if s != 1 or channels != width:
                convs.append((f"{p}.downsample.0", width, channels, 1, s, 0, size))
            channels, size = width, out_size
    return convs


def _out_size(size: int, k: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - k) // stride + 1


def _bn_name(conv: str) -> str:
    if conv.endswith("downsample.0"):
        return conv[: -len("0")] + "1"
    return conv.replace("conv", "bn")


def resnet18_arrays(seed: int = 0, classes: int = 1000) -> dict[str, np.ndarray]:
    """The ``resnet18`` model's tensors by name (module docstring), from ``seed``."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for name, out, inp, k, *_ in _resnet18_convs(RESNET_INPUT):
        arrays[f"{name}.weight"] = heavy_tailed(
            rng, (out, inp, k, k), inp * k * k, df=5.0, gain=math.sqrt(2.0)
        )
        arrays.update(_norm(rng, out, _bn_name(name), stats=True))
    arrays.update(_linear(rng, "fc", classes, 512))
    return arrays


def _encoder_geometry(tokens: int) -> dict[str, dict[str, Any]]:
    return {
        f"{prefix}.weight": {"tokens": 1 if prefix.startswith("pooler") else tokens}
        for prefix, _, inp in _encoder_layout(6, 384, 1536)
        if inp
    }


def _resnet18_geometry(input_size: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        f"{name}.weight": {"stride": stride, "padding": pad, "input": [size, size]}
        for name, _, _, _, stride, pad, size in _resnet18_convs(input_size)
    }
    out["fc.weight"] = {}
    return out


EXAMPLES: dict[str, tuple[Callable[[int], dict[str, np.ndarray]], str]] = {
    "encoder": (encoder_arrays, ".safetensors"),
    "resnet18": (resnet18_arrays, ".npz"),
}
"""Example name -> (generator of its tensors from a seed, file extension written)."""


def _check_name(name: str) -> None:
    if name not in EXAMPLES:
        raise WeightsError(f"unknown example model {name!r}; examples: {', '.join(EXAMPLES)}")


def example_arrays(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The tensors of example ``name`` (``encoder`` or ``resnet18``) from ``seed``."""
    _check_name(name)
    return EXAMPLES[name][0](seed)


def example_geometry(
    name: str, tokens: int = ENCODER_TOKENS, input_size: int = RESNET_INPUT
) -> dict[str, dict[str, Any]]:
    """How every layer of example ``name`` meets its input, by tensor name:
    ``{"tokens": T}`` (a matmul over T tokens per sequence: the encoder, ``tokens``
    per sequence, its pooler 1), ``{"stride": s, "padding": p, "input": [H, W]}`` (a
    convolution; sizes for an ``input_size``-pixel square image) or ``{}`` (a fully
    connected layer applied once per input)."""
    _check_name(name)
    if name == "encoder":
        return _encoder_geometry(tokens)
    return _resnet18_geometry(input_size)


def write_example(name: str, path: str | Path, seed: int = 0) -> Path:
    """Write example ``name``'s model file to ``path`` (``.safetensors`` or ``.npz``)."""
    return save_model(path, example_arrays(name, seed))


def example_path(name: str, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """The cached model file of example ``name`` (written on first use into
    ``cache_dir``/examples, default :func:`~codesign.models.disk_cache.default_cache_dir`);
    the file name carries a digest of the generator's parameters."""
    _check_name(name)
    key = json.dumps({"name": name, "seed": seed, "version": GENERATOR_VERSION})
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    root = Path(default_cache_dir() if cache_dir is None else cache_dir) / "examples"
    path = root / f"{name}-{digest}{EXAMPLES[name][1]}"
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, suffix=EXAMPLES[name][1])
        os.close(fd)
        write_example(name, tmp, seed)
        os.replace(tmp, path)
    return path
