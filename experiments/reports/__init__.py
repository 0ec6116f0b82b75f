"""Reports of a sweep directory: the results table, figures and the summary.

:mod:`.results_table` turns store rows into a table with derived columns, :mod:`.figures`
draws it with the column names and units of :mod:`.labels`, :mod:`.sweep_report` writes
CSV, PNG/SVG and ``summary.md``. May import
:mod:`codesign.experiments.sweeps` and :mod:`codesign.experiments.jobs`.
"""
