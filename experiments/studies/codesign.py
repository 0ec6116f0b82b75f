"""Experiments 7 and 8 from the results store of `codesign sweep` runs of the
``simulate`` stage.

**Experiment 7** (``pareto DIR``): every (storage format, machine) point of the sweep
on the Pareto plane energy per dense-equivalent MAC (pJ, lower is better) vs
dense-equivalent throughput (GOPS, higher is better), one panel per workload, colour =
storage (bits per weight), the non-dominated points (:func:`pareto_front`) outlined
and joined. Writes ``pareto.png``/``.svg`` and ``pareto.md`` (the front's points).

**Experiment 8** (``select DIR [DIR ...]``): per layer (a digits MLP layer swept with
``layer: fcN``, or a whole single-layer workload such as a 4096×4096 synthetic layer),
the best candidate — storage (mask format + value format) and decoder parameters —
by energy (lowest pJ/MAC) and by throughput (highest GOPS) among the candidates that
meet a quality bound (:class:`QualityBound`): on the digits MLP the accuracy loss after
masked fine-tuning (``accuracy_loss`` ≤ ``--max-loss``); on a layer without a task the
kept |w| mass ratio (``kept_mass_ratio`` ≥ ``--min-mass``, a proxy: how much weight
magnitude the storage's structure keeps compared with magnitude pruning at the same
kept fraction). Ties are broken by the other objective, then by fewer bits per weight,
then by the candidate's label (:func:`select`). Writes ``codesign.md`` (a table per
layer and every candidate) and ``codesign.png``/``.svg``.

::

    python -m codesign.experiments.studies.codesign pareto results/sweeps/exp7
    python -m codesign.experiments.studies.codesign select results/sweeps/exp8_digits \\
        results/sweeps/exp8_4096 --out results/exp8
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from codesign.experiments.reports.labels import axis_label
from codesign.experiments.reports.sweep_report import workload_label
from codesign.experiments.sweeps.store import DONE, Store
from codesign.files import replacing, write_text
from codesign.models.specs import spec_class

#: Metric names the study reads (see the simulate stage).
ENERGY, THROUGHPUT, BITS = "pj_per_mac", "gops", "bits_per_weight"
#: Tick labels as plain numbers (log axes included).
PLAIN = FuncFormatter(lambda value, _: f"{value:g}")
#: Default bounds: at most one point of accuracy lost; at least 90 % of the |w| mass
#: magnitude pruning keeps.
MAX_LOSS, MIN_MASS = 0.01, 0.9


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One done point of a sweep: the ``point`` dict and its ``metrics``."""

    point: dict[str, Any]
    metrics: dict[str, Any]

    def get(self, name: str) -> Any:
        """A metric (None when the point did not report it)."""
        return self.metrics.get(name)

    @property
    def workload(self) -> str:
        """The workload's short label (``digits``, ``4096x4096``, …)."""
        return workload_label(self.point["workload"])

    @property
    def layer(self) -> str:
        """The layer the point measures: ``workload layer`` or the workload."""
        layer = self.point.get("layer")
        return f"{self.workload} {layer}" if layer else self.workload

    @property
    def mask_format(self) -> str:
        fmt = self.point["format"]
        if fmt == "xor":
            return self.point["spec"]["mask_format"]
        return {"dense": "none (dense)", "lowrank": "none (factors)"}.get(fmt, fmt)

    @property
    def value_format(self) -> str:
        if self.point["format"] == "xor":
            return f"xor {self.point['spec']['value_bits']}-bit"
        bits = self.point["quantize"]
        return f"int{bits}" if bits is not None else "float32"

    @property
    def storage(self) -> str:
        """``mask + values``."""
        return f"{self.mask_format} + {self.value_format}"


def sweep_candidates(directory: str | Path) -> list[Candidate]:
    """The done points of the last sweep run in ``directory``, in sweep order."""
    with Store(directory, create=False) as store:
        points = store.points()
        rows = store.rows([key for key, _ in points])
    return [
        Candidate(rows[key].point, rows[key].metrics)
        for key, _ in points
        if key in rows and rows[key].status == DONE
    ]


