"""The example model files: layouts, roles, heavy tails, geometry, seeding and caching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codesign.models.examples import (
    ENCODER_TOKENS,
    example_arrays,
    example_geometry,
    example_path,
    heavy_tailed,
)
from codesign.models.weight_files import open_model


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return open_model(example_path("encoder", cache_dir=tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    return open_model(example_path("resnet18", cache_dir=tmp_path_factory.mktemp("cache")))


def test_encoder_layout(encoder):
    layers = encoder.by_role("layer")
    assert len(layers) == 37
    assert sum(t.size for t in layers) == 10_764_288
    shapes = {t.shape for t in layers}
    assert shapes == {(384, 384), (1536, 384), (384, 1536)}
    side = encoder.by_role("side")
    assert len(side) == 63 and all(len(t.shape) == 1 for t in side)
    assert sum("LayerNorm" in t.name for t in side) == 2 * 13
    (skipped,) = encoder.by_role("skipped")
    assert (skipped.name, skipped.dtype, skipped.shape) == (
        "embeddings.position_ids",
        "int64",
        (1, 512),
    )
    assert encoder.path.suffix == ".safetensors"


def test_resnet18_layout(resnet):
    layers = {t.name: t for t in resnet.by_role("layer")}
    assert len(layers) == 21
    assert layers["conv1.weight"].shape == (64, 3, 7, 7)
    assert layers["layer1.0.conv1.weight"].kernel == (3, 3)
    assert layers["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert layers["layer4.1.conv2.weight"].matrix_shape == (512, 4608)
    assert layers["fc.weight"].shape == (1000, 512)
    parameters = sum(
        t.size for t in resnet.tensors if t.role != "skipped" and "running" not in t.name
    )
    assert parameters == 11_689_512  # torchvision's resnet18 (running stats are buffers)
    side = {t.name for t in resnet.by_role("side")}
    assert {"bn1.running_var", "layer3.0.downsample.1.running_mean", "fc.bias"} <= side
    skipped = resnet.by_role("skipped")
    assert len(skipped) == 20 and all(t.name.endswith("num_batches_tracked") for t in skipped)
    assert np.all(resnet.arrays["bn1.running_var"] > 0)


@pytest.mark.parametrize("name", ["encoder", "resnet18"])
def test_weights_are_heavy_tailed_with_outliers(name, encoder, resnet):
    model = encoder if name == "encoder" else resnet
    for t in model.by_role("layer"):
        w = model.matrix(t.name).astype(np.float64)
        robust = 1.4826 * np.median(np.abs(w))  # a Gaussian's std from its median |w|
        assert np.abs(w).max() / robust >= 100, t.name
        if w.size >= 2**17:  # large matrices: the max/std of trained FFNs
            assert np.abs(w).max() / w.std() >= 100, t.name
        core = w[np.abs(w) < 6 * robust]
        kurtosis = np.mean(core**4) / np.mean(core**2) ** 2
        assert kurtosis > 3.3, t.name  # Student-t tails, heavier than a Gaussian's 3
        assert (np.abs(w) > 6 * robust).sum(axis=1).min() >= 2, t.name  # outliers per row


def test_heavy_tailed_scale_and_seed():
    rng = np.random.default_rng(1)
    w = heavy_tailed(rng, (512, 256), 256, df=4.0)
    assert w.dtype == np.float32 and w.shape == (512, 256)
    # median |t(4)| = 0.7407 at scale 1; std 1/16 means scale (1/16)/sqrt(2)
    assert np.median(np.abs(w)) == pytest.approx(0.7407 / 16 / np.sqrt(2), rel=0.05)
    again = heavy_tailed(np.random.default_rng(1), (512, 256), 256, df=4.0)
    np.testing.assert_array_equal(w, again)


def test_generators_are_seeded():
    a, b = example_arrays("resnet18", 0), example_arrays("resnet18", 0)
    c = example_arrays("resnet18", 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc.weight"], c["fc.weight"])


def test_geometry_covers_every_layer(encoder, resnet):
    for model, name in ((encoder, "encoder"), (resnet, "resnet18")):
        assert set(example_geometry(name)) == {t.name for t in model.by_role("layer")}
    enc = example_geometry("encoder")
    assert enc["encoder.layer.3.output.dense.weight"] == {"tokens": ENCODER_TOKENS}
    assert enc["pooler.dense.weight"] == {"tokens": 1}
    cnn = example_geometry("resnet18")
    assert cnn["conv1.weight"] == {"stride": 2, "padding": 3, "input": [224, 224]}
    assert cnn["layer1.0.conv1.weight"]["input"] == [56, 56]
    assert cnn["layer2.0.conv1.weight"] == {"stride": 2, "padding": 1, "input": [56, 56]}
    assert cnn["layer2.0.downsample.0.weight"] == {"stride": 2, "padding": 0, "input": [56, 56]}
    assert cnn["layer4.1.conv2.weight"]["input"] == [7, 7]
    assert cnn["fc.weight"] == {}
    small = example_geometry("resnet18", input_size=64)
    assert small["layer4.1.conv2.weight"]["input"] == [2, 2]


def test_example_path_writes_once(tmp_path):
    path = example_path("encoder", cache_dir=tmp_path)
    stamp = path.stat().st_mtime_ns
    assert example_path("encoder", cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    assert path.parent == tmp_path / "examples" and math.isclose(
        path.stat().st_size, 43.2e6, rel_tol=0.01
    )
