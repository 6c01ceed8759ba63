"""NumPy's exp and exp2 by input range, and the blocked kernels on peaked scores.

    python benchmarks/bench_exp.py            # the two tables of docs/benchmarks.md

1. One tile (256 x 512) of inputs drawn from one range at a time, ``np.exp`` and
   ``np.exp2`` in place, median microseconds: both are fast while the result is a normal
   number, and take a path tens to hundreds of times slower where it is subnormal,
   underflows to 0 or overflows (-inf included).  The blocked kernels exponentiate in
   base 2 (faster in float32) and keep every input inside exp2's fast range
   (``flash.exp_masked``, ``flash.wide_scores``).
2. Forward+backward of the blocked kernels (2 threads, n = 1024, d = 64) as q and k are
   scaled up, so the scores spread past exp's range: the share of weights below e^-87
   (float32's smallest normal), and the time, which should stay flat.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from timing import best_time, blas_threads, blocked_step, inputs, machine

RANGES = [(-20, 0), (-100, -80), (-140, -120), (-200, -150), (-800, -700), (-2000, -1000),
          (80, 100), (130, 200)]


def exp_table(repeat: int) -> str:
    rng = np.random.default_rng(0)
    lines = ["| dtype | inputs | np.exp us | np.exp2 us |", "|---|---|---|---|"]
    for dtype in (np.float32, np.float64):
        cases = [(f"[{lo}, {hi}]", rng.uniform(lo, hi, (256, 512))) for lo, hi in RANGES]
        cases.append(("-inf", np.full((256, 512), -np.inf)))
        for label, x in cases:
            x = x.astype(dtype)
            out = np.empty_like(x)
            with np.errstate(all="ignore"):       # median us after one warm-up call
                t = [float(np.median(best_time(lambda: fn(x, out=out), repeat, warmup=1,
                                               warmup_s=0))) * 1e6 for fn in (np.exp, np.exp2)]
            lines.append(f"| {np.dtype(dtype).name} | {label} | {t[0]:.0f} | {t[1]:.0f} |")
    return "\n".join(lines)


def peaked_table(n: int, d: int, repeat: int) -> str:
    lines = ["| dtype | q, k scaled by | weights below e^-87 | blocked fwd+bwd ms |",
             "|---|---|---|---|"]
    for dtype in ("float32", "float64"):
        for scale in (1.0, 4.0, 12.0):
            q, k, v, g = inputs(n, d, dtype)
            q, k = q * q.dtype.type(scale), k * k.dtype.type(scale)
            with blas_threads(1):            # no OpenBLAS worker left spinning
                s = q.astype(np.float64) @ k.T.astype(np.float64) / np.sqrt(d)
            share = float(np.mean(s - s.max(axis=1, keepdims=True) < -87))
            best = min(best_time(blocked_step(q, k, v, g, threads=2), repeat)) * 1e3
            lines.append(f"| {dtype} | {scale:g} | {share:.2f} | {best:.1f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--d", type=int, default=64)
    args = ap.parse_args()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()))
    print()
    print("np.exp and np.exp2 on one 256 x 512 tile, in place, by input range (median)\n")
    print(exp_table(args.repeat))
    print()
    print(f"Blocked kernels, forward+backward, n = {args.n}, d = {args.d}, 2 threads, "
          f"best of {max(args.repeat // 5, 3)}\n")
    print(peaked_table(args.n, args.d, max(args.repeat // 5, 3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
