"""The engine's fixed cost per op and its overhead on attention, side by side with the same
computation hand-written in NumPy and in PyTorch eager (CPU, when installed), in one run.

    python benchmarks/bench_engine.py [--sizes 64 256 1024] [--d 64] [--repeat 9]
                                      [--no-torch]

Three tables.  *Per op*, float64 (8, 8) inputs that require grad, microseconds per call:
an add, a matmul (forwards, the graph recorded), and four ops forward and backward,
``((x @ w) + w).tanh().sum()`` then the gradients of ``x`` and ``w``.  *Self-attention*,
``O = softmax(X W_q (X W_k)^T / sqrt(d)) X W_v`` forward and backward for ``X, W_q, W_k,
W_v``, milliseconds: *composed* is written with engine ops (matmul, mul, softmax,
matmul), *fused* is the projections then the fused op (weights not kept).  Between them,
what the check of saved data (fingerprints recorded with a node, verified before its
backward) costs on an (8, 8) matmul and on either attention graph at n = d.
Every result is checked against NumPy's before it is timed.  The variants of a row are
timed round-robin, batch by batch, so they see the same load; each figure is the best
batch.  BLAS and PyTorch run on one thread, and the clock is the process's CPU time
(``time.process_time``): on a shared machine wall time also counts the turns of other
processes, on a quiet one the two agree.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

import numpy as np

import tinygrad_attn as ta
from tinygrad_attn.engine import blas_threads, checks, toposort

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from timing import machine  # noqa: E402


# ----------------------------------------------------------------------------- per op

def numpy_four(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """``((x @ w) + w).tanh().sum()`` and its gradients for x and w, by hand."""
    y = np.tanh(x @ w + w)
    dh = 1.0 - y * y
    return y.sum(), dh @ w.T, x.T @ dh + dh


def engine_four(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    X, W = ta.Tensor(x, requires_grad=True), ta.Tensor(w, requires_grad=True)
    y = ((X @ W) + W).tanh().sum()
    y.backward()
    return y.data, X.grad, W.grad


def torch_four(torch: Any) -> Callable[..., tuple[np.ndarray, ...]]:
    def four(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
        X = torch.tensor(x, requires_grad=True)
        W = torch.tensor(w, requires_grad=True)
        y = ((X @ W) + W).tanh().sum()
        y.backward()
        return y.detach().numpy(), X.grad.numpy(), W.grad.numpy()
    return four


def per_op_rows(torch: Any) -> list[tuple[str, dict[str, Callable[[], Any]], int]]:
    """(label, {variant: call}, calls per batch) of the per-op table."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    A, B = ta.Tensor(a, requires_grad=True), ta.Tensor(b, requires_grad=True)
    add = {"numpy": lambda: a + b, "engine": lambda: A + B}
    matmul = {"numpy": lambda: a @ b, "engine": lambda: A @ B}
    four = {"numpy": lambda: numpy_four(a, b), "engine": lambda: engine_four(a, b)}
    check(numpy_four(a, b), engine_four(a, b), 1e-12)
    if torch is not None:
        tA = torch.tensor(a, requires_grad=True)
        tB = torch.tensor(b, requires_grad=True)
        add["torch"], matmul["torch"] = (lambda: tA + tB), (lambda: tA @ tB)
        four["torch"] = lambda: torch_four(torch)(a, b)
        check(numpy_four(a, b), torch_four(torch)(a, b), 1e-12)
    return [("add (8, 8)", add, 2000), ("matmul (8, 8)", matmul, 2000),
            ("4 ops fwd+bwd (8, 8)", four, 200)]


# ----------------------------------------------------------------------------- attention

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


def fused_sdpa(x: np.ndarray, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray,
               g: np.ndarray) -> tuple[np.ndarray, ...]:
    """The same computation through the fused op (projections, then one op)."""
    X = ta.Tensor(x, requires_grad=True)
    Wq, Wk, Wv = (ta.Tensor(w, requires_grad=True) for w in (wq, wk, wv))
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    O, _ = ta.attention.scaled_dot_product(Q, K, V, need_weights=False)
    grads = ta.grad(O, [X, Wq, Wk, Wv], grad_outputs=g)
    return (O.data,) + tuple(grad.data for grad in grads)


def torch_sdpa(torch: Any) -> Callable[..., tuple[np.ndarray, ...]]:
    def sdpa(x: np.ndarray, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray,
             g: np.ndarray) -> tuple[np.ndarray, ...]:
        X = torch.tensor(x, requires_grad=True)
        Wq, Wk, Wv = (torch.tensor(w, requires_grad=True) for w in (wq, wk, wv))
        Q, K, V = X @ Wq, X @ Wk, X @ Wv
        P = ((Q @ K.T) * (1.0 / wq.shape[1] ** 0.5)).softmax(-1)
        O = P @ V
        grads = torch.autograd.grad(O, [X, Wq, Wk, Wv], grad_outputs=torch.tensor(g))
        return (O.detach().numpy(),) + tuple(gr.numpy() for gr in grads)
    return sdpa


def attention_row(n: int, d: int, dtype: Any, torch: Any) -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)).astype(dtype)
    ws = [(rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype) for _ in range(3)]
    g = rng.standard_normal((n, d)).astype(dtype)
    fns = {"numpy": numpy_sdpa, "composed": engine_sdpa, "fused": fused_sdpa}
    if torch is not None:
        fns["torch"] = torch_sdpa(torch)
    ref = numpy_sdpa(x, *ws, g)
    for fn in fns.values():
        check(ref, fn(x, *ws, g), 1e-3 if dtype == np.float32 else 1e-10)
    return {name: (lambda fn=fn: fn(x, *ws, g)) for name, fn in fns.items()}


# ----------------------------------------------------------------------------- the check

