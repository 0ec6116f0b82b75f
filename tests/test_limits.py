"""The memory limit and the pre-flight estimates (codesign.limits, Format.memory_needs,
Arch.memory_needs, the hardware blocks), the safe YAML loader and the number rule of
every config (codesign.config_files), and the precision rule of casts and
quantizations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from codesign.config_files import Validator, check_finite, load_yaml
from codesign.experiments.cli.main import main
from codesign.limits import (
    ENV,
    Need,
    ResourceError,
    check_memory,
    human,
    machine_memory,
    memory_limit,
    parse_size,
)
from codesign.models.errors import PrecisionError
from codesign.models.format import check_layer
from codesign.models.registry import FORMATS, get_format
from codesign.models.specs import SpecError, ViterbiSpec, XorSpec, parse_spec
from codesign.models.workloads import gaussian, kept_count, quantize_kept
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.config import parse_config

# ---------------------------------------------------------------- the limit


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4G", 4 * 2**30),
        ("4GiB", 4 * 2**30),
        ("512m", 512 * 2**20),
        ("1.5T", int(1.5 * 2**40)),
        ("100K", 100 * 1024),
        ("123456", 123456),
        (" 2 GB ", 2 * 2**30),
    ],
)
def test_sizes_parse_in_binary_units(text, size):
    assert parse_size(text) == size


def test_a_percentage_is_of_the_machine_memory():
    assert parse_size("50%") == int(0.5 * machine_memory())


@pytest.mark.parametrize("text", ["", "lots", "4X", "-1G", "0", "nan", "inf", "1e9", "0.1"])
def test_a_bad_size_is_one_line_naming_the_option(text):
    with pytest.raises(ValueError, match=rf"^--max-memory: {text!r} is not a memory size"):
        parse_size(text)


def test_the_limit_is_75_percent_of_the_machine_unless_given(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert memory_limit() == int(0.75 * machine_memory())
    monkeypatch.setenv(ENV, "3G")
    assert memory_limit() == 3 * 2**30
    monkeypatch.setenv(ENV, "many")
    with pytest.raises(ValueError, match=f"^{ENV}=many: 'many' is not a memory size"):
        memory_limit()


def test_a_refusal_names_the_need_the_limit_the_machine_and_what_to_lower(monkeypatch):
    monkeypatch.setenv(ENV, "1G")
    needs = [Need(2**29, "the small part", "a"), Need(3 * 2**30, "the table", "n_ff")]
    with pytest.raises(ResourceError) as info:
        check_memory("the task", needs, resident=False)
    assert str(info.value) == (
        "the task needs about 3.5 GiB of memory (the table: 3 GiB), more than the limit of "
        f"1 GiB (--max-memory 1G; this machine has {human(machine_memory())}); lower n_ff"
    )
    assert check_memory("the task", needs[:1], resident=False) == 2**29


def test_human_sizes():
    assert [human(n) for n in (900, 2048, 74.5 * 2**30, 5 * 2**40)] == [
        "900 bytes",
        "2 KiB",
        "74.5 GiB",
        "5 TiB",
    ]


# ---------------------------------------------------------------- estimates


def test_the_exponential_parts_of_a_search_are_estimated_from_the_spec():
    viterbi = FORMATS["viterbi"].memory_needs(
        (64, 64), ViterbiSpec(n_in=8, n_ff=12, n_out=64, n_c=8)
    )
    assert viterbi[1].what == "the keep table of 2^20 tap vectors × 512 raw outputs"
    assert viterbi[1].nbytes == 2**20 * (10 * 512 + 10 * 64)  # threshold unset: n_c + 2 tables
    xor = FORMATS["xor"].memory_needs(
        (4096, 4096), XorSpec(n_s=4, n_in=6, n_out=1024, dp_states=2**18, segment=512)
    )
    assert "trellis of 2^18 states × 512 blocks per segment" in xor[-1].what
    default = FORMATS["xor"].memory_needs((4096, 4096), XorSpec(n_s=4, n_in=6, n_out=1024))
    assert len(default) == 1  # 2^18 states > dp_states: the elimination search, no trellis


def test_a_layer_beyond_the_limit_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv(ENV, "1G")
    fmt = get_format("viterbi")
    spec = ViterbiSpec(segment=10**12)
    with pytest.raises(ResourceError, match=r"^layer fc \(20000x20000\) in viterbi needs about"):
        check_layer("fc", (20000, 20000), fmt, spec)
    check_layer("fc", (64, 64), fmt, spec)


_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from codesign.models.format import check_layer
    from codesign.models.registry import get_format
    from codesign.models.report import report_layer
    from codesign.models.workloads import gaussian

    def status(key):
        line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                    if x.startswith(key + ":"))
        return int(line.split()[1]) * 1024

    fmt = get_format(sys.argv[1])
    report_layer("warm", gaussian((1024, 1024), 1), fmt, None, 0.9)  # every kernel compiled
    w = gaussian((1024, 1024), 0)
    base = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    report_layer("x", w, fmt, None, 0.9)
    need = sum(n.nbytes for n in fmt.memory_needs(w.shape))
    print(json.dumps({"grown": status("VmHWM") - base, "need": need}))
    """
)