def decoder_params(candidate: Candidate, peers: Iterable[Candidate] = ()) -> str:
    """The spec fields that tell ``candidate`` apart: those differing from the spec's
    defaults or taking another value in a ``peer`` of the same format, or every set
    field when none does (``mask_format`` is shown as the mask format, not here); plus
    ``sparsity`` when a pruned peer has another. ``-``: a spec without set fields."""
    fmt, spec = candidate.point["format"], candidate.point["spec"]
    defaults = {f.name: f.default for f in dataclasses.fields(spec_class(fmt))}
    same = [p for p in peers if p.point["format"] == fmt]
    fields = {k: v for k, v in spec.items() if k != "mask_format" and v is not None}
    shown = {
        k: v
        for k, v in fields.items()
        if v != defaults.get(k) or any(p.point["spec"].get(k) != v for p in same)
    }
    text = [f"{k}={v}" for k, v in (shown or fields).items()]
    sparsity = candidate.point["sparsity"]
    if sparsity is not None and any(p.point["sparsity"] not in (None, sparsity) for p in peers):
        text.append(f"sparsity={sparsity}")
    return " ".join(text) or "-"


# ---------------------------------------------------------------- experiment 7


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices (ascending) of the points (throughput, energy) no other point dominates;
    a point dominates another when its throughput is ≥ and its energy ≤, one of them
    strictly. Equal points do not dominate each other."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (u >= x and v <= y) and (u > x or v < y) for j, (u, v) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return front


def _machine(candidate: Candidate) -> str:
    arch = candidate.point["arch"]
    return ", ".join(f"{k}={v}" for k, v in arch.items()) or "default machine"


def _bits_norm(candidates: Sequence[Candidate]) -> LogNorm:
    bits = [c.get(BITS) for c in candidates]
    return LogNorm(min(bits), max(bits))


def _bits_colorbar(fig: Figure, dots: Any, axes: Any) -> None:
    bar = fig.colorbar(dots, ax=axes, label=axis_label(BITS))
    low, high = dots.norm.vmin, dots.norm.vmax
    bar.set_ticks([t for t in (0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 16, 32) if low <= t <= high])
    bar.ax.yaxis.set_major_formatter(PLAIN)
    bar.ax.yaxis.set_minor_formatter(NullFormatter())


def _energy_axis(ax: Any) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(PLAIN)
    ax.set_ylabel(axis_label(ENERGY))
    ax.set_xlabel(axis_label(THROUGHPUT))
    ax.grid(alpha=0.3, which="both")


def _annotate(ax: Any, text: str, x: float, y: float) -> None:
    """Label a point, to its left when it lies in the right third of the axes."""
    lo, hi = ax.get_xlim()
    left = x > lo + 2 * (hi - lo) / 3
    ax.annotate(
        text,
        (x, y),
        xytext=(-5 if left else 5, 5),
        textcoords="offset points",
        ha="right" if left else "left",
        fontsize=7,
    )


def draw_pareto(candidates: Sequence[Candidate], out: Path) -> list[Path]:
    """Experiment 7's figure (one panel per workload) as ``out``/pareto.png and .svg."""
    workloads = list(dict.fromkeys(c.workload for c in candidates))
    fig = Figure(figsize=(7 * len(workloads), 5.6))
    axes = fig.subplots(1, len(workloads), squeeze=False)[0]
    norm = _bits_norm(candidates)
    for ax, workload in zip(axes, workloads, strict=True):
        sel = [c for c in candidates if c.workload == workload]
        xy = [(c.get(THROUGHPUT), c.get(ENERGY)) for c in sel]
        front = pareto_front(xy)
        dots = ax.scatter(
            *zip(*xy, strict=True), c=[c.get(BITS) for c in sel], norm=norm, cmap="viridis", s=24
        )
        edge = sorted(((xy[i], sel[i]) for i in front), key=lambda e: e[0])
        ax.plot([p[0] for p, _ in edge], [p[1] for p, _ in edge], color="tab:red", lw=1.2, zorder=1)
        ax.scatter(
            [p[0] for p, _ in edge],
            [p[1] for p, _ in edge],
            facecolors="none",
            edgecolors="tab:red",
            s=90,
            lw=1.5,
            label="Pareto front",
        )
        _energy_axis(ax)
        for (x, y), c in edge:
            _annotate(ax, c.storage, x, y)
        ax.set_title(f"{workload}: {len(sel)} format × machine points")
        ax.legend(loc="upper right", fontsize="small")
        _bits_colorbar(fig, dots, ax)
    fig.tight_layout()
    return _save(fig, out / "pareto")