def check_graphs(d: int) -> list[tuple[str, ta.Tensor]]:
    """Graphs whose saved data the check fingerprints: an (8, 8) matmul, and float32
    self-attention at n = d through each path (the forwards only)."""
    rng = np.random.default_rng(0)
    a, b = (ta.Tensor(rng.standard_normal((8, 8)), requires_grad=True) for _ in range(2))
    graphs = [("matmul (8, 8)", a @ b)]
    x = rng.standard_normal((d, d)).astype(np.float32)
    for path in ("composed", "fused"):
        X = ta.Tensor(x, requires_grad=True)
        Q, K, V = (X @ ta.Tensor(x / d, requires_grad=True) for _ in range(3))
        O, _ = ta.attention.scaled_dot_product(Q, K, V, fused=path == "fused",
                                               need_weights=False)
        graphs.append((f"{path} n = {d} float32", O))
    return graphs


def check_costs(out: ta.Tensor, repeat: int) -> tuple[int, float, float, float]:
    """(nodes, KiB the check keeps an eye on, seconds to record, seconds to verify) of the
    saved-data check over the graph of ``out``."""
    ctxs = [t._ctx for t in toposort([out]) if t._ctx is not None]
    kib = sum(a.nbytes for c in ctxs for _, a in checks.saved_data(c)
              if isinstance(a, np.ndarray)) / 1024
    recorded = [checks.record_saved(c) for c in ctxs]
    t = round_robin({"record": lambda: [checks.record_saved(c) for c in ctxs],
                     "verify": lambda: [checks.verify_saved(c, f)
                                        for c, f in zip(ctxs, recorded)]}, 200, repeat)
    return len(ctxs), kib, t["record"], t["verify"]


# ----------------------------------------------------------------------------- timing

def check(ref: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...], tol: float) -> None:
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)


def round_robin(calls: dict[str, Callable[[], Any]], number: int, repeat: int
                ) -> dict[str, float]:
    """Seconds per call of each variant: the best of ``repeat`` batches of ``number``
    calls, the variants' batches interleaved so a change of load hits them alike."""
    best = dict.fromkeys(calls, float("inf"))
    for fn in calls.values():  # warm-up
        for _ in range(max(1, number // 10)):
            fn()
    for _ in range(repeat):
        for name, fn in calls.items():
            t0 = time.process_time()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.process_time() - t0) / number)
    return best


def batch_size(fn: Callable[[], Any], target_s: float = 0.02) -> int:
    """Calls of ``fn`` that take about ``target_s`` seconds (at least 1)."""
    t0 = time.process_time()
    fn()
    return max(1, int(target_s / max(time.process_time() - t0, 1e-6)))


def ratio(t: dict[str, float], a: str, b: str) -> str:
    return f"{t[a] / t[b]:.2f}" if a in t and b in t else "-"


def cell(t: dict[str, float], key: str, unit: float) -> str:
    return f"{t[key] * unit:.2f}" if key in t else "-"


def load_torch(wanted: bool) -> Any:
    if not wanted:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = parser.parse_args()
    torch = load_torch(not args.no_torch)
    facts = machine()
    print(f"# {facts['cpu']}, {facts['cores']} cores, Python {facts['python']}, NumPy "
          f"{facts['numpy']}, " + (f"PyTorch {torch.__version__} (CPU)" if torch else
                                   "PyTorch not installed or left out: no torch column")
          + f"; BLAS and PyTorch on 1 thread; CPU time, best of {args.repeat} batches; "
          f"load {facts['load']}")
    with blas_threads(1):
        print("\n# per op: float64 (8, 8) inputs requiring grad, microseconds per call")
        print(f"{'':22} {'numpy':>8} {'engine':>8} {'torch':>8} {'engine/numpy':>13} "
              f"{'engine/torch':>13}")
        for label, calls, number in per_op_rows(torch):
            t = round_robin(calls, number, args.repeat)
            print(f"{label:22} {cell(t, 'numpy', 1e6):>8} {cell(t, 'engine', 1e6):>8} "
                  f"{cell(t, 'torch', 1e6):>8} {ratio(t, 'engine', 'numpy'):>13} "
                  f"{ratio(t, 'engine', 'torch'):>13}")
        print("\n# the saved-data check: what a graph's nodes save, fingerprinted when "
              "recorded and verified before the backward, microseconds")
        print(f"{'':26} {'nodes':>6} {'KiB':>7} {'record':>8} {'verify':>8}")
        for label, out in check_graphs(args.d):
            nodes, kib, rec, ver = check_costs(out, args.repeat)
            print(f"{label:26} {nodes:>6} {kib:>7.1f} {rec * 1e6:>8.2f} {ver * 1e6:>8.2f}")
        print(f"\n# self-attention forward + backward, d = {args.d}, milliseconds; "
              f"ratios over NumPy")
        print(f"{'n':>6} {'dtype':>8} {'numpy':>8} {'composed':>9} {'fused':>8} "
              f"{'torch':>8} {'composed/np':>12} {'fused/np':>9} {'torch/np':>9}")
        for n in args.sizes:
            for dtype in (np.float32, np.float64):
                calls = attention_row(n, args.d, dtype, torch)
                t = round_robin(calls, batch_size(calls["composed"]), args.repeat)
                print(f"{n:>6} {np.dtype(dtype).name:>8} {cell(t, 'numpy', 1e3):>8} "
                      f"{cell(t, 'composed', 1e3):>9} {cell(t, 'fused', 1e3):>8} "
                      f"{cell(t, 'torch', 1e3):>8} {ratio(t, 'composed', 'numpy'):>12} "
                      f"{ratio(t, 'fused', 'numpy'):>9} {ratio(t, 'torch', 'numpy'):>9}")


if __name__ == "__main__":
    main()
