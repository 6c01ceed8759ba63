"""Shared helpers of the attention benchmarks (not a benchmark itself): the two fused
kernels (plain and blocked) as forward+backward callables, timing, peak memory, the
machine's facts, and PyTorch run in its own process."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinygrad_attn.attention import flash, kernels, tiling, workers  # noqa: E402
from tinygrad_attn.engine import blas_threads, numeric  # noqa: E402


def inputs(n: int, d: int, dtype: Any, seed: int = 0) -> tuple[np.ndarray, ...]:
    """q, k, v and the upstream gradient g, each of shape (n, d), standard normal."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, d)).astype(dtype) for _ in range(4))


def plain_step(q: np.ndarray, k: np.ndarray, v: np.ndarray, g: np.ndarray,
               causal: bool = False) -> Callable[[], Any]:
    """Forward+backward of the plain fused op's kernels (the (n, n) weights held)."""
    def step() -> Any:
        o, p = kernels.sdpa_forward(numeric, q, k, v, None, causal)
        return kernels.sdpa_backward(numeric, q, k, v, o, p, g, None, causal)
    return step


def blocked_step(q: np.ndarray, k: np.ndarray, v: np.ndarray, g: np.ndarray,
                 causal: bool = False, threads: int | None = None,
                 **blocks: int) -> Callable[[], Any]:
    """Forward+backward of the blocked kernels (tiles, online softmax, recompute)."""
    def step() -> Any:
        o, lse = flash.flash_forward(numeric, q, k, v, None, causal, threads=threads,
                                     **blocks)
        return flash.flash_backward(numeric, q, k, v, o, lse, g, None, causal,
                                    threads=threads, **blocks)
    return step


def best_time(step: Callable[[], Any], repeat: int, warmup: int = 3,
              warmup_s: float = 0.25) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls after ``warmup`` calls and at least
    ``warmup_s`` seconds of calls: right after another implementation's (n, n) arrays
    were freed, the next one runs slower for its first few calls while the allocator and
    OpenBLAS's threads settle, whatever the pause between."""
    t0 = time.perf_counter()
    calls = 0
    while calls < warmup or (warmup and time.perf_counter() - t0 < warmup_s):
        step()
        calls += 1
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def peak_bytes(step: Callable[[], Any]) -> int:
    """Peak bytes NumPy allocated during ``step`` beyond what was live before (tracemalloc
    sees every NumPy data buffer), results included.  What the blocked kernels keep
    between calls (work arrays, scratch tiles, pool) is let go first, so it is counted."""
    workers.free_workspace()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def machine() -> dict[str, Any]:
    """CPU, cores, versions, BLAS, date and load: the facts a table needs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "?"
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if info:
            blas = f"{info[0]['internal_api']} {info[0].get('version')} " \
                   f"({info[0]['num_threads']} threads)"
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def gemm_rate(dtype: Any, n: int = 2048, d: int = 64, repeat: int = 5) -> dict[str, float]:
    """NumPy's GEMM rate (flop/s, best of ``repeat``) with its own BLAS threads: a square
    n x n product, and the products attention makes (n x d by d x n, n x n by n x d)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n)).astype(dtype)
    x, y = (rng.standard_normal((n, d)).astype(dtype) for _ in range(2))
    square = 2 * n ** 3 / min(best_time(lambda: a @ a, repeat))
    shaped = 4 * n * n * d / (min(best_time(lambda: x @ y.T, repeat))
                              + min(best_time(lambda: a @ x, repeat)))
    return {"square": square, "attention_shaped": shaped}


