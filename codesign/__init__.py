"""sparse-codesign: co-design of compressed sparse neural-network weights and their decoders.

One import package with four subpackages, each kept in its own top-level folder of the
source tree and mapped here by the build backend:

* :mod:`codesign.models` — golden models: pruning methods, storage formats, workloads;
* :mod:`codesign.hw` — Amaranth decoder blocks, Verilog and JSON sidecars, synthesis;
* :mod:`codesign.sim` — the SimPy accelerator model, its closed form and energy tables;
* :mod:`codesign.experiments` — the ``codesign`` command line, sweeps, reports, studies.

Three modules sit beside them and may be imported by all four: :mod:`codesign.files`,
through which every output and cache file is written (atomically);
:mod:`codesign.limits`, the memory limit every piece of work is checked against before
it allocates (``--max-memory``); and :mod:`codesign.config_files`, the safe YAML loader
and number rule of every configuration file.
"""


def __getattr__(name: str) -> str:
    """``__version__``: the installed distribution's version, looked up on first use
    (the metadata lookup costs tens of milliseconds every command would pay)."""
    if name != "__version__":
        raise AttributeError(f"module 'codesign' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("sparse-codesign")
    except PackageNotFoundError:  # a source tree used without installing it
        found = "0+unknown"
    globals()["__version__"] = found
    return found
