"""Conv and transformer layers in the simulator: im2col against an independent
convolution, the reuse in cycles, traffic and energy, the closed form, whole-model
configs with their geometry and per-layer overrides."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from codesign.experiments.cli.main import main
from codesign.experiments.jobs.simulate import run_config
from codesign.sim.analytical import estimate_pass
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.config import LayerConfig, parse_config
from codesign.sim.decoders import layer_work
from codesign.sim.energy import load_table
from codesign.sim.geometry import Geometry, conv_geometry, tokens_geometry
from codesign.sim.layers import encode_layer
from codesign.sim.run import simulate_layer, summarize


def naive_conv(kernel: np.ndarray, x: np.ndarray, stride, padding) -> np.ndarray:
    """Y (out, H_out, W_out, B) by the definition, one output at a time."""
    out_c, in_c, kh, kw = kernel.shape
    _, h, w, batch = x.shape
    xp = np.pad(x, [(0, 0), (padding[0],) * 2, (padding[1],) * 2, (0, 0)])
    ho = (h + 2 * padding[0] - kh) // stride[0] + 1
    wo = (w + 2 * padding[1] - kw) // stride[1] + 1
    y = np.zeros((out_c, ho, wo, batch))
    for o, i, j, b in itertools.product(range(out_c), range(ho), range(wo), range(batch)):
        patch = xp[:, i * stride[0] : i * stride[0] + kh, j * stride[1] : j * stride[1] + kw, b]
        y[o, i, j, b] = np.sum(kernel[o] * patch)
    return y


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "size"),
    [
        ((3, 3), (1, 1), (1, 1), (6, 5)),
        ((3, 2), (2, 1), (0, 1), (7, 6)),
        ((1, 1), (2, 2), (0, 0), (5, 5)),
    ],
)
def test_im2col_and_the_reference_equal_the_definition(kernel, stride, padding, size):
    rng = np.random.default_rng(0)
    out_c, in_c, batch = 4, 3, 2
    k = rng.integers(-5, 6, size=(out_c, in_c, *kernel)).astype(np.float64)
    x = rng.integers(-8, 8, size=(in_c, *size, batch)).astype(np.float64)
    g = Geometry(
        "conv", kernel=kernel, in_channels=in_c, stride=stride, padding=padding, input=size
    )
    want = naive_conv(k, x, stride, padding).reshape(out_c, -1)
    matrix = k.reshape(out_c, -1)
    lowered = g.lower(x)
    assert lowered.shape == (in_c * kernel[0] * kernel[1], g.reuse * batch)
    np.testing.assert_array_equal(matrix @ lowered, want)
    np.testing.assert_array_equal(g.reference(matrix, x), want)


def test_one_dimensional_kernels():
    rng = np.random.default_rng(1)
    k = rng.integers(-3, 4, size=(2, 3, 5)).astype(np.float64)
    x = rng.integers(-3, 4, size=(3, 20, 1)).astype(np.float64)
    g = conv_geometry("conv", {"input": 20, "stride": 2, "padding": 2}, (2, 15), (5,))
    assert g.output == (10,) and g.reuse == 10
    want = np.stack(
        [np.convolve(x[c, :, 0], k[o, c, ::-1], "full") for o in range(2) for c in range(3)]
    )
    full = want.reshape(2, 3, -1).sum(axis=1)[:, 2:22][:, ::2]  # padding 2 = 'full' offset 4-2
    np.testing.assert_array_equal(k.reshape(2, -1) @ g.lower(x), full)
    np.testing.assert_array_equal(g.reference(k.reshape(2, -1), x), full)


def test_geometry_figures_and_errors():
    g = conv_geometry("c", {"input": [56, 56], "stride": 2, "padding": 1}, (128, 576), (3, 3))
    assert (g.in_channels, g.output, g.reuse, g.columns(4)) == (64, (28, 28), 784, 3136)
    assert g.describe() == "conv 3x3/2x2 56x56->28x28"
    assert g.input_shape(576, 2) == (64, 56, 56, 2)
    assert (
        tokens_geometry(128).columns(2) == 256 and tokens_geometry(128).describe() == "128 tokens"
    )
    assert Geometry().describe() == "fc" and Geometry().reuse == 1
    with pytest.raises(ConfigError, match=r"c\.kernel: a 8x18 matrix has no kernel dimensions"):
        conv_geometry("c", {"input": 8}, (8, 18), ())
    with pytest.raises(ConfigError, match=r"not a multiple of the kernel's 4 positions"):
        conv_geometry("c", {"input": 8, "kernel": [2, 2]}, (8, 18), ())
    with pytest.raises(
        ConfigError, match=r"c\.kernel = \[5, 5\], but the layer's kernel is \[3, 3\]"
    ):
        conv_geometry("c", {"input": 8, "kernel": 5}, (8, 18), (3, 3))
    with pytest.raises(ConfigError, match=r"c\.stride = \[1, 2, 3\]: needs one value per kernel"):
        conv_geometry("c", {"input": 8, "stride": [1, 2, 3]}, (8, 18), (3, 3))
    with pytest.raises(ConfigError, match=r"leaves no output"):
        conv_geometry("c", {"input": 2}, (8, 18), (3, 3))


def simulate(weights, geometry, arch, fmt="csr", sparsity=0.75):
    reference, enc = encode_layer(weights, LayerConfig({}, fmt, {}, sparsity, 8))
    work = layer_work("conv", enc)
    return simulate_layer(work, reference, arch, load_table(None), {}, enc.dtype, 0, geometry), work


def test_a_conv_layer_reuses_each_row_over_the_output_pixels():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((16, 8 * 9)).astype(np.float32)
    arch = Arch(lanes=4, decoders=2, batch=2, dram_latency_cycles=10)
    conv = conv_geometry("c", {"input": [6, 6], "padding": 1}, w.shape, (3, 3))
    fc, work = simulate(w, Geometry(), arch)
    cv, _ = simulate(w, conv, arch)
    assert cv.product_ok and cv.product_error == 0.0  # int8 x int8: exact
    assert cv.columns == 36 * 2 and fc.columns == 2
    operands = int(work.passes[0].macs.sum())
    assert sum(int(p.lane_work.sum()) for p in cv.passes) == operands * 36 * 2
    assert cv.actions["dram_bits"] == fc.actions["dram_bits"] == work.total_bits  # fetched once
    assert cv.actions["macs"] == 36 * fc.actions["macs"]
    assert cv.energy_pj["dram"] == fc.energy_pj["dram"]
    assert cv.energy_pj["mac"] == pytest.approx(36 * fc.energy_pj["mac"])
    row, fc_row = summarize(cv), summarize(fc)
    assert row["dense_macs"] == 16 * 72 * 72 and row["geometry"] == "conv 3x3 6x6->6x6"
    assert row["energy_dram_pj"] / row["dense_macs"] == pytest.approx(
        fc_row["energy_dram_pj"] / fc_row["dense_macs"] / 36
    )
    assert cv.cycles > 20 * fc.cycles


def test_a_balanced_conv_layer_equals_the_closed_form():
    w = np.zeros((32, 4 * 9), dtype=np.int8)
    rng = np.random.default_rng(3)
    for r in range(32):
        w[r, rng.choice(36, 9, replace=False)] = rng.integers(1, 100, 9)
    arch = Arch(lanes=8, decoders=4, dram_bytes_per_cycle=64.0)
    conv = conv_geometry("c", {"input": [5, 5], "padding": 1}, w.shape, (3, 3))
    result, work = simulate(w, conv, arch, fmt="bitmap", sparsity=None)
    assert result.cycles == estimate_pass(work.passes[0], arch, result.columns).cycles
    assert result.product_ok


def test_tokens_multiply_every_token():
    w = np.random.default_rng(4).standard_normal((24, 40)).astype(np.float32)
    arch = Arch(lanes=4, decoders=2, batch=3)
    result, work = simulate(w, tokens_geometry(16), arch, fmt="viterbi", sparsity=0.8)
    assert result.columns == 48 and result.product_ok
    assert sum(int(p.lane_work.sum()) for p in result.passes) == int(work.passes[0].macs.sum()) * 48


def test_lowrank_conv_layer_runs_two_passes():
    w = np.random.default_rng(5).standard_normal((16, 27)).astype(np.float32)
    conv = conv_geometry("c", {"input": 4, "padding": 1}, w.shape, (3, 3))
    result, work = simulate(w, conv, Arch(lanes=4, decoders=2), fmt="lowrank", sparsity=0.5)
    assert len(result.passes) == 2 and result.product_ok


def write(path, doc):
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_whole_model_config_takes_every_layer_and_its_geometry(tmp_path, capsys):
    config = write(
        tmp_path / "r.yaml",
        {
            "name": "tail",
            "arch": {"lanes": 8, "decoders": 4},
            "defaults": {"format": "csr", "sparsity": 0.9, "quantize": 8},
            "layers": [{"example": "resnet18", "select": ["layer4.1.*", "fc.*"]}],
            "overrides": [{"match": "fc.weight", "format": "bitmap"}],
        },
    )
    assert main(["simulate", str(config), "--no-synth", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "conv 3x3 7x7->7x7" in out and "side (9 tensors)" in out
    assert "skipped, not selected by --layers" in out
    doc = yaml.safe_load((tmp_path / "r.json").read_text())
    rows = {r["layer"]: r for r in doc["layers"]}
    assert list(rows) == ["layer4.1.conv1.weight", "layer4.1.conv2.weight", "fc.weight"]
    assert rows["layer4.1.conv1.weight"]["reuse"] == 49 and rows["fc.weight"]["reuse"] == 1
    assert (
        rows["fc.weight"]["format"] == "bitmap" and rows["layer4.1.conv2.weight"]["format"] == "csr"
    )
    assert all(r["product_ok"] for r in doc["layers"])
    side_values = 2 * 4 * 512 + 1000  # two BatchNorms (weight, bias, mean, var), fc.bias
    assert doc["side"]["total_bits"] == side_values * 8
    assert (
        doc["total"]["total_bits"] == sum(r["total_bits"] for r in doc["layers"]) + side_values * 8
    )
    assert doc["total"]["cycles"] == sum(r["cycles"] for r in doc["layers"]) + doc["side"]["cycles"]


def test_a_kernel_needs_its_conv_geometry(tmp_path):
    from codesign.models.weight_files import save_model

    path = save_model(tmp_path / "c.npz", {"conv.weight": np.ones((4, 2, 3, 3), np.float32)})
    cfg = parse_config({"layers": [{"weights": str(path)}]})
    with pytest.raises(
        ConfigError, match=r"layer conv\.weight is a 3x3 convolution kernel: give its conv"
    ):
        run_config(cfg, synth=False)
    fixed = parse_config({"layers": [{"weights": str(path), "conv": {"input": 5, "padding": 1}}]})
    (row,) = run_config(fixed, synth=False)["layers"]
    assert row["geometry"] == "conv 3x3 5x5->5x5" and row["product_ok"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"overrides": [{"match": "nope*", "format": "bitmap"}]},
            r"overrides: match 'nope\*' matches no layer",
        ),
        (
            {"overrides": [{"match": "*", "tokens": 4, "conv": {"input": 4, "kernel": 2}}]},
            "both tokens and conv",
        ),
        (
            {"overrides": [{"match": "*", "spec": {"r": 2}}]},
            r"after overrides\)\.spec\.r: not a field of format csr",
        ),
    ],
)
def test_bad_overrides_name_the_problem(extra, message):
    cfg = parse_config({"layers": [{"synthetic": "8x16", "format": "csr"}], **extra})
    with pytest.raises(ConfigError, match=message):
        run_config(cfg, synth=False)
