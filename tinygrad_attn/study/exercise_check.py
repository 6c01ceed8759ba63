"""How an exercise's answer is checked and, when wrong, diagnosed without giving it away.

:func:`check_gradient` runs the answer on symbolic inputs and decides it equal to the exact
derivative element by element; :func:`diagnose` then evaluates both at a random point to
say which elements are wrong and how (a constant factor, a sign, a transpose, zero) and
which inputs the error depends on. :func:`check_values` compares an integer answer with
the reference at each argument. Used by :func:`tinygrad_attn.study.exercises.check`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..engine import Tensor
from ..engine.checks import raised_in

__all__ = ["check_gradient", "check_values", "diagnose"]


def _raised(exc: BaseException, answer: Callable[..., Any]) -> str:
    """The answer's error with the file and line of the answer's own frame."""
    code = getattr(answer, "__code__", None)
    at = raised_in(exc, code.co_filename if code is not None else None)
    where = f" ({at.filename}, line {at.lineno})" if at else ""
    return f"your function raised {type(exc).__name__}: {exc}{where}"


def check_gradient(ex: Any, answer: Callable[..., Any], seed: int = 0) -> tuple[bool, list[str]]:
    """``(ok, lines)`` for a gradient exercise."""
    from ..verify.equivalence import as_expr_array, decide
    from ..verify.identity import Expressions
    from ..verify.symbolic import derive

    d = derive(ex.forward, dict(ex.shapes))
    G = Tensor(d.cotangents[0], name="G", _validated=True)
    args = [d.inputs[n] for n in ex.shapes]
    try:
        out = answer(*args, G)
        asked = as_expr_array(out.data if isinstance(out, Tensor) else out)
        if ex.adapt is not None:
            out = ex.adapt(out, d.inputs, G)
        mine = as_expr_array(out.data if isinstance(out, Tensor) else out)
    except Exception as exc:  # the student's code: say what and where
        return False, [_raised(exc, answer)]
    shape = d.inputs[ex.wrt].shape
    what = ex.asked or f"the gradient of {ex.wrt}"
    if mine.shape != shape:
        got = ex.asked and "the Jacobian gives" or "your answer has"
        return False, [f"{got} shape {mine.shape}; {what} must give {ex.wrt}'s shape {shape}"]
    labels = [(ex.wrt, tuple(map(int, i))) for i in np.ndindex(shape)]
    proof = decide(labels, Expressions(list(mine.reshape(-1))), d.reference([ex.wrt]),
                   subject=f"exercise {ex.name}", names=[ex.wrt], seed=seed,
                   method="identity")    # exact cancellation of a wrong answer can take
                                         # minutes; identity testing is as sound
    if proof.ok:
        return True, [f"every element of {ex.wrt}'s gradient equals the exact one: "
                      f"{proof.verdict}"]
    if ex.adapt is not None:                  # diagnose what was asked for (a Jacobian)
        return False, diagnose(ex, d, asked, ex.exact(d), ex.label, seed)
    return False, diagnose(ex, d, mine, d.gradients[ex.wrt], ex.wrt, seed)


def _evaluator(d: Any, exprs: list[Any]) -> Callable[[np.ndarray], np.ndarray]:
    import sympy as sp

    f = sp.lambdify(d.symbols, exprs, "math")
    return lambda point: np.array(f(*point), dtype=float)


def diagnose(ex: Any, d: Any, mine: np.ndarray, exact: np.ndarray, label: str,
             seed: int) -> list[str]:
    """What is wrong with ``mine`` (the answer: the gradient of ``ex.wrt``, or what the
    exercise asked for) against ``exact``, from values at random points: never the exact
    answer itself. ``label`` names the array in the lines."""
    shape = mine.shape
    f_mine = _evaluator(d, list(mine.reshape(-1)))
    f_exact = _evaluator(d, list(exact.reshape(-1)))
    rng = np.random.default_rng(seed)
    point = rng.normal(size=len(d.symbols))
    a, r = f_mine(point).reshape(shape), f_exact(point).reshape(shape)
    wrong = [i for i in np.ndindex(shape) if abs(a[i] - r[i]) > 1e-9 * (1 + abs(r[i]))]
    if not wrong:        # equal here, not everywhere: the check's other points differ
        point = rng.normal(size=len(d.symbols))
        a, r = f_mine(point).reshape(shape), f_exact(point).reshape(shape)
        wrong = [i for i in np.ndindex(shape) if abs(a[i] - r[i]) > 1e-9 * (1 + abs(r[i]))]
    names = ", ".join(f"{label}{list(i)}" for i in wrong[:4]) + (" ..." if len(wrong) > 4
                                                                   else "")
    first = wrong[0] if wrong else next(np.ndindex(shape))
    lines = [f"{len(wrong)} of {a.size} elements differ from the exact gradient: {names}",
             f"at a random point, your {label}{list(first)} = {a[first]:.6g} where the "
             f"exact value is {r[first]:.6g}"]
    lines += _shape_of_error(a, r)
    lines += _depends_on(d, f_mine, f_exact, point, rng)
    return lines


def _shape_of_error(a: np.ndarray, r: np.ndarray) -> list[str]:
    """A constant factor, a sign, a transpose, or zero."""
    if np.allclose(a, 0):
        return ["your answer is zero everywhere"]
    if a.ndim == 2 and a.shape[0] == a.shape[1] and np.allclose(a, r.T):
        return ["your answer is the transpose of the gradient"]
    nz = np.abs(r) > 1e-12
    if nz.any():
        ratio = a[nz] / r[nz]
        if np.allclose(ratio, ratio[0], rtol=1e-9):
            c = float(ratio[0])
            if math.isclose(c, -1, rel_tol=1e-9):
                return ["your answer has the wrong sign everywhere"]
            return [f"your answer is the gradient times a constant {c:.6g}: a scale is "
                    "missing, doubled or inverted"]
    return []


def _groups(d: Any) -> dict[str, list[int]]:
    """Input name (and ``G``) -> the positions of its symbols in ``d.symbols``."""
    groups: dict[str, list[int]] = {}
    n_inputs = sum(t.size for t in d.inputs.values())
    for k, s in enumerate(d.symbols):
        name = "G" if k >= n_inputs else s.name.split("_")[0]
        groups.setdefault(name, []).append(k)
    return groups


def _moves(f: Callable[[np.ndarray], np.ndarray], ks: list[int], point: np.ndarray,
           rng: np.random.Generator) -> bool:
    """Whether ``f`` changes when the values at ``ks`` are redrawn."""
    p = point.copy()
    p[ks] = rng.normal(size=len(ks))
    base, moved = f(point), f(p)
    return not np.allclose(base, moved, rtol=1e-9, atol=1e-12)


def _depends_on(d: Any, f_mine: Callable, f_exact: Callable, point: np.ndarray,
                rng: np.random.Generator) -> list[str]:
    """Inputs the gradient depends on and the answer does not (or the reverse), and
    whether the answer is linear in the upstream gradient G, as it must be."""
    lines = []
    for name, ks in _groups(d).items():
        mine, exact = _moves(f_mine, ks, point, rng), _moves(f_exact, ks, point, rng)
        if exact and not mine:
            lines.append(f"your answer does not depend on {name}; the gradient does")
        elif mine and not exact:
            lines.append(f"your answer depends on {name}; the gradient does not")
    ks = _groups(d).get("G", [])
    if ks and _moves(f_exact, ks, point, rng):          # the exact answer is linear in G
        p2 = point.copy()
        p2[ks] *= 2
        if not np.allclose(f_mine(p2), 2 * f_mine(point), rtol=1e-9, atol=1e-12):
            lines.append("your answer is not linear in G: every gradient is")
    return lines


def check_values(ex: Any, answer: Callable[..., Any]) -> tuple[bool, list[str]]:
    """``(ok, lines)`` for an exercise whose answer is a number for each argument tuple."""
    lines = []
    for args in ex.values:
        try:
            got = answer(*args)
        except Exception as exc:
            return False, [_raised(exc, answer)]
        want = ex.reference(*args)
        if got != want:
            call = f"{ex.reference.__name__.replace('_reference', '')}({', '.join(map(str, args))})"
            lines.append(f"{call} = {got!r} is too {'small' if got < want else 'large'}")
    if lines:
        return False, [f"{len(lines)} of {len(ex.values)} values are wrong", *lines[:3]]
    return True, [f"all {len(ex.values)} values agree with the counts on the recorded graph"]
