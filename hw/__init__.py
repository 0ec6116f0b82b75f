"""Amaranth decoder components elaborated from the specs of ``models``; files are written
through :mod:`codesign.files`."""
