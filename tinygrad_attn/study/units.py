"""Units of work run on every core, each taken from the cache when its inputs did not
change: what makes the main job (:mod:`tinygrad_attn.study.demo`) fast.

A :class:`Job` is a function ``fn(folder, *args)`` that writes its files into ``folder``
and returns a value.  :func:`run_jobs` first takes every job it can from the
:class:`~tinygrad_attn.study.cache.Cache`; it sends the rest that can travel to another
process (a module-level function and plain arguments: the derivations, the pictures) to
a pool of worker processes, one a core, and meanwhile runs the others (the checks and
graphs of examples that hold a lambda) in this process.  Each worker holds BLAS to one
thread, so the processes do not fight over the cores.  Every result's files are written
into the job's destination folder, in this process, whether computed or cached.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..engine.blas import blas_threads
from ..verify.progress import Progress
from .cache import Cache, Done, Unit, capture, place

__all__ = ["Job", "run_jobs", "cores"]


@dataclass(frozen=True)
class Job:
    """``fn(folder, *args)`` for ``unit``, its files bound for ``dest``.  ``portable``: fn
    and args can be pickled to a worker process; ``cacheable``: the result depends only
    on the package's code and the unit (not on code the caller passed in)."""

    unit: Unit
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    dest: Path
    portable: bool = True
    cacheable: bool = True


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:     # not Linux
        return os.cpu_count() or 1


def compute(fn: Callable[..., Any], args: tuple[Any, ...]) -> Done:
    """``fn(folder, *args)`` with BLAS on one thread: what a worker process runs."""
    with blas_threads(1):
        return capture(fn, *args)


def run_jobs(jobs: list[Job], cache: Cache | None = None, workers: int | None = None,
             progress: Progress | None = None) -> dict[Unit, Done | Exception]:
    """Each job's result (or the exception it raised), its files placed in its ``dest``;
    ``workers`` processes (default :func:`cores`; 1 runs everything here).  A computed
    result is stored in ``cache``; an exception is not."""
    workers = cores() if workers is None else max(1, int(workers))
    results: dict[Unit, Done | Exception] = {}

    def finish(job: Job, done: Done | Exception) -> None:
        results[job.unit] = done
        if isinstance(done, Done):
            place(done, job.dest)
            if cache is not None and job.cacheable and not done.cached:
                cache.store(job.unit, done)
        if progress is not None:
            progress.update(len(results), f"{job.unit.kind} {job.unit.name}")

    todo = []
    for job in jobs:
        hit = cache.load(job.unit) if cache is not None and job.cacheable else None
        if hit is not None:
            finish(job, hit)
        else:
            todo.append(job)
    remote = [j for j in todo if j.portable] if workers > 1 and len(todo) > 1 else []
    local = [j for j in todo if not any(j is r for r in remote)]
    pool = ProcessPoolExecutor(min(workers, len(remote))) if remote else nullcontext()
    with pool as executor:
        futures: dict[Future[Done], Job] = {executor.submit(compute, j.fn, j.args): j
                                            for j in remote}
        for job in local:
            finish(job, _attempt(job))
        for future in as_completed(futures):
            error = future.exception()
            finish(futures[future], error if isinstance(error, Exception)
                   else future.result())
    return {job.unit: results[job.unit] for job in jobs}


def _attempt(job: Job) -> Done | Exception:
    """Run ``job`` here; its exception is returned, to be reported with the others."""
    try:
        return compute(job.fn, job.args)
    except Exception as exc:
        return exc
