"""How long the symbolic proofs take, by size: the exact method next to the old ways.

For the engine's backward of scaled dot-product attention (Q, K, V of n x n, so
m = n = d_k = d_v = n, symbolic upstream gradient) and of additive attention (every width
n), it prints per size:

* **exact method** (what ``derive(...).prove_engine()`` does now): the symbolic forward,
  the engine's backward on symbols, and the decision -- exact cancellation below
  ``EXACT_TREE``, else identity testing in random prime fields against the reference
  derivative computed by reverse mode over the DAG -- with its verdict;
* **old evaluation**: ``sympy.diff`` of every output element by every input element, then
  the difference evaluated at 3 random points with 50 digits (a numerical check);
* **diff + simplify**: ``sympy.diff``, then ``sympy.simplify(engine - diff) == 0`` for the
  elements of dQ (the first element's time, times the number of elements).

The old ways run in a child process stopped after ``--cap`` seconds ("> cap").

Run: python benchmarks/bench_symbolic.py [--cap S] [--sizes 2 4 8 16] [--routes]
[--estimate] [--derivations]  (--routes: tree size against the time of exact
cancellation and of identity testing, the measurement behind EXACT_TREE; --estimate: the
estimate printed before a run against the time it took; --derivations: every derivation
document and the op table).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import sympy as sp  # noqa: E402

import tinygrad_attn as ta  # noqa: E402
from tinygrad_attn import attention as A  # noqa: E402
from tinygrad_attn.verify.atoms import AtomTable, LiftedSympy  # noqa: E402
from tinygrad_attn.verify.dag import DagEvaluator  # noqa: E402
from tinygrad_attn.verify.equivalence import EXACT_TREE, equivalent, tree_size  # noqa: E402
from tinygrad_attn.verify.identity import Expressions, identity_test  # noqa: E402
from tinygrad_attn.verify.symbolic import derive, estimate  # noqa: E402


def sdpa(Q, K, V):  # noqa: N803
    return A.scaled_dot_product(Q, K, V, fused=False)[0]


def sdpa_fused(Q, K, V):  # noqa: N803
    return A.scaled_dot_product(Q, K, V)[0]


def additive(Q, K, V, W_q, W_k, v):  # noqa: N803
    return A.additive(Q, K, V, W_q, W_k, v)[0]


MECHANISMS: dict[str, tuple[Callable[..., Any], Callable[[int], dict]]] = {
    "sdpa (composed)": (sdpa, lambda n: {"Q": (n, n), "K": (n, n), "V": (n, n)}),
    "sdpa (fused op)": (sdpa_fused, lambda n: {"Q": (n, n), "K": (n, n), "V": (n, n)}),
    "additive": (additive, lambda n: {"Q": (n, n), "K": (n, n), "V": (n, n), "W_q": (n, n),
                                      "W_k": (n, n), "v": (n,)}),
}


def clock(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


# ----------------------------------------------------------------------------- the runs

def exact_method(name: str, n: int) -> str:
    """derive + engine backward + prove_engine, fresh SymPy cache, one table row."""
    fn, shapes = MECHANISMS[name]
    sp.core.cache.clear_cache()
    der, t_fwd = clock(lambda: derive(fn, shapes(n), max_symbols=None))
    _, t_bwd = clock(der.engine_gradients)
    proof, t_dec = clock(der.prove_engine)
    total = t_fwd + t_bwd + t_dec
    return (f"{total:7.2f} s (forward {t_fwd:.2f}, engine backward {t_bwd:.2f}, decision "
            f"{t_dec:.2f}; {proof.checked} elements, {proof.verdict})")


def sympy_diff_gradients(der: Any) -> dict[str, np.ndarray]:
    """The old reference: ``sympy.diff`` of every output element containing ``x``, for
    every input element ``x``."""
    pairs = [(g, o, o.free_symbols) for o, g in der.seeds]
    out = {}
    for name, t in der.inputs.items():
        arr = np.empty(t.shape, dtype=object)
        for index in np.ndindex(t.shape):
            x = t.data[index]
            arr[index] = sp.Add(*[g * sp.diff(o, x) for g, o, free in pairs if x in free])
        out[name] = arr
    return out


def old_evaluation(name: str, n: int, queue: Any) -> None:
    """Child process: sympy.diff, then the 50-digit evaluation at 3 points."""
    fn, shapes = MECHANISMS[name]
    der, t_fwd = clock(lambda: derive(fn, shapes(n), max_symbols=None))
    eng, t_bwd = clock(der.engine_gradients)
    ref, t_diff = clock(lambda: sympy_diff_gradients(der))
    proof, t_ev = clock(lambda: equivalent(eng, ref, method="evaluation"))
    queue.put(f"{t_fwd + t_bwd + t_diff + t_ev:7.2f} s (sympy.diff {t_diff:.2f}, "
              f"evaluation {t_ev:.2f}; {proof.verdict})")


def diff_and_simplify(name: str, n: int, queue: Any) -> None:
    """Child process: sympy.diff, then simplify(engine - diff) for one element of dQ; the
    time for all of dQ is that times its size (each element is as hard)."""
    fn, shapes = MECHANISMS[name]
    der, t_fwd = clock(lambda: derive(fn, shapes(n), max_symbols=None))
    eng, t_bwd = clock(der.engine_gradients)
    ref, t_diff = clock(lambda: sympy_diff_gradients(der))
    zero, t_one = clock(lambda: sp.simplify(eng["Q"][0, 0] - ref["Q"][0, 0]) == 0)
    size = eng["Q"].size
    queue.put(f"{t_fwd + t_bwd + t_diff + t_one * size:7.2f} s (sympy.diff {t_diff:.2f}, "
              f"simplify {t_one:.2f} per element x {size} of dQ; {'0' if zero else 'NOT 0'})")


def capped(target: Callable[..., None], args: tuple, cap: float) -> str:
    """``target(*args, queue)`` in a child process, stopped after ``cap`` seconds."""
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=target, args=args + (queue,))
    proc.start()
    proc.join(cap)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return f"> {cap:.0f} s (stopped)"
    return queue.get() if not queue.empty() else "failed"


def by_size(sizes: list[int], cap: float, old_sizes: int) -> None:
    """The table of the issue: per mechanism and size, the three ways side by side."""
    for name in MECHANISMS:
        print(f"\n{name}:")
        for n in sizes:
            if name == "additive" and n > 16:
                continue
            print(f"  n = {n:2d}  exact method     {exact_method(name, n)}", flush=True)
            if n <= old_sizes:
                print(f"          old evaluation   {capped(old_evaluation, (name, n), cap)}",
                      flush=True)
                print(f"          diff + simplify  {capped(diff_and_simplify, (name, n), cap)}",
                      flush=True)


# ----------------------------------------------------------------------------- the choices

def route_cases() -> list[tuple[str, Callable[..., Any], dict, Any]]:
    """The problems the route choice is measured on: op cases and small attention."""
    from op_cases import all_cases

    cases = [(c.name, c.fn, {"abcdefgh"[i]: s for i, s in enumerate(c.shapes)}, c.positive)
             for _, c in all_cases() if c.name in ("matmul_2d", "tanh", "softmax_last", "sdpa",
                                                   "sdpa_causal_scale")]
    for n in (2, 3):
        cases += [(f"sdpa {n}", sdpa, {"Q": (n, n), "K": (n + 1, n), "V": (n + 1, 1)}, ()),
                  (f"additive {n}", additive, {"Q": (n, n), "K": (n, n), "V": (n, 1),
                                               "W_q": (n, n), "W_k": (n, n), "v": (n,)}, ())]
    return cases


def sides(case: tuple) -> tuple[Expressions, Any]:
    """The engine's backward and the reference of one case."""
    _, fn, shapes, positive = case
    der = derive(fn, shapes, positive=positive)
    eng = der.engine_gradients()
    return Expressions([e for k in der.inputs for e in eng[k].reshape(-1)]), der.reference()