def pareto_markdown(candidates: Sequence[Candidate]) -> str:
    """The Pareto front of each workload as Markdown tables, by throughput; front points
    of one storage with equal figures (machines that perform alike) share a row."""
    lines = ["# Experiment 7: energy vs throughput Pareto fronts", ""]
    for workload in dict.fromkeys(c.workload for c in candidates):
        sel = [c for c in candidates if c.workload == workload]
        front = [sel[i] for i in pareto_front([(c.get(THROUGHPUT), c.get(ENERGY)) for c in sel])]
        rows: dict[tuple, list[Any]] = {}
        for c in sorted(front, key=lambda c: c.get(THROUGHPUT)):
            figures = (c.get(THROUGHPUT), c.get(ENERGY), c.get(BITS))
            key = (c.storage, decoder_params(c), *figures)
            rows.setdefault(key, [c.storage, decoder_params(c), [], *figures])[2].append(
                _machine(c)
            )
        lines += [f"## {workload}: {len(front)} of {len(sel)} points on the front", ""]
        lines += _table(
            ["storage", "decoder parameters", "machines", "GOPS", "pJ/MAC", "bits/weight"],
            [[*row[:2], "; ".join(row[2]), *row[3:]] for row in rows.values()],
        )
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- experiment 8


@dataclasses.dataclass(frozen=True)
class QualityBound:
    """A candidate is acceptable when ``metric`` is ≤ ``limit`` (``upper``, e.g. an
    accuracy loss) or ≥ ``limit`` (not ``upper``, e.g. a kept mass ratio); a candidate
    without the metric is not."""

    metric: str
    limit: float
    upper: bool

    def holds(self, candidate: Candidate) -> bool:
        value = candidate.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return value <= self.limit if self.upper else value >= self.limit

    def __str__(self) -> str:
        return f"{self.metric} {'≤' if self.upper else '≥'} {self.limit:g}"


def quality_bound(
    candidates: Sequence[Candidate], max_loss: float = MAX_LOSS, min_mass: float = MIN_MASS
) -> QualityBound:
    """Accuracy loss ≤ ``max_loss`` when every candidate reports ``accuracy_loss``
    (digits MLP layers), else kept mass ratio ≥ ``min_mass``."""
    if candidates and all(c.get("accuracy_loss") is not None for c in candidates):
        return QualityBound("accuracy_loss", max_loss, upper=True)
    return QualityBound("kept_mass_ratio", min_mass, upper=False)


@dataclasses.dataclass(frozen=True)
class Selection:
    """The choice for one layer: the ``bound``, the ``feasible`` candidates and the best
    by energy and by throughput (None when nothing meets the bound)."""

    layer: str
    bound: QualityBound
    candidates: list[Candidate]
    feasible: list[Candidate]
    by_energy: Candidate | None
    by_throughput: Candidate | None


def _label(candidate: Candidate, peers: Sequence[Candidate]) -> str:
    params = decoder_params(candidate, peers)
    return candidate.storage if params == "-" else f"{candidate.storage} {params}"


def _by_energy(peers: Sequence[Candidate]) -> Callable[[Candidate], tuple]:
    return lambda c: (c.get(ENERGY), -c.get(THROUGHPUT), c.get(BITS), _label(c, peers))


def _by_throughput(peers: Sequence[Candidate]) -> Callable[[Candidate], tuple]:
    return lambda c: (-c.get(THROUGHPUT), c.get(ENERGY), c.get(BITS), _label(c, peers))


