"""Gradient checking: the engine's backward against central finite differences
(and, with ``symbolic=True``, against SymPy's exact derivative).

The scalar that is differentiated is :math:`L(x) = \\sum_k \\langle g_k, f_k(x) \\rangle`
for fixed random upstream gradients :math:`g_k`, one per output of ``fn``; its gradient
is the engine's VJP with those upstream gradients, and its finite differences need two
evaluations of ``fn`` per input element.  A wrong VJP changes :math:`\\nabla L` for almost
every :math:`g`, so one random projection checks the whole Jacobian with probability 1.

:func:`gradcheck` runs its steps one function each: :func:`checked_inputs` (argument
validation), :func:`tolerances` (the defaults of the dtype the check runs in),
:func:`engine_gradients` (the VJP under test), :func:`finite_differences` and, with
``symbolic=True``, :func:`sympy_gradients`; :class:`~.judge.Judge` turns the arrays into
verdicts and the rows of the report (:mod:`tinygrad_attn.verify.report`), and
``report_dir=`` adds a heat map per input (:mod:`tinygrad_attn.verify.heatmap`).
``mode="fast"`` replaces the per-element loop (:func:`full_rows`) by random directions
and a bisection (:mod:`tinygrad_attn.verify.directional`).  SymPy
and matplotlib are imported only where they are used, so ``import tinygrad_attn`` loads
neither.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..engine import Tensor, grad
from .directional import DIRECTIONS, central_difference, choose_mode, fast_rows, step_size
from .estimate import MAX_SYMBOLS
from .judge import Judge, Tolerances
from .report import Comparison, GradcheckError, GradcheckReport, InputReport

__all__ = ["DEFAULTS", "Comparison", "GradcheckError", "GradcheckReport", "InputReport",
           "Tolerances", "checked_inputs", "engine_gradients", "finite_differences",
           "full_rows", "gradcheck", "outputs", "precision", "projection", "sympy_gradients",
           "sympy_notes", "tolerances"]

#: Default step and tolerances by the dtype the check runs in.  float64: finite
#: differences with a 1e-6 step carry errors near 1e-10, and the engine's float64
#: gradient agrees with the exact one to ~1e-15 relative.  float32: the float32 rounding
#: of each evaluation (~6e-8 relative) divided by the step makes the central difference
#: most accurate near a 1e-2 step, with errors of 1e-4..1e-3 relative, and the engine's
#: float32 gradient is within ~1e-5..1e-4 of the exact one; these defaults pass a correct
#: attention mechanism and reject one whose backward is off by more than about 1 %.
DEFAULTS: dict[str, Tolerances] = {
    "float64": Tolerances(eps=1e-6, atol=1e-8, rtol=1e-6, sym_atol=1e-12, sym_rtol=1e-10),
    "float32": Tolerances(eps=1e-2, atol=1e-4, rtol=1e-2, sym_atol=1e-5, sym_rtol=1e-3),
}


def gradcheck(fn: Callable[..., Any], *inputs: Tensor, eps: float | None = None,
              atol: float | None = None, rtol: float | None = None, symbolic: bool = False,
              sym_atol: float | None = None, sym_rtol: float | None = None, seed: int = 0,
              raise_exception: bool = False,
              report_dir: str | Path | None = None,
              max_symbols: int | None = MAX_SYMBOLS,
              sample: int | None = None, mode: str = "auto",
              directions: int = DIRECTIONS, progress: bool | None = None) -> GradcheckReport:
    """Check the engine's gradient of ``fn`` at ``inputs``, for every input that requires
    grad and every output.

    ``mode="full"``: an element passes when ``|engine - numerical| <= atol + rtol *
    |numerical|``.  With ``symbolic=True`` the engine is also compared with SymPy's exact
    gradient, far more tightly (``sym_atol``, ``sym_rtol``).  A difference that the
    reference cannot resolve at this point (finite differences at their rounding floor,
    a step across a kink, an ill-conditioned gradient) is reported as undecided, with
    the estimate that says so, instead of failed.  ``mode="fast"``: ``directions``
    random directions per input, at a cost independent of the size, and a bisection to
    the wrong element when one fails (:mod:`~tinygrad_attn.verify.directional`; ``eps``
    is then its step); ``"auto"``: fast above ``directional.AUTO_ELEMENTS`` elements.

    Options left as None take the defaults of the dtype the check runs in, the least
    precise among the checked inputs and the outputs (:data:`DEFAULTS`: float32 is judged
    as float32).  ``report_dir`` writes an error heat map per input there (PNG).
    ``max_symbols``, ``sample``, ``progress``: the symbolic run's size limit, ``K`` random
    elements of the engine's backward proven exactly (in the notes), and its estimate
    line and progress bar on stderr (``symbolic.exact_gradients``).
    """
    checked = checked_inputs(inputs)
    mode = choose_mode(mode, checked, symbolic, report_dir, directions)
    outs = outputs(fn, inputs)
    dtype = precision(checked, outs)
    tol = tolerances(dtype, eps=eps if mode == "full" else None, atol=atol, rtol=rtol,
                     sym_atol=sym_atol, sym_rtol=sym_rtol)
    notes = precision_notes(dtype, tol)
    rng = np.random.default_rng(seed)
    # one upstream gradient per output, rounded to its dtype so that the engine, the finite
    # differences and SymPy all use the very same numbers
    gs = [rng.standard_normal(o.shape).astype(o.dtype).astype(np.float64) for o in outs]
    engine = engine_gradients(outs, checked, gs)
    judge = Judge(lambda: outputs(fn, inputs), checked, outs, gs, tol, engine,
                  lambda: engine_gradients(outputs(fn, inputs), checked, gs), seed)
    names = [input_name(t, inputs) for t in checked]
    step = tol.eps if mode == "full" else float(eps or step_size(dtype))
    if mode == "fast":
        rows, more = fast_rows(judge, names, directions, step, seed)
    else:
        rows, more = full_rows(judge, fn, inputs, gs, names, symbolic, max_symbols, sample,
                               progress)
    report = GradcheckReport(rows, step, tol.atol, tol.rtol, symbolic=symbolic,
                             notes=notes + more, sym_atol=tol.sym_atol, sym_rtol=tol.sym_rtol,
                             mode=mode, directions=directions if mode == "fast" else 0)
    if report_dir is not None:
        from .heatmap import write_heatmaps

        report.files = write_heatmaps(report, Path(report_dir))
    if raise_exception and not report.ok:
        raise GradcheckError(report)
    return report


def full_rows(judge: Judge, fn: Callable[..., Any], inputs: Sequence[Tensor],
              gs: Sequence[np.ndarray], names: Sequence[str], symbolic: bool,
              max_symbols: int | None, sample: int | None,
              progress: bool | None = None) -> tuple[list[InputReport], list[str]]:
    """The per-element check: every element of every checked input against its central
    difference and, with ``symbolic``, SymPy's exact gradient; the rows and notes."""
    notes, exact = [], None
    if symbolic:
        exact = sympy_gradients(fn, inputs, gs, max_symbols=max_symbols, sample=sample,
                                progress=progress)
        notes += sympy_notes(judge.tol, exact)
    rows = []
    for k, t in enumerate(judge.checked):
        numeric = finite_differences(fn, inputs, gs, t, judge.tol.eps)
        row, row_notes = judge.row(k, names[k], numeric, None if exact is None else exact[k])
        rows.append(row)
        notes += row_notes
    return rows, notes


