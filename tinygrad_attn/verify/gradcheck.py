"""Gradient checking: the engine's backward against central finite differences
(and, with ``symbolic=True``, against SymPy's exact derivative).

The scalar that is differentiated is :math:`L(x) = \\sum_k \\langle g_k, f_k(x) \\rangle`
for fixed random upstream gradients :math:`g_k`, one per output of ``fn``; its gradient
is the engine's VJP with those upstream gradients, and its finite differences need two
evaluations of ``fn`` per input element.  A wrong VJP changes :math:`\\nabla L` for almost
every :math:`g`, so one random projection checks the whole Jacobian with probability 1.

:func:`gradcheck` runs four steps, one function each: :func:`checked_inputs` (argument
validation), :func:`engine_gradients` (the VJP under test), :func:`finite_differences`
and, with ``symbolic=True``, :func:`sympy_gradients`; :func:`compare` and
:func:`compare_symbolic` turn the arrays into the rows of the report
(:mod:`tinygrad_attn.verify.report`).  SymPy is imported only inside
:func:`sympy_gradients`, so ``import tinygrad_attn`` does not load it.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np

from ..engine import Tensor, grad
from .estimate import MAX_SYMBOLS
from .report import GradcheckError, GradcheckReport, InputReport

__all__ = ["GradcheckError", "GradcheckReport", "InputReport", "checked_inputs", "compare",
           "compare_symbolic", "engine_gradients", "finite_differences", "gradcheck",
           "outputs", "sympy_gradients"]


def gradcheck(fn: Callable[..., Any], *inputs: Tensor, eps: float = 1e-6,
              atol: float = 1e-8, rtol: float = 1e-6, symbolic: bool = False,
              sym_atol: float = 1e-12, sym_rtol: float = 1e-10, seed: int = 0,
              raise_exception: bool = False, max_symbols: int | None = MAX_SYMBOLS,
              sample: int | None = None) -> GradcheckReport:
    """Check the engine's gradient of ``fn`` at ``inputs``, for every input that requires
    grad and every output.

    Passes an element when ``|engine - numerical| <= atol + rtol * |numerical|``.  With
    ``symbolic=True`` the engine is also compared with SymPy's exact gradient, far more
    tightly (``sym_atol``, ``sym_rtol``): both are float64 values of the same quantity,
    so an error too small for finite differences to see is still caught.
    ``max_symbols`` and ``sample`` go to :func:`~tinygrad_attn.verify.symbolic.
    exact_gradients` (the symbolic run's size limit; ``K`` random elements of the
    engine's backward also proven exactly).
    """
    checked = checked_inputs(inputs)
    notes = []
    if any(t.dtype != np.float64 for t in checked):
        msg = ("gradcheck: inputs are not float64; central finite differences are "
               "unreliable at float32 precision (use float64 Tensors to check gradients)")
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        notes.append(msg)
    outs = outputs(fn, inputs)
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal(o.shape) for o in outs]  # one upstream gradient per output
    engine = engine_gradients(outs, checked, gs)
    exact = None
    if symbolic:
        exact = sympy_gradients(fn, inputs, gs, max_symbols=max_symbols, sample=sample)
        notes.append("sympy: sympy.diff of the symbolic run, evaluated at the exact float64 "
                     "inputs with 50 significant digits, then rounded to float64; engine "
                     f"vs sympy passes when |engine - sympy| <= {sym_atol:g} + "
                     f"{sym_rtol:g} * |sympy|")
    rows = []
    for k, (t, analytic) in enumerate(zip(checked, engine)):
        numeric = finite_differences(fn, inputs, gs, t, eps)
        row = compare(input_name(t, inputs), analytic, numeric, atol, rtol)
        if exact is not None:
            note = compare_symbolic(row, analytic, numeric, exact[k], sym_atol, sym_rtol)
            notes += [note] if note else []
        rows.append(row)
    report = GradcheckReport(rows, eps, atol, rtol, symbolic=symbolic, notes=notes)
    if raise_exception and not report.ok:
        raise GradcheckError(report)
    return report


# ----------------------------------------------------------------------------- the steps

def checked_inputs(inputs: Sequence[Any]) -> list[Tensor]:
    """The inputs whose gradient is checked (``requires_grad``), after refusing what
    cannot be checked: a non-Tensor, a symbolic Tensor, or no input that requires grad."""
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, not a Tensor")
        if t.dtype == object:
            raise TypeError(f"gradcheck: input {i} is symbolic; pass numeric Tensors (the "
                            f"symbolic comparison is made with symbolic=True)")
    checked = [t for t in inputs if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    return checked


def outputs(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """``fn(*inputs)`` as a tuple of Tensors; anything else is refused by name."""
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors; "
                            f"output {i} is a {type(o).__name__}")
    return tuple(outs)


def engine_gradients(outs: Sequence[Tensor], checked: Sequence[Tensor],
                     gs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The engine's VJP of ``outs`` with upstream gradients ``gs``, one float64 array per
    checked input (zeros where no output depends on it)."""
    pairs = [(o, g) for o, g in zip(outs, gs) if o.requires_grad]
    if pairs:
        engine = grad([o for o, _ in pairs], list(checked),
                      grad_outputs=[g.astype(o.dtype) for o, g in pairs], allow_unused=True)
    else:
        engine = (None,) * len(checked)
    return [np.zeros(t.shape) if d is None else d.data.astype(np.float64)
            for t, d in zip(checked, engine)]


def projection(fn: Callable[..., Any], inputs: Sequence[Tensor],
               gs: Sequence[np.ndarray]) -> float:
    """:math:`L(x) = \\sum_k \\langle g_k, f_k(x) \\rangle` in float64 at the current inputs
    (not under ``no_grad``: ``fn`` may itself call ``ta.grad``)."""
    outs = outputs(fn, inputs)
    return float(sum(np.sum(g * o.data.astype(np.float64)) for g, o in zip(gs, outs)))


def finite_differences(fn: Callable[..., Any], inputs: Sequence[Tensor],
                       gs: Sequence[np.ndarray], t: Tensor, eps: float) -> np.ndarray:
    """Central differences of :func:`projection` with respect to every element of ``t``.

    Each element is perturbed in place and restored; the step is the one actually
    represented (``(x + eps) - x``), not ``eps``, so rounding of the perturbed value does
    not bias the quotient.
    """
    numeric = np.zeros(t.shape)
    flat = t.data.reshape(-1)  # a view: perturb in place, restore after
    for j in range(flat.size):
        orig = flat[j]
        flat[j] = orig + eps
        step_up = flat[j] - orig
        f_plus = projection(fn, inputs, gs)
        flat[j] = orig - eps
        step_down = orig - flat[j]
        f_minus = projection(fn, inputs, gs)
        flat[j] = orig
        numeric.reshape(-1)[j] = (f_plus - f_minus) / (step_up + step_down)
    return numeric


def sympy_gradients(fn: Callable[..., Any], inputs: Sequence[Tensor],
                    gs: Sequence[np.ndarray], max_symbols: int | None = MAX_SYMBOLS,
                    sample: int | None = None) -> list[np.ndarray]:
    """SymPy's exact gradient of :func:`projection`, rounded to float64, per checked input
    (:func:`tinygrad_attn.verify.symbolic.exact_gradients`; SymPy loads here)."""
    from .symbolic import exact_gradients

    return exact_gradients(fn, inputs, gs, max_symbols=max_symbols, sample=sample)


# ----------------------------------------------------------------------------- the rows

def input_name(t: Tensor, inputs: Sequence[Tensor]) -> str:
    """``t.name``, or ``input i`` after its position in ``inputs``."""
    return t.name or f"input {next(i for i, x in enumerate(inputs) if x is t)}"


def compare(name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float,
            rtol: float) -> InputReport:
    """The report row of one input: engine vs finite differences, and the worst element
    (the one furthest beyond ``atol + rtol * |numerical|``)."""
    err = np.abs(analytic - numeric)
    bad = err - (atol + rtol * np.abs(numeric))
    rel = err / np.maximum(np.abs(numeric), np.finfo(np.float64).tiny)
    worst = np.unravel_index(int(np.argmax(bad)), numeric.shape) if numeric.size else ()
    return InputReport(
        name=name, shape=numeric.shape, max_abs_err=float(err.max(initial=0.0)),
        max_rel_err=float(rel.max(initial=0.0)), worst_index=tuple(map(int, worst)),
        numerical=float(numeric[worst]) if numeric.size else 0.0,
        analytical=float(analytic[worst]) if numeric.size else 0.0,
        ok=bool(np.all(bad <= 0)) and bool(np.all(np.isfinite(analytic))))


def compare_symbolic(row: InputReport, analytic: np.ndarray, numeric: np.ndarray,
                     exact: np.ndarray, sym_atol: float, sym_rtol: float) -> str | None:
    """Fill ``row``'s SymPy columns (engine vs the exact gradient); return a note when
    finite differences passed but SymPy did not -- a VJP error hidden in their noise."""
    ex = np.asarray(exact, dtype=np.float64)
    sym_err = np.abs(analytic - ex)
    sym_bad = sym_err - (sym_atol + sym_rtol * np.abs(ex))
    sworst = np.unravel_index(int(np.argmax(sym_bad)), ex.shape) if ex.size else ()
    row.symbolic = float(ex[row.worst_index]) if ex.size else 0.0
    row.sym_max_abs_err = float(sym_err.max(initial=0.0))
    row.sym_worst_index = tuple(map(int, sworst))
    row.sym_ok = bool(np.all(sym_bad <= 0))
    if not row.ok or row.sym_ok:
        return None
    return (f"{row.name}: finite differences agree within atol/rtol, but the engine "
            f"differs from SymPy's exact gradient by {row.sym_max_abs_err:.2e} at "
            f"{list(row.sym_worst_index)} (finite differences themselves are off by "
            f"{float(np.max(np.abs(numeric - ex), initial=0.0)):.2e}): a VJP error "
            f"hidden in the finite-difference noise")