def cancel_case(index: int, queue: Any) -> None:
    """Child process: exact cancellation of every element of one case."""
    lhs, rhs = sides(route_cases()[index])

    def cancel() -> None:
        ev = DagEvaluator(LiftedSympy(AtomTable(lhs.roots() + rhs.roots())))
        for a, b in zip(lhs.values(ev), rhs.values(ev)):
            sp.cancel(a - b)
    queue.put(f"{clock(cancel)[1]:8.3f} s")


def routes(cap: float) -> None:
    """Tree size against exact cancellation and identity testing: where EXACT_TREE is."""
    print(f"  (auto cancels exactly up to a total tree size of {EXACT_TREE})")
    for index, case in enumerate(route_cases()):
        lhs, rhs = sides(case)
        size = tree_size(lhs, rhs)
        _, t_pit = clock(lambda: identity_test(lhs, rhs))
        t_cancel = capped(cancel_case, (index,), cap)
        print(f"  {case[0]:20s} tree {size:8d}   identity testing {t_pit:6.3f} s   "
              f"exact cancellation {t_cancel}", flush=True)


def estimates(sizes: list[int]) -> None:
    """What estimate() says before a run against how long it takes."""
    for name, (fn, shapes) in MECHANISMS.items():
        for n in sizes:
            est = estimate(fn, shapes(n))
            sp.core.cache.clear_cache()
            _, secs = clock(lambda: derive(fn, shapes(n), max_symbols=None).prove_engine())
            print(f"  {name:16s} n = {n:2d}: {est.operations:7d} operations, estimated "
                  f"{est.seconds:6.1f} s, took {secs:6.1f} s")


