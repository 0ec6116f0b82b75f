"""The `codesign` command line: tables, JSON output, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from codesign.experiments.cli.main import main
from codesign.models.registry import FORMATS


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_formats_lists_every_format_and_field(capsys):
    code, out, _ = run(capsys, "formats")
    assert code == 0
    for name in FORMATS:
        assert f"{name}:" in out
    assert "r = 4    allowed: 1..32" in out


EXACT_RATE = ("dense", "bitmap", "csr", "relative", "xor")


#: Spec items reaching sparsity 0.875 where the format's default does not.
SPEC_AT_0875 = {"nm": ["--spec", "n=1", "--spec", "m=8"]}


@pytest.mark.parametrize("name", list(FORMATS))
def test_compress_synthetic_json(capsys, tmp_path, name):
    out_file = tmp_path / "out.json"
    code, out, _ = run(
        capsys,
        "compress",
        "--format",
        name,
        *SPEC_AT_0875.get(name, []),
        "--synthetic",
        "64x96",
        "--sparsity",
        "0.875",
        "--json",
        str(out_file),
    )
    assert code == 0
    assert "lossless" in out and "total" in out
    doc = json.loads(out_file.read_text())
    assert doc["format"] == name and doc["spec"]["format"] == name
    (layer,) = doc["layers"]
    for key in ("name", "shape", "nnz", "index_bits", "value_bits", "total_bits", "lossless"):
        assert key in layer
    assert layer["shape"] == [64, 96]
    assert layer["lossless"] is (name != "lowrank")  # lowrank approximates the layer
    assert layer["total_bits"] == layer["index_bits"] + layer["value_bits"]
    kept = 64 * 96 // 8
    if name in EXACT_RATE:
        assert layer["nnz"] == kept
    elif name != "lowrank":
        assert 0.8 * kept <= layer["nnz"] <= 1.2 * kept


def test_compress_weights_file_with_spec_and_quantize(capsys, tmp_path):
    path = tmp_path / "w.npz"
    rng = np.random.default_rng(0)
    np.savez(path, a=rng.standard_normal((20, 30)).astype(np.float32), bias=np.ones(20))
    out_file = tmp_path / "o.json"
    code, out, _ = run(
        capsys,
        "compress",
        "--format",
        "relative",
        "--spec",
        "r=3",
        "--weights",
        str(path),
        "--sparsity",
        "0.5",
        "--quantize",
        "8",
        "--json",
        str(out_file),
    )
    assert code == 0
    doc = json.loads(out_file.read_text())
    assert doc["spec"] == {"format": "relative", "r": 3}
    (layer,) = doc["layers"]
    assert layer["name"] == "a"
    assert layer["value_bits"] == layer["stored_values"] * 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--synthetic", "64x64", "--sparsity", "1.5"], "sparsity"),
        (["--synthetic", "64x64", "--sparsity", "nan"], "sparsity"),
        (["--synthetic", "64by64"], "64by64"),
        (["--synthetic", "0x64"], "shape"),
        (["--synthetic", "8x8", "--spec", "r=0"], "RelativeSpec.r must be in 1..32"),
        (["--synthetic", "8x8", "--spec", "bogus=1"], "has no field 'bogus'"),
        (["--weights", "/nonexistent/w.npz"], "/nonexistent/w.npz"),
        (["--synthetic", "8x8", "--quantize", "40"], "bits"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "compress", "--format", "relative", *argv)
    assert code == 2
    assert err.startswith("codesign: error:")
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_malformed_weights_file_exit_2(capsys, tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x00garbage")
    code, _, err = run(capsys, "compress", "--format", "csr", "--weights", str(path))
    assert code == 2 and str(path) in err and "Traceback" not in err


def test_nan_weights_file_exit_2(capsys, tmp_path):
    path = tmp_path / "nan.npz"
    w = np.ones((4, 4), dtype=np.float32)
    w[2, 1] = np.nan
    np.savez(path, w=w)
    code, _, err = run(capsys, "compress", "--format", "bitmap", "--weights", str(path))
    assert code == 2 and "NaN" in err


def test_console_script_exit_code():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "codesign.experiments.cli.main",
            "compress",
            "--format",
            "csr",
            "--synthetic",
            "4x4",
            "--sparsity",
            "-0.1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("codesign: error:") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("method", ["magnitude", "viterbi", "darb"])
def test_prune_reports_accuracy_and_bits(capsys, tmp_path, method):
    out_file = tmp_path / "p.json"
    code, out, _ = run(
        capsys,
        "prune",
        "--method",
        method,
        "--sparsity",
        "0.8",
        "--finetune-epochs",
        "1",
        "--json",
        str(out_file),
    )
    assert code == 0 and "acc tuned" in out
    doc = json.loads(out_file.read_text())
    assert 0.15 <= doc["kept_fraction"] <= 0.25
    assert 0.0 <= doc["accuracy_pruned"] <= 1.0 and 0.0 <= doc["accuracy_finetuned"] <= 1.0
    assert doc["total_bits"] == sum(layer["total_bits"] for layer in doc["layers"])


def test_prune_trp(capsys, tmp_path):
    out_file = tmp_path / "t.json"
    code, out, _ = run(
        capsys,
        "prune",
        "--method",
        "trp",
        "--spec",
        "energy=0.9",
        "--finetune-epochs",
        "2",
        "--json",
        str(out_file),
    )
    assert code == 0 and "ranks" in out
    doc = json.loads(out_file.read_text())
    assert doc["param_reduction"] > 1.0 and doc["index_bits_per_weight"] == 0.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "bmwm", "--sparsity", "0.9"], "use b=16"),
        (["--method", "trp", "--sparsity", "0.9"], "drop --sparsity"),
        (["--method", "viterbi"], "needs --sparsity"),
        (["--method", "magnitude", "--sparsity", "0.5", "--finetune-epochs", "-1"], ">= 0"),
    ],
)
def test_prune_bad_input(capsys, argv, message):
    code, _, err = run(capsys, "prune", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_verilog_and_synth(capsys, tmp_path):
    code, out, _ = run(
        capsys, "verilog", "relative", "--spec", "r=4", "--spec", "n_cols=37", "-o", str(tmp_path)
    )
    assert code == 0
    sidecar = json.loads((tmp_path / "relative_decoder.json").read_text())
    assert sidecar["spec"] == {"format": "relative", "r": 4}
    assert "module relative_decoder(" in (tmp_path / "relative_decoder.v").read_text()
    code, out, _ = run(capsys, "synth", "relative", "--json", str(tmp_path / "s.json"))
    assert code == 0 and "depth" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["total"] == sum(stats["cells"].values())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verilog", "relative", "--spec", "r=0", "-o"], "RelativeSpec.r must be in 1..32"),
        (["verilog", "relative", "--spec", "n_cols=0", "-o"], "n_cols"),
        (["verilog", "relative", "--spec", "zz=1", "-o"], "no spec field or parameter 'zz'"),
    ],
)
def test_verilog_bad_spec_writes_nothing(capsys, tmp_path, argv, message):
    out_dir = tmp_path / "v"
    code, _, err = run(capsys, *argv, str(out_dir))
    assert code == 2 and message in err
    assert not out_dir.exists()


def test_a_csr_compress_loads_neither_numba_nor_amaranth_nor_the_other_formats():
    # the command's start-up: one subcommand's module, one format's
    script = (
        "import sys\n"
        "from codesign.experiments.cli.main import main\n"
        "main(['compress', '--format', 'csr', '--synthetic', '16x16', '--sparsity', '0.5'])\n"
        "heavy = ('numba', 'amaranth', 'jsonschema', 'sklearn', 'codesign.models.viterbi')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_every_format_is_registered_under_its_own_name():
    assert [FORMATS[name].name for name in FORMATS] == list(FORMATS)
    assert len(FORMATS) == len(set(FORMATS)) == 12
