"""hw: the Verilog a tool flow takes (module names, header, timescale) and the sidecar's
protocol section with its JSON Schema; the YoWASP warm-up."""

from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema
import pytest

from codesign.hw import yowasp
from codesign.hw.blocks import BLOCKS
from codesign.hw.build import verilog
from codesign.hw.emit import KEYWORDS, check_module_name
from codesign.hw.protocol import schema, validate
from codesign.models.specs import CsrSpec, LbiSpec, RelativeSpec, ViterbiSpec, XorSpec

#: One small build of every block.
BUILDS = {
    "relative": (RelativeSpec(r=3), {"n_cols": 10}),
    "viterbi": (ViterbiSpec(n_in=1, n_out=4, n_ff=4, n_c=2, threshold=1), {}),
    "viterbi_search": (
        ViterbiSpec(n_in=1, n_out=3, n_ff=2, n_c=2, threshold=1, segment=4),
        {"score_bits": 4, "max_segment": 4},
    ),
    "xor": (XorSpec(n_in=3, n_out=8, n_s=2), {"block_bits": 4}),
    "lbi": (LbiSpec(rank=2, tile_rows=4, tile_cols=5), {}),
    "tile": (CsrSpec(), {"lanes": 2, "decoders": 1, "n_cols": 8, "bank_words": 4}),
}


@pytest.fixture(scope="module")
def built() -> dict[str, tuple[str, dict]]:
    return {name: verilog(name, spec, **params) for name, (spec, params) in BUILDS.items()}


def test_every_block_is_built_here():
    assert set(BUILDS) == set(BLOCKS)


def test_module_names_are_plain_identifiers_and_no_keywords():
    assert {"xor", "module", "and", "logic", "interface"} <= KEYWORDS
    for block in BLOCKS.values():
        check_module_name(block.module)
    assert BLOCKS["xor"].module == "xor_decoder"
    with pytest.raises(ValueError, match="'xor' is a Verilog/SystemVerilog keyword"):
        check_module_name("xor")
    with pytest.raises(ValueError, match="not a plain Verilog identifier"):
        check_module_name("xor-decoder")


@pytest.mark.parametrize("name", list(BUILDS))
def test_text_opens_with_header_timescale_and_the_module(built, name):
    text, sidecar = built[name]
    header = text[: text.index("`timescale")]
    assert all(line.startswith("//") or not line for line in header.splitlines())
    assert "`timescale 1ns / 1ps\n`default_nettype none\n" in text
    assert text.rstrip().endswith("`default_nettype wire")
    assert re.search(rf"^module {sidecar['top']}\(", text, re.MULTILINE)
    assert "synchronous, active high" in header and "Latency:" in header
    # every port: one header line with its name, direction and width
    for entry in sidecar["ports"].values():
        if entry["lsb"] == 0 and entry["width"] == entry["port_width"]:
            pattern = rf"^// {entry['port']}\s+{entry['dir']}\s+{entry['port_width']}\s+\S"
            assert re.search(pattern, header, re.MULTILINE), entry["port"]
    # every payload field: its bit slice and name
    for stream in sidecar["protocol"]["streams"].values():
        for field, f in stream["fields"].items():
            assert f"[{f['lsb'] + f['width'] - 1}:{f['lsb']}]" in header
            assert re.search(rf"\] +{field} \({f['encoding']}\)", header), field


@pytest.mark.parametrize("name", list(BUILDS))
def test_protocol_matches_the_ports_and_validates(built, name):
    _, sidecar = built[name]
    protocol = json.loads(json.dumps(sidecar["protocol"]))
    validate(protocol)
    ports = sidecar["ports"]
    assert protocol["reset"] == {**protocol["reset"], "port": "rst", "synchronous": True}
    assert protocol["latency"]["cycles"] == sidecar["latency"]
    assert protocol["function"]["kind"] == BLOCKS[name].module
    for stream_name, stream in protocol["streams"].items():
        assert stream["valid"] == ports[f"{stream_name}.valid"]["port"]
        assert stream["ready_port"] == ports[f"{stream_name}.ready"]["port"]
        assert stream["payload_width"] == ports[f"{stream_name}.payload"]["port_width"]
        for field, f in stream["fields"].items():
            slot = ports[f"{stream_name}.payload.{field}"]
            assert (f["lsb"], f["width"]) == (slot["lsb"], slot["width"])
    for matrix in ("taps", "M", "keep_table"):
        if matrix in json.dumps(protocol["function"]):
            assert matrix in sidecar["matrices"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["reset"].update(active="low"), "'high' was expected"),
        (lambda p: p.pop("cycles"), "'cycles' is a required property"),
        (lambda p: p["streams"]["out"]["fields"]["mask"].pop("meaning"), "'meaning'"),
        (lambda p: p["streams"]["in"].update(valid="in valid"), "does not match"),
    ],
)
def test_schema_rejects_a_broken_protocol(built, change, message):
    protocol = json.loads(json.dumps(built["viterbi"][1]["protocol"]))
    change(protocol)
    with pytest.raises(jsonschema.ValidationError, match=message):
        validate(protocol)


def test_schema_is_package_data():
    path = resources.files("codesign.hw").joinpath("protocol.schema.json")
    assert json.loads(path.read_text()) == schema()
    jsonschema.Draft202012Validator.check_schema(schema())


def test_warm_runs_a_tool_once_then_never(tmp_path, monkeypatch):
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path))
    tool = yowasp.Tool("echo", "pytest", "builtins", "len", ())
    monkeypatch.setitem(yowasp.TOOLS, "echo", tool)
    calls = []
    real_run = yowasp.subprocess.run
    monkeypatch.setattr(
        yowasp.subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k)
    )
    yowasp.warm("echo")
    yowasp.warm("echo")
    assert len(calls) == 1
    assert list((tmp_path / "codesign-warm").iterdir())[0].name.startswith("echo-")
    assert yowasp.run("echo", [], cwd=tmp_path).returncode == 0
    with pytest.raises(yowasp.ToolError, match=r"echo failed \(2\)"):
        yowasp.run("echo", ["a", "b"], cwd=tmp_path)
