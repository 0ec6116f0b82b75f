"""The numba cache folder: beside the sources, the user's cache, or a temporary
fallback when neither is writable (a read-only install and home)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from codesign.models import numba_cache

UNWRITABLE = Path("/proc/codesign-no-such-dir/numba")
"""Nobody, root included, can create a folder under /proc."""


def test_no_fallback_when_numba_can_cache_beside_the_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert numba_cache.fallback_dir(tmp_path, UNWRITABLE) is None
    assert (tmp_path / "__pycache__").is_dir()


def test_no_fallback_when_the_user_cache_is_writable(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert numba_cache.fallback_dir(UNWRITABLE, tmp_path / "numba") is None


def test_fallback_to_the_temporary_directory_when_nothing_is_writable(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    folder = numba_cache.fallback_dir(UNWRITABLE, UNWRITABLE)
    assert folder == Path(tempfile.gettempdir()) / f"codesign-numba-{os.getuid()}"


def test_a_numba_cache_dir_set_by_the_user_is_kept(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    assert numba_cache.fallback_dir(UNWRITABLE, UNWRITABLE) is None


def test_configure_points_numba_at_the_fallback(tmp_path, monkeypatch):
    import numba.core.config

    monkeypatch.setattr(numba_cache, "fallback_dir", lambda: tmp_path)
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")
    monkeypatch.setattr(numba.core.config, "CACHE_DIR", "")
    numba_cache.configure()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path)
    configured = numba.core.config.CACHE_DIR
    assert configured == str(tmp_path)


def test_user_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert numba_cache.user_cache() == tmp_path / "numba"
