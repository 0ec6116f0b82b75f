"""Outputs that cannot be written and cache entries that cannot be read: one line
naming the file, exit code 2, nothing half-written; a corrupt cache entry is named,
dropped and recomputed."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest

from codesign.experiments.cli.main import main
from codesign.experiments.jobs.simulate import block_cells
from codesign.models.specs import RelativeSpec
from codesign.sim.work import DecoderUse

LINUX = sys.platform.startswith("linux")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verilog_checks_both_outputs_before_writing_either(capsys, tmp_path):
    (tmp_path / "relative_decoder.json").mkdir()
    code, out, err = run(capsys, "verilog", "relative", "-o", str(tmp_path))
    assert code == 2 and out == ""
    assert err == (
        f"codesign: error: cannot write {tmp_path}/relative_decoder.json: it is a directory; "
        f"give a file name\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relative_decoder.json"]


@pytest.mark.skipif(not LINUX, reason="Linux /proc")
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/proc/version", "cannot write /proc/version: cannot create a file in /proc: "),
        ("/proc/version/x.json", "cannot write /proc/version/x.json: /proc/version is not a"),
    ],
)
def test_an_unwritable_json_output_fails_before_the_work(capsys, target, message):
    code, out, err = run(
        capsys, "compress", "--format", "csr", "--synthetic", "8x8", "--json", target
    )
    assert code == 2 and out == ""  # refused before compressing
    assert err.startswith(f"codesign: error: {message}") and err.count("\n") == 1


def test_a_json_output_that_is_a_directory_is_named(capsys, tmp_path):
    code, out, err = run(
        capsys, "compress", "--format", "csr", "--synthetic", "8x8", "--json", str(tmp_path)
    )
    assert code == 2 and out == ""
    assert err == f"codesign: error: cannot write {tmp_path}: it is a directory; give a file name\n"


@pytest.mark.skipif(not LINUX, reason="Linux /dev/full")
def test_a_full_device_is_named(capsys):
    code, _, err = run(
        capsys, "compress", "--format", "csr", "--synthetic", "8x8", "--json", "/dev/full"
    )
    assert code == 2
    assert err == "codesign: error: cannot write /dev/full: no space left on the device\n"


RELATIVE = DecoderUse("relative", "relative", RelativeSpec(r=4), {"n_cols": 37}, 1, np.zeros(1))


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> tuple[str, int]:
    """The synthesis cache entry of :data:`RELATIVE` (file name, cells), made once: the
    first call synthesizes and stores, the second reads the entry."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODESIGN_CACHE", str(cache))
        cells = block_cells(RELATIVE)
        (entry,) = (cache / "synth").iterdir()
        assert sum(json.loads(entry.read_text())["instances"].values()) == cells > 0
        assert block_cells(RELATIVE) == cells
    return entry.name, cells


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"),
        (b'{"key": {}, "tot', "JSONDecodeError: Unterminated string"),
        (b'{"total": \x80}', "UnicodeDecodeError"),
        (b'{"key": {}}', "KeyError: 'instances'"),
        (b'{"instances": {"a": -3}, "memory_bits": {}}', "instances is {'a': -3}, not counts"),
        (b'{"instances": {}, "memory_bits": {}}', "instances is {}, not counts"),
        (b'{"instances": {"a": 1}, "memory_bits": []}', "memory_bits is [], not counts"),
    ],
)
def test_a_corrupt_synthesis_cache_entry_is_named_dropped_and_recomputed(
    synthesized, tmp_path, monkeypatch, caplog, content, reason
):
    name, cells = synthesized
    monkeypatch.setenv("CODESIGN_CACHE", str(tmp_path))
    entry = tmp_path / "synth" / name
    entry.parent.mkdir()
    entry.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="codesign"):
        assert block_cells(RELATIVE) == cells
    (message,) = caplog.messages
    assert message.startswith(f"codesign: dropped the corrupt cache file {entry} ({reason}")
    assert message.endswith("); recomputing it")
    assert sum(json.loads(entry.read_text())["instances"].values()) == cells
    assert [p.name for p in (tmp_path / "synth").iterdir()] == [entry.name]
