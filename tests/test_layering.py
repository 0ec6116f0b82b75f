"""The import graph of ``codesign.*``, read from the sources: no cycles, no upward arrows.

Every ``import`` and ``from ... import`` of a module counts, at any depth (inside a
function too), so a cycle broken by a deferred import is still a cycle here. The rules
(docs/architecture.md):

* top packages: ``models`` imports none of the others; ``hw`` and ``sim`` import
  ``models`` only (not each other); ``experiments`` may import all three; nothing imports
  ``experiments``;
* inside ``experiments``: ``jobs`` <- ``sweeps`` <- ``reports`` <- ``cli`` (each may
  import those to its left); ``studies`` may import ``jobs``, ``sweeps`` and
  ``reports``; nothing imports ``cli``;
* the root modules ``codesign`` (the version), ``codesign.files`` (atomic writes),
  ``codesign.limits`` (the memory limit) and ``codesign.config_files`` (the config
  loader) may be imported by every subpackage, and import nothing of the project
  themselves;
* no cycle between modules, inside a package or across packages.
"""

from __future__ import annotations

from import_graph import (
    TOP_ALLOWED,
    build_graph,
    cycles,
    experiments_part,
    render,
    top_package,
    upward_arrows,
)


def test_graph_reads_every_package():
    graph = build_graph()
    tops = {top_package(m) for m in graph}
    assert tops == set(TOP_ALLOWED) | {"codesign"}
    assert {experiments_part(m) for m in graph if top_package(m) == "experiments"} >= {
        "jobs",
        "sweeps",
        "reports",
        "studies",
        "cli",
    }
    # the graph sees imports nested in functions (the demo imports hw inside one)
    assert "codesign.hw.build" in graph["codesign.experiments.cli.demo"]


def test_shared_root_modules_import_nothing_of_the_project():
    graph = build_graph()
    for module in ("codesign", "codesign.files", "codesign.limits", "codesign.config_files"):
        assert graph[module] == set(), module


def test_no_import_cycles():
    found = cycles(build_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_upward_arrows():
    bad = upward_arrows(build_graph())
    assert not bad, "arrows the layering forbids:\n" + "\n".join(f"{a} -> {b}" for a, b in bad)


def test_checks_catch_a_cycle_and_an_upward_arrow():
    graph = {
        "codesign.models.a": {"codesign.models.b"},
        "codesign.models.b": {"codesign.models.a", "codesign.hw.x"},
        "codesign.hw.x": {"codesign.sim.y"},
        "codesign.sim.y": set(),
        "codesign.experiments.jobs.j": {"codesign.experiments.reports.r"},
        "codesign.experiments.reports.r": set(),
        "codesign.experiments.studies.s": {"codesign.experiments.cli.main"},
        "codesign.experiments.cli.main": set(),
    }
    assert cycles(graph) == [["codesign.models.a", "codesign.models.b", "codesign.models.a"]]
    assert upward_arrows(graph) == [
        ("codesign.experiments.jobs.j", "codesign.experiments.reports.r"),
        ("codesign.experiments.studies.s", "codesign.experiments.cli.main"),
        ("codesign.hw.x", "codesign.sim.y"),
        ("codesign.models.b", "codesign.hw.x"),
    ]


def test_render_lists_package_arrows():
    text = render(build_graph())
    assert "hw -> models" in text
    assert "experiments.cli -> experiments.reports" in text
    assert [line for line in text.splitlines() if line.strip().startswith("models ->")] == [
        "  models -> codesign.files  (2)",
        "  models -> codesign.limits  (6)",
    ]


def test_the_install_claims_one_import_name_beside_a_users_own_models_package(tmp_path):
    """A user's project with its own ``models``, ``sim``, ``hw`` and ``experiments``
    packages imports its own; ``codesign.models`` is this project's."""
    import subprocess
    import sys

    for name in ("models", "sim", "hw", "experiments"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"OWNER = 'user {name}'\n")
    script = (
        "import models, sim, hw, experiments, codesign.models.csr, codesign.sim.engine\n"
        "print(models.OWNER, sim.OWNER, hw.OWNER, experiments.OWNER)\n"
        "print(codesign.models.csr.__name__)\n"
        "from importlib.metadata import distribution\n"
        "print(distribution('sparse-codesign').read_text('top_level.txt').split())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "user models user sim user hw user experiments",
        "codesign.models.csr",
        "['codesign']",
    ]
