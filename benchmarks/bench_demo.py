"""The main job's time: every unit of `tinygrad-attn demo` (14 derivations, 12 gradient
checks, 12 mechanisms' graphs, 7 pictures) run cold in one process, cold in one process
a core, and warm from the cache (the whole command, interpreter start included).

Wall seconds depend on what else the machine runs: Linux shares the CPU between
sessions (autogroup), so on a busy machine a session's two processes share the one
session's slice and a second process gains nothing.  So the table also gives the CPU
seconds (processes and the `dot` programs they ran), and the wall time the cold run
takes on idle cores, computed from each unit's CPU seconds: the units that go to the
pool list-scheduled in order on the workers, at least (all CPU) / (workers).

    python benchmarks/bench_demo.py [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tinygrad_attn.study import demo
from tinygrad_attn.study.cache import ENV, Cache
from tinygrad_attn.study.claim_pictures import PICTURES
from tinygrad_attn.study.derivations import NAMES
from tinygrad_attn.study.units import cores, run_jobs


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def idle_wall(jobs, results, workers: int) -> float:
    """Wall seconds on ``workers`` idle cores: the pool's units list-scheduled in order,
    this process's units beside them; at least all CPU seconds over the workers."""
    free = [0.0] * workers
    for job in jobs:
        if job.portable:
            k = free.index(min(free))
            free[k] += results[job.unit].cpu
    total = sum(d.cpu for d in results.values())
    return max(max(free), total / workers)


def cold(out: Path, workers: int, store: Cache | None = None):
    jobs = demo.jobs(out, demo.EXAMPLES, list(NAMES), list(PICTURES), True)
    t0, c0 = time.perf_counter(), cpu_now()
    results = run_jobs(jobs, store, workers)
    return jobs, results, time.perf_counter() - t0, cpu_now() - c0


def command(out: Path, cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``tinygrad-attn demo`` with the cache in ``cache``."""
    env = {**os.environ, ENV: str(cache)}
    t0, c0 = time.perf_counter(), cpu_now()
    subprocess.run([sys.executable, "-m", "tinygrad_attn.cli", "demo", "--out", str(out)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, cpu_now() - c0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=cores())
    args = p.parse_args()
    load = os.getloadavg()[0]
    print(f"{'run':<36} {'wall s':>7} {'CPU s':>7}   (load average {load:.1f})")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        jobs, results, wall, cpu = cold(tmp / "serial", 1)
        print(f"{'cold, 1 process':<36} {wall:>7.1f} {cpu:>7.1f}", flush=True)
        for kind, phase in demo.PHASES.items():
            sec = sum(d.cpu for u, d in results.items() if u.kind == kind)
            print(f"  {phase:<34} {'':>7} {sec:>7.1f}")
        print(f"{'cold, 1 process, on an idle core':<36} {idle_wall(jobs, results, 1):>7.1f}")
        print(f"{f'cold, {args.workers} processes, on idle cores':<36} "
              f"{idle_wall(jobs, results, args.workers):>7.1f}")
        _, _, wall, cpu = cold(tmp / "pool", args.workers, Cache(tmp / "cache"))
        print(f"{f'cold, {args.workers} processes':<36} {wall:>7.1f} {cpu:>7.1f}", flush=True)
        wall, cpu = command(tmp / "warm", tmp / "cache")
        print(f"{'warm: tinygrad-attn demo':<36} {wall:>7.1f} {cpu:>7.1f}")


if __name__ == "__main__":
    main()
