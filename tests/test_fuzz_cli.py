"""The fuzz suite of the command line: the catalogue of bad inputs (tests/cli_catalogue.py)
and property tests of specs, simulator knobs and YAML.

Every catalogue case must exit with code 2 and one error line naming the problem, with
no traceback and no file changed; a case of the memory pre-flight runs in a subprocess
whose peak memory must stay at a fresh process's size (the work was refused before it
allocated). The property tests run a few dozen examples each in `make test` and many
more in `make fuzz` (marker ``fuzz``).
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import pytest
import yaml
from cli_catalogue import CASES, Case, one_line_error, run_case, snapshot, write_inputs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.config_files import MAX_DEPTH, load_yaml
from codesign.experiments.cli.main import main
from codesign.experiments.sweeps.config import SweepConfigError, expand, validate_config
from codesign.limits import ENV
from codesign.models.registry import FORMATS
from codesign.models.specs import SpecError, parse_spec, spec_class
from codesign.sim.arch import Arch, ConfigError
from codesign.sim.config import parse_config

#: Peak memory a refused command may reach: a fresh `codesign` process (Python, numpy,
#: numba, the digits MLP for `prune`) is 120–210 MiB.
REFUSED_PEAK = 512 * 2**20


def _id(case: Case) -> str:
    return case.id


@pytest.mark.parametrize("case", [c for c in CASES if not c.memory], ids=_id)
def test_bad_input_is_one_line_with_exit_2_and_changes_nothing(case, tmp_path, monkeypatch, capsys):
    write_inputs(case, tmp_path)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV, "")  # restored after the test, whatever --max-memory sets
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    code = main(list(case.argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out)
    assert one_line_error(err, case.message) is None, err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", [c for c in CASES if c.memory], ids=_id)
def test_work_beyond_the_memory_limit_is_refused_before_it_allocates(case):
    outcome = run_case(case, timeout=60)
    assert outcome.category(case) == "clean error", outcome.err
    assert outcome.peak_bytes < REFUSED_PEAK, outcome.peak_bytes


def test_a_sweep_point_beyond_the_limit_is_recorded_as_failed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV, "")
    config = tmp_path / "big.yaml"
    config.write_text(
        "name: big\nstages: [compress]\nbase: {format: csr, sparsity: 0.9}\n"
        "grid: {workload: [{synthetic: 16x16}, {synthetic: 100000x100000}]}\n"
    )
    out = tmp_path / "out"
    argv = ["sweep", str(config), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert "done 1 of 2 (1 now, 0 from earlier runs), failed 1" in capsys.readouterr().out
    from codesign.experiments.sweeps.store import Store

    with Store(out, create=False) as store:
        rows = store.rows()
    failed = [r for r in rows.values() if r.status == "failed"]
    assert [r.point["workload"]["synthetic"] for r in failed] == ["100000x100000"]
    assert failed[0].error_type == "codesign.limits.ResourceError"
    assert "needs about 112 GiB of memory" in failed[0].error_message


def test_synthesis_prints_progress_and_warns_when_long(monkeypatch, capsys):
    from codesign.experiments.jobs import hardware
    from codesign.hw import synth

    monkeypatch.setattr(synth, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(hardware, "SYNTH_SECONDS_PER_CELL", 1.0)
    assert main(["synth", "relative", "--spec", "r=3"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("note: block relative is an estimated 310 cells; its synthesis")
    assert err[1] == "synth relative: elaborating the block and writing its Verilog"
    assert any(line.startswith("synth relative: ") and "running Yosys" in line for line in err)
    assert any(line.startswith("  ") and " s: yosys: " in line for line in err)
    assert err[-1].startswith("synth relative: done in ")


# ---------------------------------------------------------------- property tests

#: Examples per property: a few dozen in `make test`, many in `make fuzz`.
SIZES = [
    pytest.param(30, id="quick"),
    pytest.param(1500, id="long", marks=pytest.mark.fuzz),
]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def _one_line(exc: Exception) -> None:
    text = str(exc)
    assert text and "\n" not in text, text


_WORDS = st.text(string.ascii_letters + string.digits + "_=.-", max_size=12)
_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["none", "None", "", "nan", "inf", "1e3", "0x10", "csr", "bool", "gf2"]),
    _WORDS,
)


@pytest.mark.parametrize("examples", SIZES)
def test_spec_items_build_a_spec_or_name_the_problem(examples):
    @_settings(examples)
    @given(
        fmt=st.sampled_from(sorted(FORMATS)),
        data=st.data(),
    )
    def check(fmt, data):
        fields = [f for f, _, _ in spec_class(fmt).field_help()]
        keys = st.one_of(st.sampled_from(fields or ["x"]), _WORDS)
        pairs = data.draw(st.lists(st.tuples(keys, _VALUES), max_size=5))
        items = [f"{k}={v}" for k, v in pairs]
        try:
            spec = parse_spec(fmt, items)
        except SpecError as exc:
            _one_line(exc)
            if len({k for k, _ in pairs}) < len(pairs):
                assert "given twice" in str(exc) or "expects key=value" in str(exc)
            return
        assert len({k for k, _ in pairs}) == len(pairs)
        assert type(spec).from_json(spec.to_json()) == spec

    check()


_KNOB = st.one_of(
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
)
_ARCH_KEYS = [
    "clock_ghz",
    "lanes",
    "decoders",
    "batch",
    "lane_fifo_rows",
    "activation_bits",
    "accumulator_bits",
    "bitmap_slice_bits",
    "index_units",
]


@pytest.mark.parametrize("examples", SIZES)
def test_simulator_knobs_build_a_machine_or_name_the_key(examples):
    @_settings(examples)
    @given(
        arch=st.dictionaries(st.sampled_from(_ARCH_KEYS), _KNOB, max_size=4),
        dram=st.dictionaries(st.sampled_from(["bytes_per_cycle", "latency_cycles"]), _KNOB),
        buffer=st.dictionaries(st.sampled_from(["bytes", "banks", "bank_bytes_per_cycle"]), _KNOB),
    )
    def check(arch, dram, buffer):
        doc = {"arch": {**arch, "dram": dram, "buffer": buffer}, "layers": [{"synthetic": "8x8"}]}
        try:
            cfg = parse_config(doc)
        except ConfigError as exc:
            _one_line(exc)
            return
        for name, field in Arch.__dataclass_fields__.items():
            value = getattr(cfg.arch, name)
            assert not isinstance(value, bool)
            kind = (int, float) if field.type == "float" else int  # an int is a number too
            assert isinstance(value, kind) and math.isfinite(value), (name, value)
        assert sum(n.nbytes for n in cfg.arch.memory_needs(8, 8, cfg.arch.batch)) > 0

    check()


_YAML_TEXT = st.text(
    alphabet=st.sampled_from(list("[]{}:-,&*!|>'\"#%@`?\n\t abcxyz019.") + ["\\", "\x00", "é"]),
    max_size=120,
)
_SCALAR = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
)
_DOCS = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("examples", SIZES)
def test_any_yaml_text_loads_or_is_one_line_naming_the_file(examples, tmp_path):
    path = tmp_path / "c.yaml"

    @_settings(examples)
    @given(text=_YAML_TEXT, raw=st.binary(max_size=40))
    def check(text, raw):
        for data in (text.encode(), raw):
            path.write_bytes(data)
            try:
                load_yaml(path)
            except ValueError as exc:
                _one_line(exc)
                assert str(path) in str(exc)

    check()


@pytest.mark.parametrize("examples", SIZES)
def test_yaml_documents_round_trip_through_the_loader(examples, tmp_path):
    path = tmp_path / "d.yaml"

    @_settings(examples)
    @given(doc=_DOCS)
    def check(doc):
        path.write_text(yaml.safe_dump(doc))
        assert load_yaml(path) == doc

    check()


def test_nesting_at_the_depth_limit_loads(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert load_yaml(path) is not None
    path.write_text("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(ValueError, match="nested more than 64 levels"):
        load_yaml(path)


@pytest.mark.parametrize("examples", SIZES)
def test_sweep_knobs_expand_or_name_the_key(examples):
    @_settings(examples)
    @given(
        sparsity=st.lists(_KNOB, min_size=1, max_size=2),
        quantize=st.lists(_KNOB, min_size=1, max_size=2),
        spec=st.dictionaries(st.sampled_from(["col_bits", "ptr_bits", "r"]), _KNOB, max_size=2),
    )
    def check(sparsity, quantize, spec):
        config = {
            "stages": ["compress"],
            "base": {"workload": {"synthetic": "8x8"}, "format": "csr", "spec": spec},
            "grid": {"sparsity": sparsity, "quantize": quantize},
        }
        try:
            points = expand(validate_config(config))
        except SweepConfigError as exc:
            _one_line(exc)
            return
        for point in points:
            assert point["quantize"] is None or type(point["quantize"]) is int
            assert point["sparsity"] is None or 0 <= point["sparsity"] < 1

    check()


def test_the_catalogue_ids_are_unique_and_its_inputs_are_files():
    assert len({c.id for c in CASES}) == len(CASES)
    for case in CASES:
        for name in case.files:
            assert not Path(name).is_absolute() and ".." not in Path(name).parts
