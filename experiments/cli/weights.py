"""`codesign weights`: write synthetic or built-in model weights to a weight file."""

from __future__ import annotations

import argparse

from codesign.experiments.cli.command import Subparsers, add_command
from codesign.experiments.cli.compress import add_source_options, load_source
from codesign.experiments.jobs.weights import SUFFIXES, save_layers


def run(args: argparse.Namespace) -> int:
    layers = load_source(args).layers
    path = save_layers(layers, args.out)
    shapes = ", ".join(
        f"{layer.name} {layer.weights.shape[0]}x{layer.weights.shape[1]}" for layer in layers
    )
    print(f"wrote {path} ({shapes})")
    return 0


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "weights",
        "write synthetic or model weights to a .safetensors / .npz file",
        "Write layers to a weight file that --weights of compress reads back: a synthetic "
        "layer\n(seeded, so the same command writes the same file), the digits MLP's "
        "trained layers, or\nthe layer matrices of another weight file or example model "
        "(kernels lowered to matrices;\nside and skipped tensors are not written), to "
        f"convert between {' and '.join(SUFFIXES)}). `make setup` writes\n"
        "examples/layer.safetensors with the example below.",
        [
            "codesign weights --synthetic 256x256 --distribution laplacian "
            "-o examples/layer.safetensors"
        ],
        run,
    )
    add_source_options(p)
    p.add_argument(
        "-o",
        "--out",
        required=True,
        metavar="FILE",
        help=f"the file to write; its suffix ({', '.join(SUFFIXES)}) picks the kind",
    )
