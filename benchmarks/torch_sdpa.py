"""Time PyTorch CPU ``scaled_dot_product_attention`` forward+backward, in its own process.

Run by ``bench_flash.py`` as a subprocess (PyTorch's OpenMP pool and NumPy's OpenBLAS
pool slow each other when they share a process), prints one JSON line per case::

    python benchmarks/torch_sdpa.py --n 1024 2048 --d 64 --dtype float32 --causal 0 1

Exits with status 3 and a message when PyTorch is not installed (it is optional).
"""
from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1024])
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", nargs="+", default=["float32"])
    ap.add_argument("--causal", type=int, nargs="+", default=[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch is not installed", file=sys.stderr)
        return 3
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    for dtype_name in args.dtype:
        dtype = getattr(torch, dtype_name)
        for n in args.n:
            for causal in args.causal:
                shape = (args.batch, 1, n, args.d)   # (B, heads, n, d)
                q, k, v, do = (torch.randn(shape, generator=gen, dtype=dtype)
                               for _ in range(4))
                for t in (q, k, v):
                    t.requires_grad_(True)

                def step() -> None:
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                    torch.autograd.grad(o, (q, k, v), do)

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
