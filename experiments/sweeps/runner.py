"""Run a sweep's points and record each outcome in the store as it arrives.

Three ways to run, same rows: in-process (``workers=1``), a local
``concurrent.futures.ProcessPoolExecutor`` (``forkserver`` start method, at most
``workers`` points in flight, each worker with SIGINT and SIGTERM ignored and numba and
BLAS limited to its share of the cores), or a dask.distributed cluster (``scheduler``
address, e.g. ``tcp://host:8786``; the cluster's workers must import the same sources
as this process, whose code version the keys carry).

Only this (parent) process writes to the store, one commit per point. A point whose
stage raises is recorded as failed with its error and the sweep goes on. A worker
process that dies breaks the local pool: the points that were running are rerun one
at a time, each in a fresh single-worker pool, so the one that kills its worker is
recorded as failed (``WorkerCrash``) and the others complete; the rest of the queue
continues in a new pool. Ctrl-C or SIGTERM stops the sweep (:mod:`.stopping`): pending
points are cancelled, running ones abandoned (local workers killed), committed rows
stay. An error while recording (a full disk) also kills the workers before it is
raised. If this process is killed outright, its workers and the forkserver die with it
(:mod:`.lifeline`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import numbers
import os
import signal
import socket
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
from tqdm import tqdm

from codesign.experiments.sweeps.lifeline import alive, die_with_parent
from codesign.experiments.sweeps.stages import STAGES, Metrics, Point, Stage
from codesign.experiments.sweeps.stopping import deferred, stop_on_signals
from codesign.experiments.sweeps.store import DONE, FAILED, Outcome, Store

#: The stage functions a point runs, in order: (stage name, function).
StageRuns = tuple[tuple[str, Callable[[Point], Metrics]], ...]
#: A point of the sweep with its store key.
Item = tuple[str, Point]
#: Records an outcome: (key, point, outcome) -> None.
Recorder = Callable[[str, Point, Outcome], None]


def worker_id() -> str:
    """``host:pid`` of the running process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _plain(stage: str, key: str, value: Any) -> bool | int | float | str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"stage {stage} metric {key}: {value!r} is not a number, string or bool")


def _error(exc: BaseException) -> tuple[str, str, str]:
    kind = type(exc)
    name = (
        kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    )
    return name, str(exc), "".join(traceback.format_exception(exc))


def execute(point: Point, stages: StageRuns) -> Outcome:
    """Run ``stages`` on ``point`` in order and merge their metrics (a name an earlier
    stage returned, or a point field, is stored as ``stage.name``). An exception in a
    stage makes the outcome failed, with the metrics of the stages before it."""
    started = time.time()
    metrics: Metrics = {}
    error = None
    try:
        for name, run in stages:
            for key, value in run(point).items():
                clash = key in metrics or key in point
                metrics[f"{name}.{key}" if clash else key] = _plain(name, key, value)
    except Exception as exc:
        error = _error(exc)
    status = DONE if error is None else FAILED
    return Outcome(status, metrics, error, started, time.time(), worker_id())


def _failure(exc: BaseException | None, message: str = "") -> Outcome:
    now = time.time()
    error = _error(exc) if exc is not None else ("WorkerCrash", message, "")
    return Outcome(FAILED, {}, error, now, now, "")


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """Counts after a run: ``points`` in the sweep, ``reused`` (done before this run),
    ``done`` and ``failed`` (recorded by this run), ``skipped_failed`` (failed before
    and not retried), ``pending`` (no row yet: interrupted), ``interrupted`` (the
    signal that stopped the run, ``signal.SIGINT`` or ``SIGTERM``; 0 if it ran to its
    end)."""

    points: int
    reused: int
    done: int
    failed: int
    skipped_failed: int
    pending: int
    interrupted: int


def run_sweep(
    points: Sequence[Item],
    store: Store,
    code: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    registry: Mapping[str, Stage] = STAGES,
) -> SweepSummary:
    """Run every point of ``points`` that has no done row in ``store`` (and no failed
    row, unless ``retry_failed``). ``workers``: local processes (None: all cores; 1:
    in this process); ``scheduler``: address of a dask.distributed scheduler instead.
    A progress bar (stderr) shows the points with a row (done or failed, earlier runs
    included), the failed ones and the ETA."""
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    statuses = store.statuses()
    todo = [
        (key, point)
        for key, point in points
        if key not in statuses or (statuses[key] == FAILED and retry_failed)
    ]
    reused = sum(statuses.get(key) == DONE for key, _ in points)
    skipped = sum(statuses.get(key) == FAILED for key, _ in points) if not retry_failed else 0
    tally: Counter[str] = Counter()
    bar = tqdm(
        total=len(points),
        initial=len(points) - len(todo),
        desc="points",
        unit="pt",
        disable=not progress,
        smoothing=0.1,
    )
    bar.set_postfix(failed=skipped, refresh=False)

    def record(key: str, point: Point, outcome: Outcome) -> None:
        with deferred():  # a committed row is always counted
            store.record(key, point, code, outcome)
            tally[outcome.status] += 1
        bar.set_postfix(failed=skipped + tally[FAILED], refresh=False)
        bar.update(1)

    def runs(point: Point) -> StageRuns:
        return tuple((name, registry[name].run) for name in point["stages"])

    interrupted = 0
    try:
        with stop_on_signals():
            if scheduler is not None:
                _run_dask(todo, scheduler, runs, record)
            elif workers == 1:
                for key, point in todo:
                    record(key, point, execute(point, runs(point)))
            else:
                _run_pool(todo, workers or os.cpu_count() or 1, runs, record)
    except KeyboardInterrupt as exc:
        interrupted = getattr(exc, "signum", signal.SIGINT)
    finally:
        bar.close()
    return SweepSummary(
        points=len(points),
        reused=reused,
        done=tally[DONE],
        failed=tally[FAILED],
        skipped_failed=skipped,
        pending=len(todo) - tally.total(),
        interrupted=interrupted,
    )