def select(layer: str, candidates: Sequence[Candidate], bound: QualityBound) -> Selection:
    """The best feasible candidates of one layer: by energy the lowest ``pj_per_mac``
    (ties: higher ``gops``, then fewer ``bits_per_weight``, then label order); by
    throughput the highest ``gops`` (ties: lower ``pj_per_mac``, then the same)."""
    feasible = [c for c in candidates if bound.holds(c)]
    by_energy = min(feasible, key=_by_energy(candidates), default=None)
    by_speed = min(feasible, key=_by_throughput(candidates), default=None)
    return Selection(layer, bound, list(candidates), feasible, by_energy, by_speed)


def select_layers(
    candidates: Sequence[Candidate], max_loss: float = MAX_LOSS, min_mass: float = MIN_MASS
) -> list[Selection]:
    """:func:`select` for every layer of ``candidates``, each with its
    :func:`quality_bound`."""
    layers: dict[str, list[Candidate]] = {}
    for c in candidates:
        layers.setdefault(c.layer, []).append(c)
    return [
        select(layer, group, quality_bound(group, max_loss, min_mass))
        for layer, group in layers.items()
    ]


def _quality_columns(bound: QualityBound) -> list[str]:
    if bound.metric == "accuracy_loss":
        return ["kept_fraction", "accuracy_finetuned", "accuracy_loss"]
    return ["kept_fraction", "kept_mass_ratio"]


def _row(c: Candidate, peers: Sequence[Candidate], bound: QualityBound) -> list[Any]:
    return [
        c.mask_format,
        c.value_format,
        decoder_params(c, peers),
        c.get(ENERGY),
        c.get(THROUGHPUT),
        c.get(BITS),
        *(c.get(k) for k in _quality_columns(bound)),
        c.get("decoder_cells"),
    ]


def _header(bound: QualityBound) -> list[str]:
    return [
        "mask format",
        "value format",
        "decoder parameters",
        "pJ/MAC",
        "GOPS",
        "bits/weight",
        *_quality_columns(bound),
        "decoder cells",
    ]


def selection_markdown(selections: Sequence[Selection], every: bool = True) -> str:
    """Experiment 8's tables: per layer the best by energy, the best by throughput and
    the dense reference, then (``every``) every candidate by energy in a collapsed
    block."""
    lines = ["# Experiment 8: best storage per layer under a quality bound", ""]
    for s in selections:
        quality = (
            "digits MLP held-out accuracy loss after masked fine-tuning, only this layer compressed"
            if s.bound.metric == "accuracy_loss"
            else "kept |w| mass ratio vs magnitude pruning (no task: a proxy for accuracy)"
        )
        lines += [
            f"## {s.layer}",
            "",
            f"Bound: {s.bound} ({quality}); {len(s.feasible)} of {len(s.candidates)} "
            "candidates meet it.",
            "",
        ]
        picks = [("best by energy", s.by_energy), ("best by throughput", s.by_throughput)]
        picks += [("dense reference", c) for c in s.candidates if c.point["format"] == "dense"]
        lines += _table(
            ["choice", *_header(s.bound)],
            [[name, *_row(c, s.candidates, s.bound)] for name, c in picks if c is not None],
        )
        if s.by_energy is None:
            lines += ["", "No candidate meets the bound."]
        if not every:
            lines.append("")
            continue
        ranked = sorted(s.candidates, key=_by_energy(s.candidates))
        lines += ["", "<details><summary>every candidate, by energy</summary>", ""]
        lines += _table(
            ["meets bound", *_header(s.bound)],
            [
                ["yes" if s.bound.holds(c) else "no", *_row(c, s.candidates, s.bound)]
                for c in ranked
            ],
        )
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def draw_selection(selections: Sequence[Selection], out: Path) -> list[Path]:
    """Experiment 8's figure: per layer every candidate on energy vs throughput
    (those meeting the bound coloured by bits/weight, others grey crosses), the two
    picks marked and named in the legend; ``out``/codesign.png and .svg."""
    fig = Figure(figsize=(5.2 * len(selections), 5.0))
    axes = fig.subplots(1, len(selections), squeeze=False)[0]
    everyone = [c for s in selections for c in s.candidates]
    norm = _bits_norm(everyone)
    dots = None
    for ax, s in zip(axes, selections, strict=True):
        bad = [c for c in s.candidates if not s.bound.holds(c)]
        if bad:
            ax.scatter(
                [c.get(THROUGHPUT) for c in bad],
                [c.get(ENERGY) for c in bad],
                marker="x",
                color="0.6",
                s=24,
                label="misses bound",
            )
        if s.feasible:
            dots = ax.scatter(
                [c.get(THROUGHPUT) for c in s.feasible],
                [c.get(ENERGY) for c in s.feasible],
                c=[c.get(BITS) for c in s.feasible],
                norm=norm,
                cmap="viridis",
                s=30,
            )
        picks = [
            (name, c, marker)
            for name, c, marker in (
                ("best by energy", s.by_energy, "*"),
                ("best by throughput", s.by_throughput, "D"),
            )
            if c is not None
        ]
        for name, c, marker in picks:
            ax.scatter(
                [c.get(THROUGHPUT)],
                [c.get(ENERGY)],
                marker=marker,
                s=180 if marker == "*" else 80,
                facecolors="none",
                edgecolors="tab:red",
                lw=1.5,
                label=f"{name}: {_label(c, s.candidates)}",
            )
        _energy_axis(ax)
        meet = f"{len(s.feasible)} of {len(s.candidates)} meet {s.bound}"
        ax.set_title(f"{s.layer}\n{meet}", fontsize=10)
        ax.legend(fontsize="x-small", loc="best")
    if dots is not None:
        _bits_colorbar(fig, dots, list(axes))
    return _save(fig, out / "codesign")