@pytest.mark.parametrize("name", ["csr", "viterbi", "xor"])
def test_a_format_estimate_covers_its_measured_peak(name):
    """The estimate of compressing a 1024x1024 layer is at least the memory its work
    adds at its peak, and not more than 6 times it."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, name], capture_output=True, text=True, check=True
    )
    figures = json.loads(out.stdout)
    assert figures["grown"] <= figures["need"] <= 6 * figures["grown"], figures


def test_a_simulated_machine_is_estimated_per_lane_decoder_row_and_column():
    arch = Arch(lanes=10**9, decoders=1, batch=3)
    needs = {n.lower: n.nbytes for n in arch.memory_needs(100, 50, 3)}
    assert needs["arch.lanes"] == 10**9 * 2560
    assert needs["arch.decoders"] == 1536
    assert needs["the layer's rows"] == 100 * 1280
    assert needs["arch.batch (or the layer's tokens / output pixels)"] == 150 * 3 * 24


def test_a_block_estimate_refuses_before_elaborating(monkeypatch):
    from codesign.experiments.jobs.hardware import check_block
    from codesign.hw.blocks import get_block

    block = get_block("viterbi_search")
    spec = ViterbiSpec(threshold=3)
    estimate = check_block(block, *block.resolve(spec, {}), synth=True)
    assert estimate.cells == 379654 and estimate.warning("viterbi_search").startswith(
        "note: block viterbi_search is an estimated 379,654 cells; its synthesis may take"
    )
    assert "for ecp5, place and route included; nothing is printed until they end" in (
        estimate.warning("viterbi_search", "ecp5") or ""
    )
    monkeypatch.setenv(ENV, "1G")
    with pytest.raises(ResourceError, match="synthesizing block viterbi_search needs about"):
        check_block(block, *block.resolve(spec, {}), synth=True)
    small = check_block(get_block("relative"), *get_block("relative").resolve(None, {}), True)
    assert small.warning("relative") is None


# ---------------------------------------------------------------- configs


def test_a_merge_key_may_be_overridden_but_a_repeated_key_may_not(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nm: {<<: *b, x: 3}\n")
    assert load_yaml(path)["m"] == {"x": 3, "y": 2}
    path.write_text("m:\n  x: 1\n  y: 2\n  x: 3\n")
    with pytest.raises(ValueError, match=r"line 4, column 3: key 'x' appears twice .*line 2"):
        load_yaml(path)


def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"is a directory, not a YAML file"):
        load_yaml(tmp_path)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (5 * 2**20))
    with pytest.raises(ValueError, match=r"big.yaml: larger than 4 MiB"):
        load_yaml(big)
    text = tmp_path / "two.yaml"
    text.write_bytes(b"a: 1\nb: \x80\n")
    with pytest.raises(ValueError, match=r"two.yaml: line 2: not UTF-8 text \(byte 0x80"):
        load_yaml(text)


def test_the_integer_rule_and_finite_numbers_hold_for_documents_built_in_code():
    validator = Validator({"type": "integer"})
    assert validator.is_valid(16) and not validator.is_valid(16.0)
    with pytest.raises(ValueError, match=r"^a.b\[1\] = inf: not a finite number"):
        check_finite({"a": {"b": [1.0, float("inf")]}})
    with pytest.raises(ConfigError, match=r"^arch.clock_ghz = nan: not a finite number"):
        parse_config({"arch": {"clock_ghz": float("nan")}, "layers": [{"synthetic": "8x8"}]})
    with pytest.raises(ConfigError, match=r"^arch.lanes = 16.0; allowed: an integer >= 1"):
        Arch(lanes=16.0)
    with pytest.raises(ConfigError, match=r"^arch.dram.bytes_per_cycle = inf; allowed: a finite"):
        Arch(dram_bytes_per_cycle=float("inf"))


def test_the_divisors_listed_for_a_huge_lane_count_are_bounded():
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"allowed: 1, 2, 4, 8, 16, 32, 64 \(divisors up to 64"):
        Arch(lanes=2**60, decoders=3)
    assert time.perf_counter() - start < 0.1


def test_a_repeated_spec_field_is_refused_naming_it():
    with pytest.raises(SpecError, match=r"^--spec n_ff is given twice \(n_ff=4 and n_ff=6\)"):
        parse_spec("viterbi", ["n_ff=4", "n_ff=6"])
    assert parse_spec("viterbi", ["n_ff=4", "n_in=2"]) == ViterbiSpec(n_ff=4, n_in=2)


# ---------------------------------------------------------------- precision


def test_a_quantization_zeroing_most_kept_weights_is_refused():
    w = gaussian((64, 64), 0)
    w[0, :8] = 1000.0
    assert kept_count(w, 0.5) == 2048 and kept_count(w, None) == 4096
    with pytest.raises(PrecisionError, match=r"^--quantize 8 turns 2,040 of the 2,048 kept"):
        quantize_kept(w, 8, 0.5)
    assert np.count_nonzero(quantize_kept(w, 15, 0.5)) >= 2048
    assert np.count_nonzero(quantize_kept(w, 8, 0.998)) == 8  # only the outliers kept


def _suggested(exc: pytest.ExceptionInfo, option: str) -> int:
    found = re.search(
        rf"{option}(\d+) is the smallest width keeping at least 50% of them", str(exc.value)
    )
    assert found, str(exc.value)
    return int(found.group(1))


@pytest.mark.parametrize("sparsity", [None, 0.5])
@pytest.mark.parametrize("outlier", [1000.0, 2000.0, 20000.0])
def test_the_width_a_quantization_refusal_suggests_is_the_smallest_that_passes(outlier, sparsity):
    # no sparsity: every non-zero weight is kept, the smallest |w| (3e-6) by no width at
    # all; the rule lets half of them go, so some width up to 16 bits passes
    w = gaussian((64, 147), 0)
    w[0, 0] = outlier * np.abs(w).std()
    with pytest.raises(PrecisionError) as refused:
        quantize_kept(w, 8, sparsity)
    need = _suggested(refused, "--quantize ")
    quantize_kept(w, need, sparsity)  # passes
    for below in range(9, need):
        with pytest.raises(PrecisionError):
            quantize_kept(w, below, sparsity)


def test_a_quantization_no_width_rescues_says_so():
    w = gaussian((64, 147), 0)
    w[0, 0] = 1e6 * np.abs(w).std()
    with pytest.raises(PrecisionError, match="no width up to 16 bits keeps 50% of them"):
        quantize_kept(w, 8)
    for bits in range(9, 17):
        with pytest.raises(PrecisionError):
            quantize_kept(w, bits)


def test_the_width_xor_suggests_is_the_smallest_that_passes():
    w = gaussian((64, 64), 0)
    w[0, 0] = 2000.0 * np.abs(w).std()
    with pytest.raises(PrecisionError) as refused:
        get_format("xor").encode(w, XorSpec(value_bits=8))
    need = _suggested(refused, "value_bits=")
    get_format("xor").encode(w, XorSpec(value_bits=need))
    with pytest.raises(PrecisionError):
        get_format("xor").encode(w, XorSpec(value_bits=need - 1))


def test_a_normal_quantization_rounds_its_smallest_weights_to_zero_and_passes():
    w = gaussian((256, 256), 0)
    q = quantize_kept(w, 8)  # no sparsity: every weight kept; about 1.5 % round to 0
    lost = w.size - np.count_nonzero(q)
    assert 0 < lost < 0.05 * w.size
    assert np.count_nonzero(quantize_kept(w, 4, 0.9)) >= kept_count(w, 0.9)


def test_a_quantization_rounding_some_kept_weights_to_zero_says_so(caplog, tmp_path):
    """Fewer than half the kept weights lost: the command runs, and one note on stderr
    names the layer and the count (a cached encoding says it too); the ``codesign``
    logger writes it (stderr without logging configured)."""
    w = np.random.default_rng(0).normal(0, 0.05, (64, 64)).astype(np.float32)
    w[0, 0] = 14.0  # one outlier sets the int8 step
    path = tmp_path / "w.npz"
    np.savez(path, w=w)
    argv = ["compress", "--format", "csr", "--weights", str(path), "--sparsity", "0.5"]
    for _ in range(2):
        caplog.clear()
        assert main([*argv, "--quantize", "8"]) == 0
        err = [r.getMessage() for r in caplog.records]
        assert len(err) == 1 and err[0].startswith("codesign: note: layer w: --quantize 8 turns ")
        lost, kept = (
            int(n.replace(",", "")) for n in re.findall(r"([\d,]+) of the ([\d,]+)", err[0])[0]
        )
        assert 0 < lost <= kept // 2 and kept == 2048
    caplog.clear()
    assert main(argv) == 0 and not caplog.records
