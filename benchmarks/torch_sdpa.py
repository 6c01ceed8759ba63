"""Time PyTorch CPU ``scaled_dot_product_attention`` forward+backward, in its own process.

Run by ``bench_flash.py`` as a subprocess (PyTorch's OpenMP pool and NumPy's OpenBLAS
pool slow each other when they share a process), prints one JSON line per case::

    python benchmarks/torch_sdpa.py --n 1024 2048 --d 64 --dtype float32 --causal 0 1
    python benchmarks/torch_sdpa.py --gemm 256 512 --dtype float32 float64   # products

Exits with status 3 and a message when PyTorch is not installed (it is optional).
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def tile_products(bq: int, bk: int, d: int) -> list[tuple[str, int, int, int, bool, bool]]:
    """The seven matrix products of one (bq x bk) tile of the blocked kernels
    (tinygrad_attn/attention/flash.py), as (name, M, K, N, A transposed, B transposed): two in the
    forward, five in the backward (S recomputed).  Shared with ``timing.py``."""
    return [("fwd S = [sQ, -mu][K, 1]^T", bq, d + 1, bk, False, True),
            ("fwd P [V, 1]", bq, bk, d + 1, False, False),
            ("bwd S - L = [sQ, -L][K, 1]^T", bq, d + 1, bk, False, True),
            ("bwd dV += P^T g", bk, bq, d, True, False),
            ("bwd dP - D = [g, -D][V, 1]^T", bq, d + 1, bk, False, True),
            ("bwd dQ += dS K", bq, bk, d, False, False),
            ("bwd dK += dS^T Q", bk, bq, d, True, False)]


def gemm_rates(dtype_name: str, bq: int, bk: int, d: int, repeat: int) -> None:
    """One JSON line per tile product: PyTorch's (MKL's) best rate on one thread."""
    import torch
    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(0)
    for name, m, k, n, ta, tb in tile_products(bq, bk, d):
        a = torch.randn((k, m) if ta else (m, k), generator=gen, dtype=dtype)
        b = torch.randn((n, k) if tb else (k, n), generator=gen, dtype=dtype)
        a, b = (a.t() if ta else a), (b.t() if tb else b)
        out = torch.empty((m, n), dtype=dtype)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(10):
                torch.mm(a, b, out=out)
            best = min(best, (time.perf_counter() - t0) / 10)
        print(json.dumps({"product": name, "dtype": dtype_name, "seconds": best,
                          "flops": 2 * m * k * n, "torch": torch.__version__}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1024])
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", nargs="+", default=["float32"])
    ap.add_argument("--causal", type=int, nargs="+", default=[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--gemm", type=int, nargs=2, metavar=("BQ", "BK"),
                    help="instead: one thread's rate on the products of a BQ x BK tile")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch is not installed", file=sys.stderr)
        return 3
    if args.gemm:
        for dtype_name in args.dtype:
            gemm_rates(dtype_name, *args.gemm, args.d, args.repeat)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        for n in args.n:
            for causal in args.causal:
                shape = (args.batch, 1, n, args.d)   # (B, heads, n, d)
                q, k, v, g = (torch.randn(shape, generator=gen, dtype=dtype)
                               for _ in range(4))
                for t in (q, k, v):
                    t.requires_grad_(True)

                def step() -> None:
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                    torch.autograd.grad(o, (q, k, v), g)

                step()
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - t0)
                times.sort()
                print(json.dumps({
                    "impl": "torch", "n": n, "d": args.d, "batch": args.batch,
                    "dtype": dtype_name, "causal": bool(causal), "min_s": times[0],
                    "median_s": times[len(times) // 2], "threads": torch.get_num_threads(),
                    "torch": torch.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
