"""Gradient checks side by side: ``ta.gradcheck`` element by element (``mode="full"``),
along random directions (``mode="fast"``), the fast mode finding a wrong element planted
in a user Function's backward, and PyTorch's ``gradcheck(fast_mode=True)`` where torch
is installed (in its own process) -- scaled dot-product attention, float64, q, k, v of shape (n, d).

    python benchmarks/bench_gradcheck.py [--sizes 16 32 64 128 512] [--d 64]
                                         [--full-up-to 64] [--directions 4]

Prints one row per n: the seconds of each check (``-`` where it is not run: the full
mode above ``--full-up-to``, its cost grows with the number of elements; PyTorch when
torch is missing), the evaluations of the function each made, and the element the fast
mode named.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

import tinygrad_attn as ta
from tinygrad_attn.engine import blas_threads


def planted(index: tuple[int, ...], error: float = 0.5) -> type[ta.Function]:
    """A user Function scaling the queries by a temperature of 1/2 whose backward is off
    by a relative ``error`` at ``index`` only."""

    class ScaleQueries(ta.Function):
        @staticmethod
        def forward(ctx: Any, q: np.ndarray) -> np.ndarray:
            ctx.scale = 0.5
            return q * ctx.scale

        @staticmethod
        def backward(ctx: Any, g: np.ndarray) -> np.ndarray:
            grad = g * ctx.scale
            grad[index] *= 1 + error
            return grad

    return ScaleQueries


def counted(fn: Callable[..., Any]) -> tuple[Callable[..., Any], list[int]]:
    """``fn`` and a counter of its calls."""
    calls = [0]

    def wrapper(*args: Any) -> Any:
        calls[0] += 1
        return fn(*args)

    return wrapper, calls


def engine_check(n: int, d: int, mode: str, directions: int,
                 wrong: tuple[int, int] | None = None) -> tuple[float, int, str]:
    """Seconds, calls of the function, and the verdict (and named element) of one check."""
    rng = np.random.default_rng(0)
    q, k, v = (ta.Tensor(rng.standard_normal((n, d)), requires_grad=True, name=name)
               for name in "qkv")
    scale = planted(wrong) if wrong is not None else None

    def sdpa(q: ta.Tensor, k: ta.Tensor, v: ta.Tensor) -> ta.Tensor:
        if scale is not None:
            return ta.attention.scaled_dot_product(scale.apply(q), k, v)[0]
        return ta.attention.scaled_dot_product(q, k, v)[0]

    fn, calls = counted(sdpa)
    t0 = time.perf_counter()
    report = ta.gradcheck(fn, q, k, v, mode=mode, directions=directions)
    seconds = time.perf_counter() - t0
    found = ""
    if not report.ok:
        row = next(r for r in report.inputs if r.status == "FAIL")
        found = f" {row.name}{list(row.fd.worst_index)} ({row.fd.where})"
    return seconds, calls[0], report.status + found


def torch_check(n: int, d: int) -> float:
    """Seconds of ``torch.autograd.gradcheck(..., fast_mode=True)`` on the same attention
    in float64 (run with ``--torch``, in its own process)."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    q, k, v = (torch.tensor(rng.standard_normal((n, d)), requires_grad=True)
               for _ in range(3))

    def sdpa(q: Any, k: Any, v: Any) -> Any:
        return torch.softmax(q @ k.T / d ** 0.5, dim=-1) @ v

    t0 = time.perf_counter()
    assert torch.autograd.gradcheck(sdpa, (q, k, v), fast_mode=True)
    return time.perf_counter() - t0


def torch_times(sizes: list[int], d: int) -> dict[int, float]:
    """PyTorch's fast gradcheck per n, timed in its own process (PyTorch's OpenMP pool
    and NumPy's OpenBLAS pool slow each other in one); empty without torch."""
    cmd = [sys.executable, __file__, "--torch", "--d", str(d), "--sizes", *map(str, sizes)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {}
    return {int(n): float(t) for n, t in json.loads(res.stdout.splitlines()[-1]).items()}


def torch_main(sizes: list[int], d: int) -> int:
    """The ``--torch`` run: one JSON line {n: seconds}; status 3 without torch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed", file=sys.stderr)
        return 3
    torch_check(4, 2)  # torch's first call pays for its start-up
    print(json.dumps({n: torch_check(n, d) for n in sizes}))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 512])
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--full-up-to", type=int, default=64,
                        help="run the per-element mode up to this n (its cost grows as n d)")
    parser.add_argument("--directions", type=int, default=4)
    parser.add_argument("--torch", action="store_true",
                        help="time PyTorch's fast gradcheck only (run in its own process)")
    args = parser.parse_args()
    if args.torch:
        sys.exit(torch_main(args.sizes, args.d))
    theirs = torch_times(args.sizes, args.d)
    print(f"# gradcheck of scaled dot-product attention, q, k, v of shape (n, {args.d}), "
          f"float64; fast: {args.directions} directions per input; BLAS threads 1")
    print(f"# {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}, NumPy {np.__version__}")
    print(f"{'n':>5} {'elements':>9} {'full s':>8} {'calls':>6} {'fast s':>7} {'calls':>6} "
          f"{'torch fast s':>12} {'find s':>7} {'calls':>6}  found (planted)")
    with blas_threads(1):
        for n in args.sizes:
            wrong = (n // 3, args.d // 2)
            full, full_calls = "-", "-"
            if n <= args.full_up_to:
                seconds, calls, status = engine_check(n, args.d, "full", args.directions)
                assert status == "PASSED", status
                full, full_calls = f"{seconds:.2f}", str(calls)
            fast, fast_calls, status = engine_check(n, args.d, "fast", args.directions)
            assert status == "PASSED", status
            find, find_calls, named = engine_check(n, args.d, "fast", args.directions, wrong)
            assert named.startswith(f"FAILED q{list(wrong)}"), named
            torch_s = f"{theirs[n]:.2f}" if n in theirs else "-"
            print(f"{n:>5} {3 * n * args.d:>9} {full:>8} {full_calls:>6} {fast:>7.2f} "
                  f"{fast_calls:>6} {torch_s:>12} {find:>7.2f} {find_calls:>6}  "
                  f"{named.split(' ', 1)[1]} ({list(wrong)})", flush=True)


if __name__ == "__main__":
    main()
