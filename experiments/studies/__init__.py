"""The named studies, each runnable as ``python -m codesign.experiments.studies.<name>``.

``viterbi``, ``xor``, ``lbi``, ``darb``, ``trp``, ``accuracy`` (every method on the digits
MLP), ``sim`` (every format on the simulated accelerator) and ``codesign`` (Pareto front and
best format per layer from sweep stores). May import jobs, sweeps and reports; never the
command line.
"""