def precision(checked: Sequence[Tensor], outs: Sequence[Tensor]) -> np.dtype:
    """The least precise float dtype among the checked inputs and the outputs."""
    dtypes = [t.dtype for t in (*checked, *outs) if t.dtype.kind == "f"]
    return max(dtypes, key=lambda d: np.finfo(d).eps, default=np.dtype(np.float64))


def tolerances(dtype: Any, **given: float | None) -> Tolerances:
    """:data:`DEFAULTS` for ``dtype`` (float64's for more precise dtypes, float32's for
    less precise ones), with every option in ``given`` that is not None put in."""
    eps = np.finfo(dtype).eps
    base = DEFAULTS["float64" if eps <= np.finfo(np.float64).eps else "float32"]
    values = {**base.__dict__, **{k: float(v) for k, v in given.items() if v is not None}}
    return Tolerances(**values)


def precision_notes(dtype: np.dtype, tol: Tolerances) -> list[str]:
    """A warning (and its note) when the check does not run in float64."""
    if np.finfo(dtype).eps <= np.finfo(np.float64).eps:
        return []
    msg = (f"gradcheck: the check runs in {np.dtype(dtype).name} (the least precise of the "
           f"checked inputs and outputs); central finite differences are unreliable at "
           f"float32 precision and below, so {np.dtype(dtype).name} is judged with float32 "
           f"tolerances (eps={tol.eps:g}, atol={tol.atol:g}, rtol={tol.rtol:g}; vs SymPy "
           f"atol={tol.sym_atol:g}, rtol={tol.sym_rtol:g}); use float64 Tensors for a "
           f"tight check")
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return [msg]


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
        # the graph is kept: the report's rounding estimate walks it again
        engine = grad([o for o, _ in pairs], list(checked), retain_graph=True,
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
    """Central differences of :func:`projection` with respect to every element of ``t``
    (:func:`~.directional.central_difference`: each element is perturbed in place and
    restored, and the step is the one actually represented)."""
    numeric = np.zeros(t.shape)
    for index in np.ndindex(t.shape):
        numeric[index] = central_difference(lambda: projection(fn, inputs, gs), t, index, eps)
    return numeric


def sympy_notes(tol: Tolerances, exact: Sequence[np.ndarray]) -> list[str]:
    """What the SymPy comparison is (a number at this point, not a proof), and the verdict
    of the sampled exact proof when one was asked for."""
    notes = [f"sympy: the exact derivative of the symbolic run, evaluated at the exact inputs "
             f"with 50 significant digits, then rounded to float64 (a numerical comparison at "
             f"this point, not a proof); engine vs sympy passes when |engine - sympy| <= "
             f"{tol.sym_atol:g} + {tol.sym_rtol:g} * |sympy|"]
    if getattr(exact, "proof", None) is not None:
        notes.append(f"sample: {exact.proof}")
    return notes


def sympy_gradients(fn: Callable[..., Any], inputs: Sequence[Tensor],
                    gs: Sequence[np.ndarray], max_symbols: int | None = MAX_SYMBOLS,
                    sample: int | None = None, progress: bool | None = None
                    ) -> list[np.ndarray]:
    """SymPy's exact gradient of :func:`projection`, rounded to float64, per checked input
    (:func:`tinygrad_attn.verify.symbolic.exact_gradients`; SymPy loads here)."""
    from .symbolic import exact_gradients

    return exact_gradients(fn, inputs, gs, max_symbols=max_symbols, sample=sample,
                           progress=progress)


# ----------------------------------------------------------------------------- names

def input_name(t: Tensor, inputs: Sequence[Tensor]) -> str:
    """``t.name``, or ``input i`` after its position in ``inputs``."""
    return t.name or f"input {next(i for i, x in enumerate(inputs) if x is t)}"