#: Environment variables that size the BLAS / OpenMP thread pools of libraries loaded
#: after a worker starts (those already loaded are limited through threadpoolctl).
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker(threads: int, sweep: int) -> None:
    """Die with the forkserver (:mod:`.lifeline`; exit now if the sweep process
    ``sweep`` is already gone), ignore SIGINT and SIGTERM (the sweep process handles
    them and kills its workers), and give numba and the BLAS / OpenMP pools ``threads``
    threads, so that the workers together use the cores once (an oversubscribed BLAS
    spins and can run many times slower)."""
    die_with_parent()
    if not alive(sweep):
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Any process this worker starts is spawned; numba then starts its threads under a
    # no-op lock, not a named semaphore that a killed worker would leave behind.
    multiprocessing.set_start_method("spawn", force=True)
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=threads)


def _run_pool(
    todo: Sequence[Item], workers: int, runs: Callable[[Point], StageRuns], record: Recorder
) -> None:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["codesign.experiments.sweeps.forkserver_preload"])
    queue = deque(todo)
    while queue:
        for item in _drain(queue, workers, context, runs, record):
            crashed = _drain(deque([item]), 1, context, runs, record)
            if crashed:
                message = "the worker process died while running this point (killed or crashed)"
                record(*item, _failure(None, message))


def _drain(
    queue: deque[Item],
    workers: int,
    context: Any,
    runs: Callable[[Point], StageRuns],
    record: Recorder,
) -> list[Item]:
    """Run ``queue`` (consumed) on a fresh pool of ``workers`` processes until it is
    empty or the pool breaks; return the points that were in flight at a break. At a
    break or an exception (a stop, an error recording), the pool's workers are killed."""
    before = set(multiprocessing.active_children())
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads, os.getpid())
    )
    running: dict[Future, Item] = {}
    finished_all = False
    try:
        while queue or running:
            submitted = _submit(pool, queue, running, workers, runs)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = _collect(finished, running, record)
            if broken or not submitted:
                wait(running)  # a broken pool fails all its pending futures at once
                return broken + _collect(list(running), running, record)
        finished_all = True
        return []
    finally:
        if not finished_all:
            for process in set(multiprocessing.active_children()) - before:
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(
    pool: ProcessPoolExecutor,
    queue: deque[Item],
    running: dict[Future, Item],
    workers: int,
    runs: Callable[[Point], StageRuns],
) -> bool:
    """Move points from ``queue`` to ``running`` until ``workers`` are in flight; False
    if the pool turned out broken (the point stays queued)."""
    while queue and len(running) < workers:
        key, point = queue[0]
        try:
            running[pool.submit(execute, point, runs(point))] = (key, point)
        except BrokenProcessPool:
            return False
        queue.popleft()
    return True


def _collect(
    futures: Iterable[Future], running: dict[Future, Item], record: Recorder
) -> list[Item]:
    """Record the outcome of each (done) future of ``futures``, removed from
    ``running``; return the points lost to a broken pool instead."""
    broken = []
    for future in futures:
        item = running.pop(future)
        exc = future.exception()
        if isinstance(exc, BrokenProcessPool):
            broken.append(item)
        else:
            record(*item, future.result() if exc is None else _failure(exc))
    return broken


def _run_dask(
    todo: Sequence[Item], address: str, runs: Callable[[Point], StageRuns], record: Recorder
) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ValueError(
            "--scheduler needs dask.distributed; install it with "
            "pip install 'sparse-codesign[cluster]'"
        ) from None
    with Client(address, timeout="30s", set_as_default=False) as client:
        futures = {
            client.submit(execute, point, runs(point), pure=False): (key, point)
            for key, point in todo
        }
        try:
            for future in as_completed(futures, loop=client.loop):
                item = futures[future]
                try:
                    outcome = future.result()
                except Exception as exc:
                    outcome = _failure(exc)
                record(*item, outcome)
                future.release()
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise
