"""codesign.files: outputs and caches written whole or not at all, failures named."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codesign.files import (
    OutputError,
    check_output,
    drop_corrupt,
    replacing,
    write_files,
    write_json,
    write_text,
)

LINUX = sys.platform.startswith("linux")


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_text_creates_the_folder_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "b" / "out.json"
    assert write_json(path, {"x": [1, 2]}) == path
    assert path.read_text() == '{\n  "x": [\n    1,\n    2\n  ]\n}\n'
    assert listing(path.parent) == ["out.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_replacing_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="plot failed"), replacing(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv" and tmp.name.startswith(".")
        tmp.write_text("half")
        raise RuntimeError("plot failed")
    assert path.read_text() == "old\n" and listing(tmp_path) == ["out.csv"]


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "cache.json"
    path.write_text('{"total": 7}\n')
    script = textwrap.dedent(
        f"""
        import time
        from codesign.files import replacing
        with replacing({str(path)!r}) as tmp:
            tmp.write_text('{{"tot')
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert path.read_text() == '{"total": 7}\n'


def test_a_pair_is_checked_before_either_file_is_written(tmp_path):
    (tmp_path / "block.json").mkdir()
    (tmp_path / "block.v").write_text("old verilog")
    with pytest.raises(OutputError, match=r"block\.json: it is a directory"):
        write_files({tmp_path / "block.v": "new verilog", tmp_path / "block.json": "{}"})
    assert (tmp_path / "block.v").read_text() == "old verilog"
    assert listing(tmp_path) == ["block.json", "block.v"]


def test_a_symbolic_link_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.skipif(not LINUX, reason="Linux device files")
def test_devices_are_written_in_place_and_their_errors_named():
    write_text("/dev/null", "discarded")
    assert Path("/dev/null").is_char_device()
    with pytest.raises(OutputError, match="^cannot write /dev/full: no space left on the device$"):
        write_text("/dev/full", "x" * 10)


@pytest.mark.skipif(not LINUX, reason="Linux /proc")
def test_check_output_refuses_before_any_work(tmp_path):
    with pytest.raises(
        OutputError, match="^cannot write /proc/version: cannot create a file in /proc"
    ):
        check_output("/proc/version")
    with pytest.raises(OutputError, match="it is a directory; give a file name"):
        check_output(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file is not a directory"):
        check_output(tmp_path / "file" / "out.json")
    assert check_output(tmp_path / "new" / "deeper" / "out.json")
    assert listing(tmp_path) == ["file"]


def test_drop_corrupt_names_the_file_and_removes_it(tmp_path, caplog):
    path = tmp_path / "entry.json"
    path.write_text("")
    with caplog.at_level(logging.WARNING, logger="codesign"):
        drop_corrupt(path, "empty")
    assert not path.exists()
    assert caplog.messages == [
        f"codesign: dropped the corrupt cache file {path} (empty); recomputing it"
    ]
