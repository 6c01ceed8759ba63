"""The main job's time: every unit of `tinygrad-attn demo` (14 derivations, 12 gradient
checks, 12 mechanisms' graphs, 7 pictures) run cold in one process, cold in one process
a core, and warm from the cache (the whole command, interpreter start included).

Wall seconds depend on what else the machine runs: Linux shares the CPU between
sessions (autogroup), so on a busy machine a session's two processes share the one
session's slice and a second process gains nothing.  So the table also gives the CPU
seconds of the units (their processes and the `dot` programs they ran), and the wall
time the cold run takes on idle cores, computed from each unit's CPU seconds: the units
that go to the pool list-scheduled in order on the workers, at least (all CPU) /
(workers), plus the CPU seconds of the warm run (start, hashing, writing).

    python benchmarks/bench_demo.py [--workers 2]
"""
from __future__ import annotations

import argparse
import json
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


def cold(out: Path, workers: int, store: Path | None = None) -> None:
    """Run the demo's units cold (none from the cache) and print, as JSON, the wall
    seconds and each job's portability and CPU seconds (a pool's workers included: they
    are not counted in this process's children times).  Run in a fresh process each
    time: a process that ran SymPy before keeps SymPy's caches warm, and so would the
    workers it forks."""
    jobs = demo.jobs(out, demo.EXAMPLES, list(NAMES), list(PICTURES), True)
    t0 = time.perf_counter()
    results = run_jobs(jobs, Cache(store) if store else None, workers)
    print(json.dumps({"wall": time.perf_counter() - t0,
                      "units": [(j.unit.kind, j.portable, results[j.unit].cpu)
                                for j in jobs]}))


def fresh(*args: str, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds of a fresh Python process running ``args``, and its output."""
    t0, c0 = time.perf_counter(), cpu_now()
    done = subprocess.run([sys.executable, *args], env={**os.environ, **(env or {})},
                          check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, cpu_now() - c0, done.stdout


def idle_wall(units: list, workers: int) -> float:
    """Wall seconds on ``workers`` idle cores: the pool's units list-scheduled in order,
    this process's units beside them; at least all CPU seconds over the workers."""
    free = [0.0] * workers
    for _, portable, cpu in units:
        if portable:
            k = free.index(min(free))
            free[k] += cpu
    return max(max(free), sum(cpu for *_, cpu in units) / workers)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=cores())
    p.add_argument("--cold", nargs=3, metavar=("WORKERS", "OUT", "CACHE"),
                   help=argparse.SUPPRESS)               # one cold run (in a fresh process)
    args = p.parse_args()
    if args.cold:
        workers, out, store = args.cold
        return cold(Path(out), int(workers), Path(store) if store != "-" else None)
    w = args.workers
    print(f"{'run':<44} {'wall s':>7} {'CPU s':>7}   (load average "
          f"{os.getloadavg()[0]:.1f})")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for n in sorted({1, w}):
            *_, out = fresh(__file__, "--cold", str(n), f"{tmp}/out{n}",
                            f"{tmp}/cache" if n == w else "-")
            runs[n] = json.loads(out)
            cpu = sum(c for *_, c in runs[n]["units"])
            print(f"{f'cold, {n} process' + ('es' if n > 1 else ''):<44} "
                  f"{runs[n]['wall']:>7.1f} {cpu:>7.1f}", flush=True)
        for kind, phase in demo.PHASES.items():
            sec = sum(c for k, _, c in runs[1]["units"] if k == kind)
            print(f"  {phase:<42} {'':>7} {sec:>7.1f}")
        warm, warm_cpu, _ = fresh("-m", "tinygrad_attn.cli", "demo", "--out", f"{tmp}/warm",
                                  env={ENV: f"{tmp}/cache"})
        print(f"{'warm: tinygrad-attn demo':<44} {warm:>7.1f} {warm_cpu:>7.1f}")
    for n in sorted({1, w}):
        what = f"cold on {n} idle core{'s' if n > 1 else ''} (units + warm run)"
        print(f"{what:<44} {idle_wall(runs[n]['units'], n) + warm_cpu:>7.1f}")


if __name__ == "__main__":
    main()
