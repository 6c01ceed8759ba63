"""Attention forward + backward: the fused op and the composed engine ops against
hand-written NumPy (and PyTorch on the CPU, when it is installed), side by side in one run.

    python benchmarks/bench_attention.py [--sizes 256 1024 2048] [--repeat 5] [--no-torch]

BLAS runs on one thread unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say otherwise (set
before NumPy loads), and PyTorch gets the same count: on a shared machine the ratios
are then stable.  The variants of a row are timed round-robin, so they see the same load.

Cases (d = 64 throughout):

* scaled dot-product attention of one sequence, q, k, v of shape (n, 64): the fused op
  (``scaled_dot_product(fused=True)``), the composed ops (``fused=False``), NumPy;
* additive attention (Bahdanau): 64 queries against n keys, hidden size 64, composed
  ops vs NumPy (the (m, n, h) tanh tensor makes m = n impractical: 2 GB in float64 at
  n = 2048);
* multi-head attention, batch 4 x 8 heads x n 256, d_model 512: fused, composed (head by
  head), NumPy.

Each time is the best of ``--repeat`` runs of forward + backward (all input gradients);
every result is checked against the NumPy one before it is timed.  Prints a Markdown table
with the ratios engine / NumPy.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any, Callable

THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS",
                                os.environ.get("OMP_NUM_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import numpy as np  # noqa: E402

import tinygrad_attn as ta  # noqa: E402
from tinygrad_attn import attention as A  # noqa: E402

try:
    import torch
    torch.set_num_threads(int(THREADS))
except ImportError:  # optional
    torch = None


# ----------------------------------------------------------------------------- NumPy


def np_softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return p


def numpy_sdpa(q, k, v, g):
    """O = softmax(Q K^T / sqrt(d)) V and its backward, by hand."""
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    kT = np.swapaxes(k, -1, -2)
    p = np_softmax((q @ kT) * scale)
    o = p @ v
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (g * o).sum(axis=-1, keepdims=True))
    return o, (ds @ k) * scale, (np.swapaxes(ds, -1, -2) @ q) * scale, dv


def numpy_additive(q, k, v, wq, wk, va, g):
    """e = v^T tanh(q Wq + k Wk), O = softmax(e) V, and the backward, by hand."""
    t = np.tanh((q @ wq)[:, None, :] + (k @ wk)[None, :, :])        # (m, n, h)
    p = np_softmax(t @ va)                                           # (m, n)
    o = p @ v
    dv = p.T @ g
    dp = g @ v.T
    de = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dva = np.einsum("mn,mnh->h", de, t)
    da = de[:, :, None] * va * (1 - t * t)                           # (m, n, h)
    dqp, dkp = da.sum(axis=1), da.sum(axis=0)
    return o, dqp @ wq.T, dkp @ wk.T, dv, q.T @ dqp, k.T @ dkp, dva


def numpy_mha(x, wq, wk, wv, wo, heads, g):
    """Multi-head self-attention (PyTorch head layout) and its backward, by hand."""
    B, n, D = x.shape
    dh = D // heads

    def split(t):                                                    # (B, n, D) -> (B, H, n, dh)
        return t.reshape(B, n, heads, dh).transpose(0, 2, 1, 3)

    def join(t):
        return t.transpose(0, 2, 1, 3).reshape(B, n, D)

    q, k, v = split(x @ wq), split(x @ wk), split(x @ wv)
    scale = x.dtype.type(1.0 / np.sqrt(dh))
    p = np_softmax((q @ np.swapaxes(k, -1, -2)) * scale)
    c = p @ v
    cat = join(c)
    out = cat @ wo
    dwo = np.tensordot(cat, g, axes=([0, 1], [0, 1]))
    dc = split(g @ wo.T)
    dv = np.swapaxes(p, -1, -2) @ dc
    dp = dc @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dc * c).sum(axis=-1, keepdims=True))
    dq, dk = (ds @ k) * scale, (np.swapaxes(ds, -1, -2) @ q) * scale
    dq, dk, dv = join(dq), join(dk), join(dv)
    dx = dq @ wq.T + dk @ wk.T + dv @ wv.T
    return (out, dx, np.tensordot(x, dq, axes=([0, 1], [0, 1])),
            np.tensordot(x, dk, axes=([0, 1], [0, 1])),
            np.tensordot(x, dv, axes=([0, 1], [0, 1])), dwo)


# ----------------------------------------------------------------------------- engine

def engine(fn: Callable[..., Any]) -> Callable[..., tuple[np.ndarray, ...]]:
    """Wrap ``fn(*Tensors) -> (out, weights)``: forward, then backward of all inputs."""
    def run(*arrays):
        *xs, g = arrays
        ts = [ta.Tensor(x, requires_grad=True) for x in xs]
        out, _ = fn(*ts)
        grads = ta.grad(out, ts, grad_outputs=g)
        return (out.data,) + tuple(grad.data for grad in grads)
    return run


def torch_fn(kind: str) -> Callable[..., tuple[np.ndarray, ...]] | None:
    if torch is None:
        return None
    F = torch.nn.functional

    def run(*arrays):
        *xs, g = arrays
        ts = [torch.from_numpy(x).requires_grad_(True) for x in xs]
        if kind == "sdpa":
            out = F.scaled_dot_product_attention(*ts)
        elif kind == "additive":
            q, k, v, wq, wk, va = ts
            e = torch.tanh((q @ wq)[:, None, :] + (k @ wk)[None, :, :]) @ va
            out = torch.softmax(e, -1) @ v
        else:
            x, wq, wk, wv, wo = ts
            B, n, D = x.shape

            def split(t):
                return t.reshape(B, n, 8, D // 8).transpose(1, 2)
            c = F.scaled_dot_product_attention(split(x @ wq), split(x @ wk), split(x @ wv))
            out = c.transpose(1, 2).reshape(B, n, D) @ wo
        grads = torch.autograd.grad(out, ts, torch.from_numpy(g))
        return (out.detach().numpy(),) + tuple(grad.numpy() for grad in grads)
    return run


def best_times(fns: list[Callable[..., Any]], args: tuple, repeat: int) -> list[float]:
    """The best of ``repeat`` runs of each fn, timed round-robin (one warm-up each)."""
    for fn in fns:
        fn(*args)
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn(*args)
            ts.append(time.perf_counter() - t0)
    return [min(ts) for ts in times]


def check(ref: tuple, got: tuple, dtype: Any, what: str) -> None:
    tol = 2e-3 if dtype == np.float32 else 1e-9
    for a, b in zip(ref, got):
        scale = max(1.0, float(np.abs(a).max()))
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol * scale, err_msg=what)


# ----------------------------------------------------------------------------- main

def print_row(case: str, n: int, dtype: Any, fns: dict[str, Callable[..., Any] | None],
              inputs: tuple, repeat: int) -> None:
    """Check every variant against NumPy's result, time them round-robin, print the
    Markdown row.  ``fns``: NumPy, fused, composed and (optional) torch, None = n/a."""
    ref_fn = fns["numpy"]
    ref = ref_fn(*inputs)
    run = [f for f in fns.values() if f is not None]
    for fn in run[1:]:
        check(ref, fn(*inputs), dtype, f"{case} n={n} {np.dtype(dtype).name}")
    times = dict(zip(run, best_times(run, inputs, repeat)))
    t_np = times[ref_fn]
    cells = [case, str(n), np.dtype(dtype).name, f"{t_np * 1e3:.1f}"]
    cells += ["-" if fns[k] is None else f"{times[fns[k]] * 1e3:.1f}"
              for k in ("fused", "composed")]
    cells += [f"{times[fns['torch']] * 1e3:.1f}"] if "torch" in fns else []
    cells += ["-" if fns[k] is None else f"{times[fns[k]] / t_np:.2f}"
              for k in ("fused", "composed")]
    print("| " + " | ".join(cells) + " |", flush=True)


def sdpa_rows(sizes: list[int], d: int, rng: np.random.Generator, torch_on: bool,
              repeat: int) -> None:
    """Scaled dot-product attention of one sequence, q, k, v of shape (n, d)."""
    for n in sizes:
        for dtype in (np.float32, np.float64):
            q, k, v, g = (rng.standard_normal((n, d)).astype(dtype) for _ in range(4))
            fns = {"numpy": numpy_sdpa,
                   "fused": engine(lambda q, k, v: A.scaled_dot_product(q, k, v, fused=True)),
                   "composed": engine(lambda q, k, v: A.scaled_dot_product(q, k, v,
                                                                           fused=False))}
            fns.update({"torch": torch_fn("sdpa")} if torch_on else {})
            print_row("scaled dot-product", n, dtype, fns, (q, k, v, g), repeat)


def additive_rows(sizes: list[int], d: int, rng: np.random.Generator, torch_on: bool,
                  repeat: int) -> None:
    """Additive attention: 64 queries against n keys, hidden size d (composed only)."""
    for n in sizes:
        for dtype in (np.float32, np.float64):
            m = 64
            q, g = (rng.standard_normal((m, d)).astype(dtype) for _ in range(2))
            k, v = (rng.standard_normal((n, d)).astype(dtype) for _ in range(2))
            wq, wk = ((rng.standard_normal((d, d)) / 8).astype(dtype) for _ in range(2))
            va = rng.standard_normal(d).astype(dtype)
            fns = {"numpy": numpy_additive, "fused": None,
                   "composed": engine(lambda *t: A.additive(*t))}
            fns.update({"torch": torch_fn("additive")} if torch_on else {})
            print_row("additive (m = 64)", n, dtype, fns, (q, k, v, wq, wk, va, g), repeat)


def multi_head_rows(rng: np.random.Generator, torch_on: bool, repeat: int) -> None:
    """Multi-head self-attention, batch 4 x 8 heads x n 256, d_model 512."""
    B, n, D, H = 4, 256, 512, 8
    for dtype in (np.float32, np.float64):
        x, g = (rng.standard_normal((B, n, D)).astype(dtype) for _ in range(2))
        ws = [(rng.standard_normal((D, D)) / np.sqrt(D)).astype(dtype) for _ in range(4)]

        def mha(fused: bool) -> Callable[..., tuple[np.ndarray, ...]]:
            return engine(lambda x, a, b, c, o: A.multi_head(x, x, a, b, c, o, H,
                                                             fused=fused))
        fns = {"numpy": lambda x, a, b, c, o, g: numpy_mha(x, a, b, c, o, H, g),
               "fused": mha(True), "composed": mha(False)}
        fns.update({"torch": torch_fn("mha")} if torch_on else {})
        print_row("multi-head 4 x 8 heads", n, dtype, fns, (x, *ws, g), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    torch_on = torch is not None and not args.no_torch
    d, rng = 64, np.random.default_rng(0)
    print(f"# attention forward + backward vs hand-written NumPy; d = {d}, best of "
          f"{args.repeat}")
    print(f"# {platform.machine()}, Python {platform.python_version()}, NumPy "
          f"{np.__version__}" + (f", PyTorch {torch.__version__} (CPU)" if torch_on else "")
          + f", BLAS threads {THREADS}")
    head = "| case | n | dtype | NumPy ms | fused ms | composed ms |"
    head += " torch ms |" if torch_on else ""
    head += " fused / NumPy | composed / NumPy |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    sdpa_rows(args.sizes, d, rng, torch_on, args.repeat)
    additive_rows(args.sizes, d, rng, torch_on, args.repeat)
    multi_head_rows(rng, torch_on, args.repeat)


if __name__ == "__main__":
    main()
