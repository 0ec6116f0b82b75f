"""The ``codesign`` command line, sweeps and reports."""