# ---------------------------------------------------------------- output


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _save(fig: Figure, stem: Path) -> list[Path]:
    files = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path, dpi in zip(files, (130, "figure"), strict=True):
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return files


def _require(candidates: Sequence[Candidate], names: Sequence[str], where: str) -> None:
    if not candidates:
        raise ValueError(f"{where}: no done point; run the sweep first")
    for c in candidates:
        missing = [n for n in names if c.get(n) is None]
        if missing:
            raise ValueError(
                f"{where}: a point lacks {', '.join(missing)} (format {c.point['format']}); "
                f"the study needs sweeps of the simulate stage"
            )


def run_pareto(directory: str | Path, out: str | Path | None = None) -> list[Path]:
    """Experiment 7's figure and front tables from the sweep in ``directory``."""
    out = Path(out or directory)
    candidates = sweep_candidates(directory)
    _require(candidates, [ENERGY, THROUGHPUT, BITS], str(directory))
    files = draw_pareto(candidates, out)
    markdown = out / "pareto.md"
    write_text(markdown, pareto_markdown(candidates))
    return [*files, markdown]


def run_select(
    directories: Sequence[str | Path],
    out: str | Path,
    max_loss: float = MAX_LOSS,
    min_mass: float = MIN_MASS,
) -> tuple[list[Selection], list[Path]]:
    """Experiment 8's selection, tables and figure from the sweeps in ``directories``."""
    out = Path(out)
    candidates = [c for d in directories for c in sweep_candidates(d)]
    _require(candidates, [ENERGY, THROUGHPUT, BITS], ", ".join(map(str, directories)))
    selections = select_layers(candidates, max_loss, min_mass)
    files = draw_selection(selections, out)
    markdown = out / "codesign.md"
    write_text(markdown, selection_markdown(selections))
    return selections, [*files, markdown]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codesign.experiments.studies.codesign", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pareto", help="experiment 7: energy vs throughput Pareto figure")
    p.add_argument("dir", help="sweep directory of exp7_accelerator.yaml")
    p.add_argument("--out", help="output directory (default: the sweep directory)")
    p = sub.add_parser("select", help="experiment 8: best storage per layer under a bound")
    p.add_argument("dirs", nargs="+", help="sweep directories of the exp8_*.yaml configs")
    p.add_argument("--out", default="results/exp8", help="output directory")
    p.add_argument("--max-loss", type=float, default=MAX_LOSS, help="accuracy loss bound")
    p.add_argument("--min-mass", type=float, default=MIN_MASS, help="kept mass ratio bound")
    args = parser.parse_args(argv)
    if args.command == "pareto":
        files = run_pareto(args.dir, args.out)
    else:
        selections, files = run_select(args.dirs, args.out, args.max_loss, args.min_mass)
        print(selection_markdown(selections, every=False))
    for path in files:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
