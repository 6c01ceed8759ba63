"""Gradient checking: the engine's backward against central finite differences
(and, with ``symbolic=True``, against SymPy's exact derivative).

The scalar that is differentiated is :math:`L(x) = \\sum_k \\langle r_k, f_k(x) \\rangle`
for fixed random cotangents :math:`r_k`, one per output of ``fn``; its gradient is the
engine's VJP with those cotangents, and its finite differences need two evaluations of
``fn`` per input element.  A wrong VJP changes :math:`\\nabla L` for almost every
:math:`r`, so one random projection checks the whole Jacobian with probability 1.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..engine import Tensor, grad


class GradcheckError(AssertionError):
    """Raised by ``gradcheck(..., raise_exception=True)``; its message is the report."""

    def __init__(self, report: "GradcheckReport") -> None:
        super().__init__(str(report))
        self.report = report


@dataclass
class InputReport:
    """The comparison for one input: errors and the worst element."""

    name: str
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    numerical: float
    analytical: float
    ok: bool
    symbolic: float | None = None          # SymPy's exact gradient at the worst element
    sym_max_abs_err: float | None = None   # max |engine - SymPy| over all elements
    sym_worst_index: tuple[int, ...] | None = None
    sym_ok: bool | None = None

    @property
    def passed(self) -> bool:
        return self.ok and self.sym_ok is not False


@dataclass
class GradcheckReport:
    """What :func:`gradcheck` found: one :class:`InputReport` per checked input."""

    inputs: list[InputReport]
    eps: float
    atol: float
    rtol: float
    symbolic: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.inputs)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = ["input", "shape", "max abs err", "max rel err", "worst", "numerical",
                "engine"]
        if self.symbolic:
            head += ["sympy", "|engine-sympy|"]
        head.append("result")
        rows = []
        for r in self.inputs:
            row = [r.name, "x".join(map(str, r.shape)) or "scalar", f"{r.max_abs_err:.2e}",
                   f"{r.max_rel_err:.2e}", str(list(r.worst_index)), f"{r.numerical:.10g}",
                   f"{r.analytical:.10g}"]
            if self.symbolic:
                row += ["-" if r.symbolic is None else f"{r.symbolic:.10g}",
                        "-" if r.sym_max_abs_err is None else
                        f"{r.sym_max_abs_err:.2e} at {list(r.sym_worst_index or ())}"]
            row.append("ok" if r.passed else "FAIL")
            rows.append(row)
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [f"gradcheck: {'PASSED' if self.ok else 'FAILED'} (central differences, "
                 f"eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g}"
                 f"{'; SymPy exact gradient' if self.symbolic else ''})",
                 fmt.format(*head).rstrip(), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row).rstrip() for row in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _outputs(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor or a tuple of Tensors; "
                            f"output {i} is a {type(o).__name__}")
    return tuple(outs)


def _scalar(fn: Callable[..., Any], inputs: Sequence[Tensor],
            cotangents: Sequence[np.ndarray]) -> float:
    outs = _outputs(fn, inputs)  # not under no_grad: fn may itself call ta.grad
    return float(sum(np.sum(r * o.data.astype(np.float64)) for r, o in zip(cotangents, outs)))


def gradcheck(fn: Callable[..., Any], *inputs: Tensor, eps: float = 1e-6,
              atol: float = 1e-8, rtol: float = 1e-6, symbolic: bool = False,
              sym_atol: float = 1e-12, sym_rtol: float = 1e-10, seed: int = 0,
              raise_exception: bool = False) -> GradcheckReport:
    """Check the engine's gradient of ``fn`` at ``inputs``, for every input that requires
    grad and every output.

    Passes an element when ``|engine - numerical| <= atol + rtol * |numerical|``.  With
    ``symbolic=True`` the engine is also compared with SymPy's exact gradient, far more
    tightly (``sym_atol``, ``sym_rtol``): both are float64 values of the same quantity,
    so an error too small for finite differences to see is still caught.
    """
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, not a Tensor")
        if t.dtype == object:
            raise TypeError(f"gradcheck: input {i} is symbolic; pass numeric Tensors (the "
                            f"symbolic comparison is made with symbolic=True)")
    checked = [t for t in inputs if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    notes = []
    if any(t.dtype != np.float64 for t in checked):
        msg = ("gradcheck: inputs are not float64; central finite differences are "
               "unreliable at float32 precision (use float64 Tensors to check gradients)")
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        notes.append(msg)

    outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed)
    cotangents = [rng.standard_normal(o.shape) for o in outs]
    differentiable = [o for o in outs if o.requires_grad]
    if differentiable:
        pairs = [(o, r) for o, r in zip(outs, cotangents) if o.requires_grad]
        engine = grad([o for o, _ in pairs], checked,
                      grad_outputs=[r.astype(o.dtype) for o, r in pairs], allow_unused=True)
    else:
        engine = (None,) * len(checked)
    engine_arrays = [np.zeros(t.shape) if g is None else g.data.astype(np.float64)
                     for t, g in zip(checked, engine)]

    exact = None
    if symbolic:
        from .symbolic import exact_gradients

        exact = exact_gradients(fn, inputs, cotangents)
        notes.append("sympy: sympy.diff of the symbolic run, evaluated at the exact float64 "
                     "inputs with 50 significant digits, then rounded to float64; engine "
                     f"vs sympy passes when |engine - sympy| <= {sym_atol:g} + "
                     f"{sym_rtol:g} * |sympy|")

    rows = []
    for k, (t, analytic) in enumerate(zip(checked, engine_arrays)):
        numeric = np.zeros(t.shape)
        flat = t.data.reshape(-1)  # a view: perturb in place, restore after
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            step_up = flat[j] - orig
            f_plus = _scalar(fn, inputs, cotangents)
            flat[j] = orig - eps
            step_down = orig - flat[j]
            f_minus = _scalar(fn, inputs, cotangents)
            flat[j] = orig
            numeric.reshape(-1)[j] = (f_plus - f_minus) / (step_up + step_down)
        err = np.abs(analytic - numeric)
        bad = err - (atol + rtol * np.abs(numeric))
        rel = err / np.maximum(np.abs(numeric), np.finfo(np.float64).tiny)
        worst = np.unravel_index(int(np.argmax(bad)), t.shape) if t.size else ()
        row = InputReport(
            name=t.name or f"input {next(i for i, x in enumerate(inputs) if x is t)}",
            shape=t.shape, max_abs_err=float(err.max(initial=0.0)),
            max_rel_err=float(rel.max(initial=0.0)), worst_index=tuple(map(int, worst)),
            numerical=float(numeric[worst]) if t.size else 0.0,
            analytical=float(analytic[worst]) if t.size else 0.0,
            ok=bool(np.all(bad <= 0)) and bool(np.all(np.isfinite(analytic))))
        if exact is not None:
            ex = np.asarray(exact[k], dtype=np.float64)
            sym_err = np.abs(analytic - ex)
            sym_bad = sym_err - (sym_atol + sym_rtol * np.abs(ex))
            sworst = np.unravel_index(int(np.argmax(sym_bad)), t.shape) if t.size else ()
            row.symbolic = float(ex[worst]) if t.size else 0.0
            row.sym_max_abs_err = float(sym_err.max(initial=0.0))
            row.sym_worst_index = tuple(map(int, sworst))
            row.sym_ok = bool(np.all(sym_bad <= 0))
            if row.ok and not row.sym_ok:
                notes.append(
                    f"{row.name}: finite differences agree within atol/rtol, but the engine "
                    f"differs from SymPy's exact gradient by {row.sym_max_abs_err:.2e} at "
                    f"{list(row.sym_worst_index)} (finite differences themselves are off by "
                    f"{float(np.max(np.abs(numeric - ex), initial=0.0)):.2e}): a VJP error "
                    f"hidden in the finite-difference noise")
        rows.append(row)
    report = GradcheckReport(rows, eps, atol, rtol, symbolic=symbolic, notes=notes)
    if raise_exception and not report.ok:
        raise GradcheckError(report)
    return report
