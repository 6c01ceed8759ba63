"""How long the symbolic proofs take: the engine's scaled dot-product backward proven
against sympy.diff with Q, K, V of 3x3 (m = n = d_k = d_v = 3), the ways of deciding
zero-equivalence side by side, the fast evaluation of derived gradients, the whole op
table and every derivation.

Run: python benchmarks/bench_symbolic.py [--scaling] [--baseline]   (--scaling proves SDPA
at sizes 4 and 6; --baseline also times plain diff + simplify of dQ, each element capped
at --cap seconds).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import sympy as sp  # noqa: E402

import tinygrad_attn as ta  # noqa: E402
from tinygrad_attn import attention as A  # noqa: E402
from tinygrad_attn.study import derive as D  # noqa: E402
from tinygrad_attn.verify.evaluation import compile_expressions  # noqa: E402
from tinygrad_attn.verify.symbolic import derive  # noqa: E402


def sdpa(Q, K, V):  # noqa: N803
    return A.scaled_dot_product(Q, K, V, fused=False)[0]


def sdpa_fused(Q, K, V):  # noqa: N803
    return A.scaled_dot_product(Q, K, V)[0]


def clock(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def prove_sdpa(n: int) -> None:
    """Fresh SymPy cache each time, so no run profits from an earlier one."""
    for label, fn in (("composed (fused=False)", sdpa), ("fused op", sdpa_fused)):
        sp.core.cache.clear_cache()
        t0 = time.perf_counter()
        der, t_diff = clock(lambda: derive(fn, {"Q": (n, n), "K": (n, n), "V": (n, n)}))
        eng, t_eng = clock(der.engine_gradients)
        proof, t_prove = clock(der.prove_engine)
        total = time.perf_counter() - t0
        print(f"  {label:24s} forward+sympy.diff {t_diff:5.2f} s   engine backward "
              f"{t_eng:5.2f} s   zero-equivalence {t_prove:5.2f} s   total {total:5.2f} s"
              f"   {'PROVEN' if proof.ok else 'NOT PROVEN'} ({proof.checked} elements)")


def compare_evaluators(n: int) -> None:
    """Deciding zero at 3 points: memoised mpmath evaluator vs cse + lambdify(mpmath)."""
    sp.core.cache.clear_cache()
    der = derive(sdpa, {"Q": (n, n), "K": (n, n), "V": (n, n)})
    eng = der.engine_gradients()
    diffs = [e - g for k in der.gradients for e, g in
             zip(eng[k].reshape(-1), der.gradients[k].reshape(-1))]
    _, t_memo = clock(lambda: der.prove_engine(points=3))
    syms = der.symbols
    fn, t_lamb = clock(lambda: compile_expressions(syms, diffs, "mpmath"))
    import mpmath

    def at3():
        with mpmath.workdps(50):
            for _ in range(3):
                fn(*[mpmath.mpf(1) / (i + 2) for i in range(len(syms))])
    _, t_call = clock(at3)
    print(f"  memoised evaluator (hash-consed subexpressions), 3 points: {t_memo:5.2f} s")
    print(f"  sympy cse + lambdify(mpmath): build {t_lamb:5.2f} s, 3 points {t_call:5.3f} s")


def evaluate_speed(n: int) -> None:
    """Derived gradients as fast float64 code: lambdify(numpy, cse=True)."""
    der = derive(sdpa, {"Q": (n, n), "K": (n, n), "V": (n, n)})
    rng = np.random.default_rng(0)
    vals = {k: rng.standard_normal((n, n)) for k in "QKV"}
    g = [rng.standard_normal((n, n))]
    _, t_first = clock(lambda: der.evaluate(vals, g))
    t = time.perf_counter()
    reps = 200
    for _ in range(reps):
        der.evaluate(vals, g)
    t_call = (time.perf_counter() - t) / reps
    _, t_mp = clock(lambda: der.evaluate(vals, g, digits=50))
    print(f"  evaluate(): first call (cse + lambdify) {t_first:5.2f} s, then "
          f"{t_call * 1e3:6.3f} ms per point; 50-digit evaluation {t_mp * 1e3:6.1f} ms")


def simplify_one(expr, queue):
    """Child process of :func:`baseline`: whether ``simplify(expr)`` is 0, and its time."""
    t = time.perf_counter()
    queue.put((sp.simplify(expr) == 0, time.perf_counter() - t))


def baseline(n: int, cap: float) -> None:
    """Plain approach: sympy.diff, then simplify(engine - diff) == 0, element by element."""
    sp.core.cache.clear_cache()
    der = derive(sdpa, {"Q": (n, n), "K": (n, n), "V": (n, n)})
    eng = der.engine_gradients()["Q"]
    total, done = 0.0, 0
    for index in np.ndindex(eng.shape):
        queue: mp.Queue = mp.Queue()
        proc = mp.Process(target=simplify_one, args=(eng[index] - der.gradients["Q"][index],
                                                      queue))
        t = time.perf_counter()
        proc.start()
        proc.join(cap)
        if proc.is_alive():
            proc.terminate()
            proc.join()
            print(f"  simplify dQ{list(index)}: still running after {cap:.0f} s (stopped)")
            total += time.perf_counter() - t
            break
        zero, secs = queue.get()
        total += secs
        done += 1
        print(f"  simplify dQ{list(index)}: {secs:6.2f} s  ({'0' if zero else 'NOT 0'})")
    print(f"  plain simplify: {done} of {eng.size} elements of dQ in {total:.1f} s")


def scaling(sizes: tuple[int, ...]) -> None:
    """How the proof of the fused SDPA backward grows with the size n of the square Q, K,
    V (3 n^2 input symbols)."""
    for n in sizes:
        sp.core.cache.clear_cache()
        der, t_diff = clock(lambda: derive(sdpa_fused, {"Q": (n, n), "K": (n, n),
                                                        "V": (n, n)}))
        proof, t_prove = clock(der.prove_engine)
        print(f"  size {n}: {3 * n * n:4d} symbols   sympy.diff {t_diff:6.1f} s   "
              f"proof {t_prove:5.1f} s   {'PROVEN' if proof.ok else 'NOT PROVEN'}")


def op_table() -> None:
    from op_cases import all_cases

    t = time.perf_counter()
    cases = all_cases()
    ok = 0
    for _, case in cases:
        der = derive(case.fn, {"abcdefgh"[i]: s for i, s in enumerate(case.shapes)},
                     positive=case.positive)
        ok += der.prove_engine().ok
    print(f"  {ok} of {len(cases)} op cases proven in {time.perf_counter() - t:.1f} s")


def derivations() -> None:
    for name in D.NAMES:
        sp.core.cache.clear_cache()
        res, secs = clock(lambda: D.run(name))
        print(f"  {name:22s} {len(res.checks):2d} checks  {secs:6.1f} s  "
              f"{'all proven' if res.ok else 'NOT ALL PROVEN'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument("--scaling", action="store_true",
                        help="also prove SDPA at sizes 4 and 6 (about a minute)")
    args = parser.parse_args()
    print(f"sympy {sp.__version__}, numpy {np.__version__}, tinygrad_attn {ta.__version__}")
    print("\nproving the engine's SDPA backward (dQ, dK, dV, all elements), size 3:")
    prove_sdpa(3)
    print("\nzero-equivalence at 3 random points, 50 digits (size 3):")
    compare_evaluators(3)
    print("\nfast evaluation of the derived gradients (size 3):")
    evaluate_speed(3)
    print("\nevery case of the op table (tests/op_cases.py):")
    op_table()
    print("\nevery derivation (including its 'for every size' section):")
    derivations()
    if args.scaling:
        print("\nscaling: the fused SDPA backward proven at larger sizes:")
        scaling((4, 6))
    if args.baseline:
        print("\nbaseline: sympy.diff then sympy.simplify, dQ only (size 3):")
        baseline(3, args.cap)


if __name__ == "__main__":
    main()
