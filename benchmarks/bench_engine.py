"""The engine's overhead: scaled dot-product self-attention, forward + backward, written
with engine ops versus the same math hand-written in NumPy, side by side in one run.

    python benchmarks/bench_engine.py [--sizes 64 256 1024] [--repeat 5]

Prints one row per (n, dtype) with both times and the ratio engine / NumPy.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import tinygrad_attn as ta


def numpy_sdpa(x: np.ndarray, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray,
               g: np.ndarray) -> tuple[np.ndarray, ...]:
    """Forward and backward of O = softmax(X Wq (X Wk)^T / sqrt(d)) X Wv, by hand."""
    d = wq.shape[1]
    scale = x.dtype.type(1.0 / np.sqrt(d))
    q, k, v = x @ wq, x @ wk, x @ wv                    # (n, d)
    s = (q @ k.T) * scale                               # (n, n)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    o = p @ v                                           # (n, d)
    dv = p.T @ g
    dp = g @ v.T
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = (ds @ k) * scale
    dk = (ds.T @ q) * scale
    dx = dq @ wq.T + dk @ wk.T + dv @ wv.T
    return o, dx, x.T @ dq, x.T @ dk, x.T @ dv


def engine_sdpa(x: np.ndarray, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray,
                g: np.ndarray) -> tuple[np.ndarray, ...]:
    """The same computation with engine ops: the composed (unfused) path."""
    X = ta.Tensor(x, requires_grad=True)
    Wq, Wk, Wv = (ta.Tensor(w, requires_grad=True) for w in (wq, wk, wv))
    d = wq.shape[1]
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    P = ((Q @ K.T) * (1.0 / d ** 0.5)).softmax(-1)
    O = P @ V
    grads = ta.grad(O, [X, Wq, Wk, Wv], grad_outputs=g)
    return (O.data,) + tuple(grad.data for grad in grads)


def best_time(fn, args, repeat: int) -> float:
    fn(*args)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"# engine vs hand-written NumPy: self-attention forward+backward, d={args.d}")
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()},"
          f" NumPy {np.__version__}, best of {args.repeat}")
    print(f"{'n':>6} {'dtype':>8} {'numpy ms':>10} {'engine ms':>10} {'ratio':>7}")
    for n in args.sizes:
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, args.d)).astype(dtype)
            ws = [(rng.standard_normal((args.d, args.d)) / np.sqrt(args.d)).astype(dtype)
                  for _ in range(3)]
            g = rng.standard_normal((n, args.d)).astype(dtype)
            ref, got = numpy_sdpa(x, *ws, g), engine_sdpa(x, *ws, g)
            tol = 1e-3 if dtype == np.float32 else 1e-10
            for a, b in zip(ref, got):
                np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
            t_np = best_time(numpy_sdpa, (x, *ws, g), args.repeat)
            t_en = best_time(engine_sdpa, (x, *ws, g), args.repeat)
            print(f"{n:>6} {np.dtype(dtype).name:>8} {t_np * 1e3:>10.2f} {t_en * 1e3:>10.2f} "
                  f"{t_en / t_np:>7.2f}")


if __name__ == "__main__":
    main()
