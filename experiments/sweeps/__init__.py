"""The sweep engine: configs expanded into points, the stages a point runs, the store.

:mod:`.config` reads and expands a sweep config, :mod:`.expressions` parses its derived
columns, :mod:`.stages` runs one point (compress, prune, synth, simulate), :mod:`.store`
keeps one row per point in SQLite, :mod:`.runner` spreads points over a process pool or a
dask.distributed cluster. May import :mod:`codesign.experiments.jobs` and the packages
below it; never reports, studies or the command line.
"""
