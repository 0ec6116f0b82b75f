"""The ``codesign`` command line: :mod:`.main` assembles the parser from one module per
subcommand (each with ``register(subparsers)``; :mod:`.command` holds what they share).
May import :mod:`codesign.experiments.jobs`, :mod:`~codesign.experiments.sweeps` and
:mod:`~codesign.experiments.reports` (never the studies); nothing imports it.
"""
