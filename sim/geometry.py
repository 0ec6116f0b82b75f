"""How a layer's weight matrix meets its input: once per input, over tokens, or as a
convolution lowered by im2col.

The accelerator computes Y = W·X with W the layer's (m, n) matrix. What X is depends on
the layer:

* **fully connected** (``fc``): X is (n, B), one column per input of the batch.
* **tokens**: a transformer matmul applies W to every token of a sequence: X is
  (n, T·B) for T tokens per input.
* **conv**: a convolution with kernel (k1, k2, …), C input channels, stride, padding
  and input size (H, W, …) is lowered by **im2col**: W is (out, C·k1·k2·…) (rows of the
  kernel in (C, k1, k2, …) order, as a (out, C, k1, k2, …) kernel flattens) and X
  holds one column per output pixel and input: (C·k1·k2·…, H_out·W_out·…·B) with
  H_out = ⌊(H + 2·p − k) / s⌋ + 1. Each weight row's operands are thus reused over
  H_out·W_out·B columns.

The **reuse** (columns per input: 1, T or H_out·W_out·…) times the batch is the number
of columns every lane multiplies a row with; cycles, MACs and activation traffic follow
it, while the weights still cross DRAM once per layer (weight-stationary).

:meth:`Geometry.lower` builds X from an input tensor (im2col for a convolution);
:meth:`Geometry.reference` computes the layer's output without it — a convolution as
the sum over kernel offsets of W[:, :, i, j]·(shifted input), a matmul otherwise — so
the lanes' product is checked against an independent computation.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from codesign.sim.arch import ConfigError

__all__ = ["KINDS", "Geometry", "conv_geometry", "tokens_geometry"]

KINDS = ("fc", "tokens", "conv")
"""The ways a layer meets its input (module docstring)."""


@dataclasses.dataclass(frozen=True)
class Geometry:
    """A layer's input geometry (module docstring).

    ``kind``: one of :data:`KINDS`. ``tokens``: T (``tokens``). A convolution's
    ``kernel`` (k1, k2, …), ``in_channels`` C, ``stride``, ``padding`` and ``input``
    (H, W, …), one entry per kernel dimension.
    """

    kind: str = "fc"
    tokens: int = 1
    kernel: tuple[int, ...] = ()
    in_channels: int = 0
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    input: tuple[int, ...] = ()

    @property
    def output(self) -> tuple[int, ...]:
        """A convolution's output size per dimension; ``()`` otherwise."""
        dims = zip(self.input, self.kernel, self.stride, self.padding, strict=True)
        return tuple((size + 2 * p - k) // s + 1 for size, k, s, p in dims)

    @property
    def reuse(self) -> int:
        """Columns of X per input: output pixels (conv), tokens, or 1."""
        if self.kind == "conv":
            return math.prod(self.output)
        return self.tokens if self.kind == "tokens" else 1

    def columns(self, batch: int) -> int:
        """Columns of X for a batch of ``batch`` inputs."""
        return self.reuse * batch

    def input_shape(self, n: int, batch: int) -> tuple[int, ...]:
        """Shape of the layer's input for a batch: (C, H, W, …, B) for a convolution,
        (n, columns) otherwise."""
        if self.kind == "conv":
            return (self.in_channels, *self.input, batch)
        return (n, self.columns(batch))

    def activation_values(self, m: int, n: int, batch: int) -> int:
        """Values of the layer's input plus output activations for a batch."""
        return math.prod(self.input_shape(n, batch)) + m * self.columns(batch)

    def lower(self, x: np.ndarray) -> np.ndarray:
        """X (n, columns) of an input of :meth:`input_shape`: im2col for a convolution
        (rows in (C, k1, k2, …) order, columns in (output pixel, batch) order), the
        input itself otherwise."""
        if self.kind != "conv":
            return x
        spatial = tuple(range(1, 1 + len(self.kernel)))
        windows = np.lib.stride_tricks.sliding_window_view(self._padded(x), self.kernel, spatial)
        step = (slice(None), *(slice(None, None, s) for s in self.stride))
        windows = windows[step]  # (C, o1, o2, …, B, k1, k2, …)
        d = len(self.kernel)
        order = (0, *range(d + 2, 2 * d + 2), *range(1, d + 2))
        return np.ascontiguousarray(windows.transpose(order)).reshape(
            self.in_channels * math.prod(self.kernel), -1
        )

    def reference(
        self, matrix: np.ndarray, x: np.ndarray, dtype: np.dtype = np.float64
    ) -> np.ndarray:
        """The layer's output (m, columns) computed in ``dtype`` (float64, or float32
        when the caller knows every sum is exact in it) without im2col: for a
        convolution Σ over kernel offsets of W[:, :, offset] · (input shifted by it),
        else ``matrix @ x``."""
        matrix = np.asarray(matrix, dtype=dtype)
        x = np.asarray(x, dtype=dtype)
        if self.kind != "conv":
            return matrix @ x
        kernel = matrix.reshape(matrix.shape[0], self.in_channels, *self.kernel)
        padded = self._padded(x)
        out = np.zeros((matrix.shape[0], math.prod(self.output) * x.shape[-1]), dtype=dtype)
        for offset in itertools.product(*(range(k) for k in self.kernel)):
            window = tuple(
                slice(i, i + s * (o - 1) + 1, s)
                for i, s, o in zip(offset, self.stride, self.output, strict=True)
            )
            shifted = padded[(slice(None), *window)].reshape(self.in_channels, -1)
            out += kernel[(slice(None), slice(None), *offset)] @ shifted
        return out

    def _padded(self, x: np.ndarray) -> np.ndarray:
        pads = [(0, 0), *((p, p) for p in self.padding), (0, 0)]
        return np.pad(x, pads)

    def describe(self) -> str:
        """Short text: ``fc``, ``128 tokens``, ``conv 3x3/2 56x56->28x28``."""
        if self.kind == "tokens":
            return f"{self.tokens} token{'s' if self.tokens != 1 else ''}"
        if self.kind == "fc":
            return "fc"
        text = f"conv {_dims(self.kernel)}"
        if any(s != 1 for s in self.stride):
            text += f"/{_dims(self.stride)}"
        return f"{text} {_dims(self.input)}->{_dims(self.output)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out: dict[str, Any] = {"kind": self.kind, "reuse": self.reuse}
        if self.kind == "tokens":
            out["tokens"] = self.tokens
        if self.kind == "conv":
            out.update(
                kernel=list(self.kernel),
                in_channels=self.in_channels,
                stride=list(self.stride),
                padding=list(self.padding),
                input=list(self.input),
                output=list(self.output),
            )
        return out


def _dims(values: tuple[int, ...]) -> str:
    return "x".join(map(str, values))


def tokens_geometry(tokens: int) -> Geometry:
    """A matmul over ``tokens`` tokens per input."""
    return Geometry("tokens", tokens=int(tokens))


def _per_dim(where: str, key: str, value: Any, dims: int) -> tuple[int, ...]:
    values = [value] * dims if isinstance(value, int) else list(value)
    if len(values) != dims:
        raise ConfigError(
            f"{where}.{key} = {value!r}: needs one value per kernel dimension ({dims}), or "
            f"one integer for all"
        )
    return tuple(int(v) for v in values)


def conv_geometry(
    where: str, conv: dict[str, Any], matrix_shape: tuple[int, int], kernel: tuple[int, ...]
) -> Geometry:
    """The convolution of a config's ``conv`` mapping (``kernel``, ``stride``,
    ``padding``, ``input``) for a layer whose weight matrix is ``matrix_shape`` (m, n)
    and whose file gives ``kernel`` (``()`` for a 2-D matrix: the mapping must give it).
    Errors name ``where`` (the config path) and what fits."""
    given = conv.get("kernel")
    if not kernel and given is None:
        raise ConfigError(
            f"{where}.kernel: a {matrix_shape[0]}x{matrix_shape[1]} matrix has no kernel "
            f"dimensions; give conv.kernel (e.g. [3, 3])"
        )
    dims = len(kernel) if kernel else len(given if isinstance(given, list) else [given])
    shape = _per_dim(where, "kernel", given, dims) if given is not None else kernel
    if kernel and shape != kernel:
        raise ConfigError(
            f"{where}.kernel = {list(shape)}, but the layer's kernel is {list(kernel)}; "
            f"drop conv.kernel or give {list(kernel)}"
        )
    n = matrix_shape[1]
    if n % math.prod(shape):
        raise ConfigError(
            f"{where}.kernel = {list(shape)}: the matrix has {n} columns, not a multiple of "
            f"the kernel's {math.prod(shape)} positions"
        )
    geometry = Geometry(
        kind="conv",
        kernel=shape,
        in_channels=n // math.prod(shape),
        stride=_per_dim(where, "stride", conv.get("stride", 1), dims),
        padding=_per_dim(where, "padding", conv.get("padding", 0), dims),
        input=_per_dim(where, "input", conv["input"], dims),
    )
    if min(geometry.output) < 1:
        raise ConfigError(
            f"{where}.input = {list(geometry.input)}: a {_dims(shape)} kernel with padding "
            f"{list(geometry.padding)} leaves no output; allowed: input + 2·padding >= kernel"
        )
    return geometry
