"""Blocked (flash) attention against the plain fused op and PyTorch CPU, side by side.

    python benchmarks/bench_flash.py                 # the table of docs/benchmarks.md
    python benchmarks/bench_flash.py --quick         # a smoke run (small sizes, seconds)
    python benchmarks/bench_flash.py --threshold     # plain vs blocked at small n (auto)

Forward+backward of one head (q, k, v of shape (n, d)), best of ``--rounds`` rounds of
``--repeat`` calls; the implementations alternate inside each round, so a noisy
neighbour on a shared machine slows all of them alike.  PyTorch (optional) runs in its
own process (``torch_sdpa.py``): its OpenMP pool and OpenBLAS's threads slow each other
in one process.  Rate = 12 n^2 d flops (4 n^2 d forward, 8 n^2 d backward, as the issue
counts it; the blocked backward really does 10 n^2 d, recomputing S) per second.
Then one thread's rate on the seven products of one tile, NumPy against PyTorch, and
the floor those rates put under the blocked kernels; then peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from timing import (best_time, blocked_step, gemm_rate, inputs, machine, peak_bytes,
                     plain_step, products_step, tile_product_times, torch_times)


def _ms(t: float | None) -> str:
    return "-" if t is None else f"{t * 1e3:.1f}"


def speed(sizes: list[int], d: int, dtypes: list[str], rounds: int, repeat: int,
          use_torch: bool, gemm: dict[str, dict[str, float]]) -> dict[tuple, float]:
    """Best seconds per (impl, dtype, n, causal); ``gemm`` gets NumPy's best GEMM rates,
    measured in every round too (a busy neighbour can halve a multi-threaded GEMM)."""
    best: dict[tuple, float] = {}

    def keep(key: tuple, times: list[float]) -> None:
        best[key] = min([best.get(key, np.inf)] + times)

    for r in range(rounds):
        for dt in dtypes:
            rates = gemm_rate(dt, n=max(sizes), d=d, repeat=repeat)
            gemm[dt] = {k: max(v, gemm.get(dt, {}).get(k, 0.0)) for k, v in rates.items()}
            for n in sizes:
                q, k, v, g = inputs(n, d, dt)
                for causal in (False, True):
                    steps = {"plain": plain_step(q, k, v, g, causal),
                             "blocked 1 thread": blocked_step(q, k, v, g, causal, 1),
                             "blocked 2 threads": blocked_step(q, k, v, g, causal, 2)}
                    for impl, step in steps.items():
                        keep((impl, dt, n, causal), best_time(step, repeat))
        if use_torch:
            res = torch_times(sizes, d, dtypes, [0, 1], repeat)
            if res is None:
                print("PyTorch not installed: its column is left out", file=sys.stderr)
                use_torch = False
            else:
                if r == 0 and res:
                    print(f"PyTorch {res[0]['torch']}, {res[0]['threads']} threads, "
                          f"own process")
                for row in res:
                    keep(("torch", row["dtype"], row["n"], row["causal"]), [row["min_s"]])
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return best


def table(best: dict[tuple, float], sizes: list[int], d: int, dtypes: list[str],
          gemm: dict[str, dict[str, float]]) -> str:
    impls = ["plain", "blocked 1 thread", "blocked 2 threads", "torch"]
    head = ["dtype", "n", "causal"] + [f"{i} (ms)" for i in impls] + \
        ["torch / blocked", "rate / GEMM rate (square, attention-shaped)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dt in dtypes:
        square, shaped = gemm[dt]["square"], gemm[dt]["attention_shaped"]
        for n in sizes:
            for causal in (False, True):
                t = {i: best.get((i, dt, n, causal)) for i in impls}
                ours = min(t["blocked 1 thread"], t["blocked 2 threads"])
                ratio = "-" if t["torch"] is None else f"{t['torch'] / ours:.2f}x"
                rate = 12 * n * n * d / ours
                share = "-" if causal else f"{rate / square:.0%}, {rate / shaped:.0%}"
                lines.append("| " + " | ".join(
                    [dt, str(n), "yes" if causal else "no"] + [_ms(t[i]) for i in impls]
                    + [ratio, share]) + " |")
    return "\n".join(lines)


def causal_speedups(best: dict[tuple, float], sizes: list[int], dtypes: list[str]) -> str:
    out = []
    for dt in dtypes:
        for n in sizes:
            for impl in ("blocked 2 threads", "blocked 1 thread", "torch"):
                a, b = best.get((impl, dt, n, False)), best.get((impl, dt, n, True))
                if a and b:
                    out.append(f"- {dt}, n = {n}, {impl}: causal {a / b:.2f}x faster "
                               f"than non-causal")
    return "\n".join(out)


def memory(n: int, d: int, dtype: str) -> str:
    """Peak extra bytes (tracemalloc) of forward+backward, plain vs blocked."""
    q, k, v, g = inputs(n, d, dtype)
    io = 4 * q.nbytes          # dq, dk, dv and o: what any implementation must return
    plain = peak_bytes(plain_step(q, k, v, g))
    rows = []
    for name, step in (("plain", plain_step(q, k, v, g)),
                       ("blocked, 1 thread", blocked_step(q, k, v, g, threads=1)),
                       ("blocked, 2 threads", blocked_step(q, k, v, g, threads=2))):
        peak = plain if name == "plain" else peak_bytes(step)
        rows.append(f"| {name} | {peak / 2**20:.1f} | {(peak - io) / 2**20:.1f} | "
                    f"{peak / plain:.3f} |")
    head = (f"Peak memory of forward+backward, n = {n}, d = {d}, {dtype} (tracemalloc; "
            f"outputs o, dq, dk, dv = {io / 2**20:.1f} MiB included in the first column)\n\n"
            "| implementation | peak MiB | beyond outputs MiB | of plain |\n|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def products(d: int, dtypes: list[str], best: dict[tuple, float], sizes: list[int],
             rounds: int, repeat: int) -> str:
    """One thread's rate on each product of a default tile, NumPy (its OpenBLAS) against
    PyTorch (its MKL), and the floor those rates put under the blocked kernels: the
    products alone, every tile, on two cores with no other cost; then that floor
    measured: the kernels' loops with nothing but their products (``products_step``)."""
    from tinygrad_attn.attention.tiling import BLOCK_K, BLOCK_Q
    out = [f"One thread's rate on the products of one {BLOCK_Q} x {BLOCK_K} tile (d = {d})"
           "\n", "| dtype | product | M x K x N | NumPy GFLOP/s | PyTorch GFLOP/s | "
           "PyTorch / NumPy |", "|---|---|---|---|---|---|"]
    floors = []
    for dt in dtypes:
        rows = tile_product_times(dt, BLOCK_Q, BLOCK_K, d)
        for r in rows:
            torch_rate = "-" if r["torch_s"] is None else f"{r['flops'] / r['torch_s'] / 1e9:.0f}"
            ratio = "-" if r["torch_s"] is None else f"{r['numpy_s'] / r['torch_s']:.2f}"
            out.append(f"| {dt} | {r['product']} | {r['shape']} | "
                       f"{r['flops'] / r['numpy_s'] / 1e9:.0f} | {torch_rate} | {ratio} |")
        for n in sizes:
            if n % BLOCK_Q or n % BLOCK_K:       # partial tiles: these shapes do not apply
                continue
            tiles = (n // BLOCK_Q) * (n // BLOCK_K)
            for lib, key in (("NumPy", "numpy_s"), ("PyTorch", "torch_s")):
                if all(r[key] is not None for r in rows):
                    floor = tiles * sum(r[key] for r in rows) / 2
                    floors.append(f"- {dt}, n = {n}: the seven products at {lib}'s rate, "
                                  f"on 2 cores, nothing else: {floor * 1e3:.1f} ms "
                                  f"(blocked 2 threads measured "
                                  f"{best[('blocked 2 threads', dt, n, False)] * 1e3:.1f}, "
                                  f"PyTorch SDPA {_ms(best.get(('torch', dt, n, False)))})")
    loop = ["The kernels' loops with nothing but their products (same tiles, operands, "
            "order and threads; no exp, no bookkeeping), forward+backward, ms, and the "
            "rate they reach on 14 n^2 d flops (the 12 of the issue's count plus the "
            "recomputed S)\n", "| dtype | n | products alone, 1 thread | products alone, "
            "2 threads | rate, 2 threads (GFLOP/s) | blocked 2 threads | PyTorch SDPA | "
            "PyTorch / products alone |", "|---|---|---|---|---|---|---|---|"]
    for dt in dtypes:
        for n in sizes:
            t1 = min(min(best_time(products_step(n, d, dt, 1), repeat)) for _ in range(rounds))
            t2 = min(min(best_time(products_step(n, d, dt, 2), repeat)) for _ in range(rounds))
            torch_t = best.get(("torch", dt, n, False))
            ratio = "-" if torch_t is None else f"{torch_t / t2:.2f}"
            loop.append(f"| {dt} | {n} | {_ms(t1)} | {_ms(t2)} | {14 * n * n * d / t2 / 1e9:.0f}"
                        f" | {_ms(best[('blocked 2 threads', dt, n, False)])} | {_ms(torch_t)} "
                        f"| {ratio} |")
    return "\n".join(out) + "\n\n" + "\n".join(floors) + "\n\n" + "\n".join(loop)


def threshold(d: int, dtypes: list[str], rounds: int) -> str:
    """Plain vs blocked (default threads) at small n: where auto should switch."""
    lines = ["| dtype | n | plain (ms) | blocked (ms) | blocked / plain |", "|---|---|---|---|---|"]
    for dt in dtypes:
        for n in (128, 256, 512, 768, 1024, 1536, 2048):
            q, k, v, g = inputs(n, d, dt)
            reps = max(3, int(4e6 / (n * n)))
            tp = tb = np.inf
            for _ in range(rounds):
                tp = min(tp, min(best_time(plain_step(q, k, v, g), reps)))
                tb = min(tb, min(best_time(blocked_step(q, k, v, g), reps)))
            lines.append(f"| {dt} | {n} | {tp * 1e3:.2f} | {tb * 1e3:.2f} | {tb / tp:.2f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="blocked attention vs plain vs PyTorch")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory-n", type=int, default=8192)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small sizes, one round")
    ap.add_argument("--threshold", action="store_true", help="only the auto threshold")
    ap.add_argument("--json", help="also write the raw figures here")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.rounds, args.repeat, args.memory_n = [256], 1, 2, 512
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if args.threshold:
        print(threshold(args.d, args.dtypes, args.rounds))
        return 0
    gemm: dict[str, dict[str, float]] = {}
    best = speed(args.sizes, args.d, args.dtypes, args.rounds, args.repeat,
                 not args.no_torch, gemm)
    for dt, r in gemm.items():
        print(f"NumPy GEMM rate {dt} (n = {max(args.sizes)}, best of all rounds): square "
              f"{r['square'] / 1e9:.0f} GFLOP/s, attention-shaped "
              f"{r['attention_shaped'] / 1e9:.0f} GFLOP/s")
    print(f"load average after the timing rounds: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(table(best, args.sizes, args.d, args.dtypes, gemm))
    print()
    print(causal_speedups(best, args.sizes, args.dtypes))
    print()
    print(products(args.d, args.dtypes, best, args.sizes, args.rounds, args.repeat))
    print()
    print(memory(args.memory_n, args.d, "float32"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "gemm": gemm,
                       "best_s": [list(k) + [v] for k, v in best.items()]}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
