"""Everything a user runs: the ``codesign`` command line, sweeps, reports and studies.

Five subpackages, layered; an arrow is an allowed import, and none goes the other way:

* :mod:`~codesign.experiments.jobs` — the work of one command without its argument parsing
  (load and compress layers, prune and fine-tune, simulate a config, build a block), and
  the text tables that print it. Imports models, hw and sim only.
* :mod:`~codesign.experiments.sweeps` — the sweep engine: configs and their expansion into
  points, the stages a point runs, the resumable SQLite store, the process-pool and dask
  runners. Imports jobs.
* :mod:`~codesign.experiments.reports` — a sweep directory's CSV, figures and summary.
  Imports sweeps and jobs.
* :mod:`~codesign.experiments.studies` — the named studies (``python -m
  codesign.experiments.studies.<name>``). Import jobs, sweeps and reports.
* :mod:`~codesign.experiments.cli` — the ``codesign`` command, one module per subcommand.
  Imports jobs, sweeps and reports (never studies); nothing imports it.

``configs/`` holds the example simulator configs and the named experiments' sweep configs
(shipped as package data, :data:`CONFIGS`).
"""

from pathlib import Path

#: The shipped example configs (``sim_*.yaml``, ``sweep_*.yaml``, ``exp*_*.yaml``).
CONFIGS = Path(__file__).resolve().parent / "configs"
