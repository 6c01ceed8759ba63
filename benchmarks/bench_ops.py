"""Multi-head attention written with ``ta.einsum`` versus the same math with ``@`` and
``.mT``: forward + backward, side by side in one run, calls interleaved.

    python benchmarks/bench_ops.py [--sizes 64 256] [--repeat 7]

Prints one row per (n, dtype): the median time of each form and the ratio einsum / matmul.
"""
from __future__ import annotations

import argparse
import platform
import time
from typing import Any, Callable

import numpy as np

import tinygrad_attn as ta


def by_einsum(q: ta.Tensor, k: ta.Tensor, v: ta.Tensor) -> ta.Tensor:
    """softmax(Q K^T / sqrt(d)) V with the contractions as einsum specs."""
    s = ta.einsum("bhid,bhjd->bhij", q, k) * (1.0 / q.shape[-1] ** 0.5)
    return ta.einsum("bhij,bhjd->bhid", s.softmax(-1), v)


def by_matmul(q: ta.Tensor, k: ta.Tensor, v: ta.Tensor) -> ta.Tensor:
    """The same with batched matmul."""
    return ((q @ k.mT) * (1.0 / q.shape[-1] ** 0.5)).softmax(-1) @ v


def step(form: Callable[..., ta.Tensor], arrays: list[np.ndarray]) -> Callable[[], Any]:
    """Forward and backward of ``form`` on fresh leaves, the upstream gradient ones."""
    def run() -> Any:
        ts = [ta.Tensor(a, requires_grad=True) for a in arrays]
        out = form(*ts)
        return ta.grad(out, ts, grad_outputs=np.ones(out.shape, out.dtype))
    return run


def interleaved(steps: list[Callable[[], Any]], repeat: int) -> list[float]:
    """The median seconds of each step, the steps called in turn (after one warm-up
    call each), so a change of the machine's load touches both alike."""
    for s in steps:
        s()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeat):
        for s, t in zip(steps, times):
            start = time.perf_counter()
            s()
            t.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256],
                        help="sequence lengths n (default: 64 256)")
    parser.add_argument("--repeat", type=int, default=7, help="timed calls (default: 7)")
    args = parser.parse_args(argv)
    print(f"# {platform.processor() or platform.machine()}, NumPy {np.__version__}; "
          f"batch 2, heads 4, d 32")
    print("| n | dtype | einsum (ms) | matmul (ms) | einsum / matmul |")
    print("| --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        for dtype in (np.float32, np.float64):
            arrays = [rng.standard_normal((2, 4, n, 32)).astype(dtype) for _ in range(3)]
            e, m = interleaved([step(by_einsum, arrays), step(by_matmul, arrays)],
                               args.repeat)
            print(f"| {n} | {np.dtype(dtype).name} | {e * 1e3:.2f} | {m * 1e3:.2f} | "
                  f"{e / m:.2f} |")


if __name__ == "__main__":
    main()