def tile_product_times(dtype: Any, bq: int, bk: int, d: int,
                       repeat: int = 7) -> list[dict[str, Any]]:
    """NumPy's best seconds on one thread (BLAS held to 1) for each product of a tile of
    the blocked kernels (``torch_sdpa.tile_products``), written into a kept array as the
    kernels do; and PyTorch's for the same products, from its own process (when
    installed): what the BLAS each library ships can do on attention's shapes."""
    from threadpoolctl import threadpool_limits
    from torch_sdpa import tile_products
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for name, m, k, n, ta, tb in tile_products(bq, bk, d):
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            a, b = (a.T if ta else a), (b.T if tb else b)
            out = np.empty((m, n), dtype=dtype)
            best = np.inf
            for _ in range(repeat):
                t0 = time.perf_counter()
                for _ in range(10):
                    np.matmul(a, b, out=out)
                best = min(best, (time.perf_counter() - t0) / 10)
            rows.append({"product": name, "shape": f"{m} x {k} x {n}",
                         "flops": 2 * m * k * n, "numpy_s": best, "torch_s": None})
    cmd = [sys.executable, str(Path(__file__).with_name("torch_sdpa.py")), "--gemm",
           str(bq), str(bk), "--d", str(d), "--dtype", np.dtype(dtype).name,
           "--repeat", str(repeat)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode == 0:
        torch_rows = [json.loads(line) for line in res.stdout.splitlines()
                      if line.startswith("{")]
        for row, trow in zip(rows, torch_rows):
            row["torch_s"] = trow["seconds"]
    return rows


def products_step(n: int, d: int, dtype: Any, threads: int,
                  blocks: tuple[int, int] | None = None) -> Callable[[], Any]:
    """Forward+backward of the blocked kernels with everything but the matrix products
    taken out: the same seven products per tile, on the same operand slices (d + 1
    columns where the kernels append one), in the same loops and on the same worker
    threads (``workers.run``, BLAS held to one thread), with no exp, no mask, no
    bookkeeping.  Its time is the floor the kernels sit on in practice: each product
    meets fresh operands, as in the kernels, not the same hot ones as in a rate test."""
    bq, bk = blocks or (tiling.BLOCK_Q, tiling.BLOCK_K)
    fq = bq if blocks else tiling.rows_block(bq, n, 1, threads, False)  # forward's rows
    rng = np.random.default_rng(0)
    qa, ka, va, ga = (rng.standard_normal((n, d + 1)).astype(dtype) * 0.1
                      for _ in range(4))
    k, g = ka[:, :d], ga[:, :d]
    dq = [np.zeros((n, d), dtype) for _ in range(threads)]
    dk, dv = np.zeros((n, d), dtype), np.zeros((n, d), dtype)
    scratch = threading.local()

    def prod(a: np.ndarray, b: np.ndarray, slot: str) -> np.ndarray:
        return workers.product(numeric, a, b, scratch, slot)

    def forward_rows(item: tuple[int, int], slot: int) -> None:
        i0, i1 = item
        for j0, j1 in tiling.spans(n, bk):
            prod(prod(qa[i0:i1], ka[j0:j1].T, "tile"), va[j0:j1], "pv")

    def backward_keys(item: tuple[int, int], slot: int) -> None:
        j0, j1 = item
        for i0, i1 in tiling.spans(n, bq):
            p = prod(qa[i0:i1], ka[j0:j1].T, "tile")
            dv[j0:j1] += prod(p.T, g[i0:i1], "dv")
            ds = prod(ga[i0:i1], va[j0:j1].T, "ds")
            dq[slot][i0:i1] += prod(ds, k[j0:j1], "dq")
            dk[j0:j1] += prod(ds.T, qa[i0:i1, :d], "dk")

    def step() -> None:
        with blas_threads(1):             # one core per thread, 1 thread included
            workers.run(tiling.spans(n, fq), forward_rows, threads)
            workers.run(tiling.spans(n, bk), backward_keys, threads)
    return step


def torch_times(n: list[int], d: int, dtypes: list[str], causal: list[int],
                repeat: int) -> list[dict[str, Any]] | None:
    """PyTorch CPU SDPA forward+backward, timed in its own process (None without torch)."""
    cmd = [sys.executable, str(Path(__file__).with_name("torch_sdpa.py")),
           "--n", *map(str, n), "--d", str(d), "--dtype", *dtypes,
           "--causal", *map(str, causal), "--repeat", str(repeat)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return None
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
