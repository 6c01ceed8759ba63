"""What does self-attention cost?  Time and peak memory of the fused op against n.

    python benchmarks/bench_complexity.py             # n = 128 .. 8192, figures in docs/
    python benchmarks/bench_complexity.py --quick     # n = 128 .. 1024, no figures
    python benchmarks/bench_complexity.py --from-json docs/complexity.json   # redraw

Forward+backward of ``ta.attention.scaled_dot_product`` on one head (q, k, v of shape
(n, d), d = 64) through the engine (Tensors, ``ta.grad``), f32 and f64: the plain fused
op (``impl="plain"``: the n x n weights are held) and the blocked one
(``impl="blocked", need_weights=False``: tiles, online softmax).  Time is the best of a
few calls; peak memory is what NumPy allocated beyond the inputs (tracemalloc).  The
exponent p of ``cost ~ n^p`` is the least-squares slope of log cost against log n over
n >= 1024, where the n^2 terms dominate the fixed costs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from timing import ROOT, best_time, machine, peak_bytes

import tinygrad_attn as ta  # noqa: E402  (path set by timing)

DOCS = ROOT / "docs"


def op_step(n: int, d: int, dtype: str, impl: str) -> Callable[[], Any]:
    """Forward+backward of the fused op through the engine."""
    rng = np.random.default_rng(0)
    q, k, v = (ta.Tensor(rng.standard_normal((n, d)).astype(dtype), requires_grad=True)
               for _ in range(3))
    g = rng.standard_normal((n, d)).astype(dtype)
    kw = {"impl": impl, "need_weights": impl == "plain"}

    def step() -> Any:
        c, _ = ta.attention.scaled_dot_product(q, k, v, **kw)
        return ta.grad(c, [q, k, v], grad_outputs=g)
    return step


def fit_exponent(ns: list[int], ys: list[float], n_min: int = 1024) -> float:
    """Least-squares slope of log y against log n over n >= n_min (over the larger half
    of the sizes when fewer than two reach n_min, as in ``--quick``)."""
    if sum(n >= n_min for n in ns) < 2:
        n_min = sorted(ns)[len(ns) // 2]
    pts = [(np.log(n), np.log(y)) for n, y in zip(ns, ys) if n >= n_min and y > 0]
    if len(pts) < 2:
        return float("nan")
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def fit_growth(ns: list[int], ys: list[float], n_min: int = 2048) -> float:
    """The exponent of what grows: the slope of log(y(n) - y(n/2)) against log n over
    n >= n_min.  A cost a + b n^p has growth slope p whatever its constant a, where the
    plain slope of ``fit_exponent`` still shows a (the blocked op's per-thread tiles are
    a few MiB that do not grow with n, so its memory slope is below 1 until n >> 1000).
    From n = 2048: below that the blocked op's default block sizes still change with n
    (``tiling.rows_block``, ``tiling.even``), so its "constant" does too."""
    grow = [(n, y - y_half) for n_half, y_half, n, y in zip(ns, ys, ns[1:], ys[1:])
            if n == 2 * n_half and y > y_half]
    if not grow:
        return float("nan")
    return fit_exponent([n for n, _ in grow], [dy for _, dy in grow],
                        n_min=growth_from(ns, n_min))


def growth_from(ns: list[int], n_min: int = 2048) -> int:
    """The smallest n of :func:`fit_growth`'s fit: ``n_min``, or the larger half of the
    doubled sizes when fewer than two reach it (``--quick``)."""
    doubled = sorted(ns)[1:]
    if sum(n >= n_min for n in doubled) >= 2:
        return n_min
    return doubled[len(doubled) // 2] if doubled else n_min


def measure(ns: list[int], d: int, dtypes: list[str], impls: list[str],
            repeat: int) -> dict[str, dict[str, list[float]]]:
    res: dict[str, dict[str, list[float]]] = {}
    for dt in dtypes:
        for impl in impls:
            key = f"{impl} {dt}"
            res[key] = {"time_s": [], "peak_bytes": []}
            for n in ns:
                step = op_step(n, d, dt, impl)
                reps = repeat if n <= 2048 else 1
                t = min(best_time(step, reps, warmup=1 if n <= 4096 else 0))
                mem = peak_bytes(step)
                res[key]["time_s"].append(t)
                res[key]["peak_bytes"].append(mem)
                print(f"{key:16s} n={n:5d}: {t * 1e3:9.1f} ms  {mem / 2**20:9.1f} MiB",
                      file=sys.stderr, flush=True)
    return res


def plot(ns: list[int], res: dict[str, dict[str, list[float]]], d: int) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"          # text stays text: small, greppable SVG
    plt.rcParams["svg.hashsalt"] = "tinygrad_attn"  # stable ids: a re-run diffs cleanly

    out = []
    for what, ylabel, fname in (("time_s", "forward+backward time (s)", "complexity_time.svg"),
                                ("peak_bytes", "peak memory beyond inputs (bytes)",
                                 "complexity_memory.svg")):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for key, r in res.items():
            ys = r[what]
            style = "-" if key.startswith("plain") else "--"
            marker = "o" if "float64" in key else "s"
            p, g = fit_exponent(ns, ys), fit_growth(ns, ys)
            ax.loglog(ns, ys, style, marker=marker,
                      label=f"{key} (slope {p:.2f}, of the growth {g:.2f})")
        guides = ((2, ":", "plain"), (1, "-.", "blocked")) if what == "peak_bytes" \
            else ((2, ":", "plain"),)
        for power, ls, anchor in guides:
            ref = next((r[what] for key, r in res.items() if key.startswith(anchor)), None)
            if ref is not None:   # a guide of slope `power` through the last point
                scale = ref[-1] / ns[-1] ** power
                ax.loglog(ns, [scale * n ** power for n in ns], ls, color="grey",
                          linewidth=0.8, label=f"n^{power}")
        ax.set_xlabel(f"sequence length n (d = {d})")
        ax.set_ylabel(ylabel)
        ax.set_xscale("log", base=2)
        ax.grid(True, which="major", linewidth=0.3)
        ax.legend(fontsize=7)
        ax.set_title("scaled dot-product attention: " + ("time" if what == "time_s"
                                                          else "memory"))
        fig.tight_layout()
        path = DOCS / fname
        fig.savefig(path, metadata={"Date": None})
        plt.close(fig)
        out.append(path)
    return out


def table(ns: list[int], res: dict[str, dict[str, list[float]]]) -> str:
    keys = list(res)
    head = "| n | " + " | ".join(f"{k} ms | {k} MiB" for k in keys) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(keys))]
    for i, n in enumerate(ns):
        cells = [f"{res[k]['time_s'][i] * 1e3:.1f} | {res[k]['peak_bytes'][i] / 2**20:.1f}"
                 for k in keys]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    n_min = min(1024, sorted(ns)[len(ns) // 2])
    lines.append(f"| slope (n >= {n_min}) | " + " | ".join(
        f"{fit_exponent(ns, res[k]['time_s']):.2f} | "
        f"{fit_exponent(ns, res[k]['peak_bytes']):.2f}" for k in keys) + " |")
    lines.append(f"| slope of the growth, y(n) - y(n/2) (n >= {growth_from(ns)}) | " + " | ".join(
        f"{fit_growth(ns, res[k]['time_s']):.2f} | "
        f"{fit_growth(ns, res[k]['peak_bytes']):.2f}" for k in keys) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="time and memory of attention against n")
    ap.add_argument("--max-n", type=int, default=8192)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--impls", nargs="+", default=["plain", "blocked"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="n up to 1024, no figures")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--from-json", help="redraw the figures and the table from a --json file")
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print(table(saved["n"], saved["results"]))
        for path in plot(saved["n"], saved["results"], saved["d"]):
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    max_n = 1024 if args.quick else args.max_n
    ns = [2 ** i for i in range(7, int(np.log2(max_n)) + 1)]
    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    res = measure(ns, args.d, args.dtypes, args.impls, args.repeat)
    print(table(ns, res))
    if not (args.quick or args.no_plot):
        for path in plot(ns, res, args.d):
            print(f"wrote {path.relative_to(ROOT)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "n": ns, "d": args.d,
                                               "results": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
