"""Specs: validation messages name the field and range; JSON round-trips."""

from __future__ import annotations

import pytest

from codesign.models.registry import FORMATS
from codesign.models.specs import (
    BlockSpec,
    CsrSpec,
    LbiSpec,
    NmSpec,
    RelativeSpec,
    Spec,
    SpecError,
    ViterbiSpec,
    XorSpec,
    parse_spec,
    spec_class,
)


@pytest.mark.parametrize("name", list(FORMATS))
def test_default_spec_json_roundtrip(name):
    spec = spec_class(name)()
    assert Spec.from_json(spec.to_json()) == spec
    assert type(spec).from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    "spec",
    [CsrSpec(col_bits=12, ptr_bits=20), RelativeSpec(r=8), NmSpec(n=1, m=8), BlockSpec(b=16)],
)
def test_nondefault_spec_json_roundtrip(spec):
    back = Spec.from_json(spec.to_json())
    assert back == spec and type(back) is type(spec)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: RelativeSpec(r=0), r"RelativeSpec.r must be in 1\.\.32, got 0"),
        (lambda: RelativeSpec(r=33), r"RelativeSpec.r must be in 1\.\.32, got 33"),
        (lambda: RelativeSpec(r=2.5), r"RelativeSpec.r must be an integer in 1\.\.32, got 2\.5"),
        (lambda: NmSpec(n=5, m=4), r"NmSpec.n must be in 1\.\.m=4, got 5"),
        (lambda: NmSpec(n=1, m=0), r"NmSpec.m must be in 1\.\.64, got 0"),
        (lambda: BlockSpec(b=0), r"BlockSpec.b must be in 1\.\.4096, got 0"),
        (lambda: CsrSpec(col_bits=0), r"CsrSpec.col_bits must be in 1\.\.64, got 0"),
        (lambda: BlockSpec(b=True), r"BlockSpec.b must be an integer"),
        (lambda: XorSpec(dp_states=0), r"XorSpec.dp_states must be in 1\.\.1048576, got 0"),
        (lambda: XorSpec(dp_states=2**21), r"XorSpec.dp_states must be in 1\.\.1048576"),
    ],
)
def test_validation_names_field_and_range(factory, message):
    with pytest.raises(SpecError, match=message):
        factory()


def test_from_json_rejects_unknown_field_and_format():
    with pytest.raises(SpecError, match="RelativeSpec has no field\\(s\\) q; fields are r"):
        Spec.from_json('{"format": "relative", "r": 4, "q": 1}')
    with pytest.raises(SpecError, match="unknown format 'zzz'"):
        Spec.from_json('{"format": "zzz"}')
    with pytest.raises(SpecError, match="does not match CsrSpec"):
        CsrSpec.from_json('{"format": "nm"}')


def test_parse_spec():
    assert parse_spec("nm", ["n=1", "m=8"]) == NmSpec(n=1, m=8)
    assert parse_spec("csr", ["col_bits=none"]) == CsrSpec()
    with pytest.raises(SpecError, match="NmSpec has no field 'k'"):
        parse_spec("nm", ["k=3"])
    with pytest.raises(SpecError, match="--spec expects key=value"):
        parse_spec("nm", ["n"])
    with pytest.raises(SpecError, match="NmSpec.n must be an integer, got 'two'"):
        parse_spec("nm", ["n=two"])


def test_field_help_lists_ranges():
    rows = dict((f, a) for f, _, a in CsrSpec.field_help())
    assert rows["col_bits"].startswith("1..64")
    assert dict((f, a) for f, _, a in NmSpec.field_help())["m"] == "1..64"
    assert dict((f, a) for f, _, a in XorSpec.field_help())["dp_states"] == "1..1048576"


def test_bounds_on_other_fields_are_checked_and_listed():
    with pytest.raises(SpecError, match=r"ViterbiSpec.threshold must be in 0\.\.2\^n_c=4, got 5"):
        ViterbiSpec(n_c=2, threshold=5)
    with pytest.raises(SpecError, match=r"LbiSpec.rank must be in 1\.\.min\(tile_rows, tile"):
        LbiSpec(rank=5, tile_rows=4)
    rows = {f: a for f, _, a in ViterbiSpec.field_help()}
    assert rows["threshold"] == (
        "0..2^n_c (0..16 at the defaults) or unset (calibrated to the sparsity)"
    )
    assert rows["n_c"] == "1..8, at most n_in + n_ff (1..8 at the defaults)"
    assert {f: a for f, _, a in LbiSpec.field_help()}["rank"].startswith(
        "1..16, at most min(tile_rows, tile_cols) (1..16 at the defaults)"
    )


@pytest.mark.parametrize(
    ("n_c", "sparsity", "threshold"),
    [(4, 0.9, 2), (4, 0.75, 4), (4, 0.99, 1), (8, 0.9, 26), (1, 0.0, 2)],
)
def test_rate_threshold(n_c, sparsity, threshold):
    """T = max(1, ⌈(1 − S)·2^n_c⌉): the lowest comparator rate at or above 1 − S."""
    spec = ViterbiSpec(n_c=n_c)
    assert spec.rate_threshold(sparsity) == threshold
    assert (threshold - 1) / 2**n_c < 1 - sparsity <= threshold / 2**n_c or threshold == 1
    assert spec.with_rate_threshold(sparsity).threshold == threshold
    assert ViterbiSpec(n_c=n_c, threshold=1).with_rate_threshold(sparsity).threshold == 1
    assert ViterbiSpec().rate_threshold() == 2  # at DEFAULT_SPARSITY
