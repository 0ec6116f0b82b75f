"""Amaranth decoder components elaborated from the specs of ``models``."""