def derivations() -> None:
    from op_cases import all_cases

    from tinygrad_attn.study import derive as D

    t = time.perf_counter()
    cases = all_cases()
    verdicts: dict[str, int] = {}
    for _, case in cases:
        der = derive(case.fn, {"abcdefgh"[i]: s for i, s in enumerate(case.shapes)},
                     positive=case.positive)
        v = der.prove_engine().verdict.split(" >=")[0]
        verdicts[v] = verdicts.get(v, 0) + 1
    print(f"  {len(cases)} op cases in {time.perf_counter() - t:.1f} s: {verdicts}")
    for name in D.NAMES:
        sp.core.cache.clear_cache()
        res, secs = clock(lambda: D.run(name))
        print(f"  {name:22s} {len(res.checks):2d} checks  {secs:6.1f} s  "
              f"{'all proven' if res.ok else 'NOT ALL PROVEN'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[2, 4, 6, 8, 12, 16],
                        help="sizes of the table (none: skip it)")
    parser.add_argument("--old-sizes", type=int, default=8,
                        help="run the old ways up to this size (each capped)")
    parser.add_argument("--routes", action="store_true")
    parser.add_argument("--estimate", action="store_true")
    parser.add_argument("--derivations", action="store_true")
    args = parser.parse_args()
    print(f"sympy {sp.__version__}, numpy {np.__version__}, tinygrad_attn {ta.__version__}")
    if args.sizes:
        print("\nthe engine's backward verified, by size (m = n = d_k = d_v = n; additive: "
              "every width n):")
        by_size(args.sizes, args.cap, args.old_sizes)
    if args.routes:
        print("\nchoosing the route: tree size, identity testing, exact cancellation")
        routes(args.cap)
    if args.estimate:
        print("\nthe estimate before a run against the run")
        estimates([4, 8, 16])
    if args.derivations:
        print("\nthe op table and every derivation")
        derivations()


if __name__ == "__main__":
    main()
