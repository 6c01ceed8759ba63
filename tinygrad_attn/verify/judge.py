r"""From the arrays of one input to its report row: verdicts, worst elements, notes.

:class:`Judge` holds what every input shares (the function at the current inputs, the
upstream gradients, the tolerances, the engine's gradients) and computes the floors of
:mod:`.floors` and the probe of :mod:`.locate` once, only when they are needed.
:meth:`Judge.row` compares one input with finite differences and with SymPy:

1. an element is ``ok`` within ``atol + rtol * |reference|``;
2. finite differences beyond it are ``undecided`` within their floor -- the rounding of
   :math:`L` divided by the step, plus the truncation measured with a second step -- or
   when the step crosses a kink; ``FAIL`` otherwise;
3. SymPy beyond ``sym_atol + sym_rtol * |sympy|`` is ``undecided`` within the engine's
   float floor (a multiple of how far its gradient moves when the inputs move by a few
   ulps), ``FAIL`` otherwise;
4. each comparison shows its own worst element: the furthest beyond its tolerance among
   the elements of its worst verdict, named in the mechanism's terms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..engine import Tensor
from . import floors
from .floors import FAIL, OK, UNDECIDED
from .locate import Probe, kink_signature, kinks_crossed, locate, probe
from .report import Comparison, InputReport

__all__ = ["Judge", "Tolerances", "relative_error"]

STATUS = {OK: "ok", UNDECIDED: "undecided", FAIL: "FAIL"}


@dataclass(frozen=True)
class Tolerances:
    """The step and tolerances of one check (defaults by dtype: :data:`.gradcheck.DEFAULTS`)."""

    eps: float
    atol: float
    rtol: float
    sym_atol: float
    sym_rtol: float


def relative_error(err: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """:math:`|e - r| / (|r| + \\mathrm{atol}/\\mathrm{rtol})`: at most ``rtol`` exactly when
    the element passes, and 0 (not a division by zero) for two exact zeros."""
    floor = atol / rtol if rtol > 0 else max(atol, np.finfo(np.float64).tiny)
    return np.asarray(err) / (np.abs(ref) + floor)


class Judge:
    """Verdicts for the inputs of one :func:`~.gradcheck.gradcheck` call."""

    def __init__(self, run: Callable[[], Sequence[Tensor]], checked: Sequence[Tensor],
                 outs: Sequence[Tensor], gs: Sequence[np.ndarray], tol: Tolerances,
                 engine: Sequence[np.ndarray],
                 gradients: Callable[[], list[np.ndarray]], seed: int = 0) -> None:
        self.run, self.checked, self.outs, self.gs = run, list(checked), list(outs), list(gs)
        self.tol, self.engine, self.gradients, self.seed = tol, list(engine), gradients, seed
        self._rounding: floors.Rounding | None = None
        self._spread: list[np.ndarray] | None = None
        self._probe: Probe | None = None

    # -- shared, computed once on demand
    def rounding(self) -> floors.Rounding:
        if self._rounding is None:
            self._rounding = floors.rounding_error(self.outs, self.gs)
        return self._rounding

    def engine_floor(self, k: int) -> tuple[float, int]:
        """The float floor of input ``k``'s gradient (:data:`.floors.SPREAD_FACTOR` times
        its largest move under a few ulps) and the element that moved most."""
        if self._spread is None:
            self._spread = floors.engine_spread(self.gradients, self.checked, self.engine,
                                                seed=self.seed)
        spread = self._spread[k]
        if not spread.size:
            return 0.0, 0
        j = int(np.argmax(spread))
        return floors.SPREAD_FACTOR * float(spread.reshape(-1)[j]), j

    def probe(self) -> Probe:
        if self._probe is None:
            self._probe = probe(self.outs)
        return self._probe

    def project(self) -> tuple[float, list[tuple[str, bytes]]]:
        """:math:`L` at the current inputs, and the kink signature of that evaluation."""
        outs = self.run()
        value = float(sum(np.sum(g * o.data.astype(np.float64)) for g, o in zip(self.gs, outs)))
        return value, kink_signature(outs)

    # -- one input
    def row(self, k: int, name: str, numeric: np.ndarray,
            exact: np.ndarray | None) -> tuple[InputReport, list[str]]:
        """The report row of checked input ``k`` and the notes it needs."""
        t, analytic = self.checked[k], self.engine[k]
        fd_codes, fd_floor, kinked = self.fd_verdicts(t, analytic, numeric)
        fd = self.comparison("FD", t, analytic, numeric, exact, numeric, fd_codes,
                             self.tol.atol, self.tol.rtol)
        sym, sym_codes = None, None
        if exact is not None:
            exact = np.asarray(exact, dtype=np.float64)
            err = np.abs(analytic - exact)
            sym_codes = np.where(err <= self.tol.sym_atol + self.tol.sym_rtol * np.abs(exact),
                                 OK, FAIL).astype(np.int8)
            if np.any(sym_codes != OK):
                sym_codes = floors.classify(err, self.tol.sym_atol + self.tol.sym_rtol
                                            * np.abs(exact), self.engine_floor(k)[0])
            sym = self.comparison("sympy", t, analytic, numeric, exact, exact, sym_codes,
                                  self.tol.sym_atol, self.tol.sym_rtol)
        row = InputReport(name, tuple(t.shape), fd, sym)
        return row, self.notes(row, k, numeric, exact, (fd_codes, fd_floor, kinked), sym_codes)

    def fd_verdicts(self, t: Tensor, analytic: np.ndarray,
                    numeric: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per element OK / UNDECIDED / FAIL against finite differences, their floor (0
        where the element passed: none was needed) and the kinks the step crosses (the
        ops' names, "" for none)."""
        err = np.abs(analytic - numeric)
        tol = self.tol.atol + self.tol.rtol * np.abs(numeric)
        floor = np.zeros(numeric.shape)
        kinked = np.zeros(numeric.shape, dtype=object)
        kinked[...] = ""
        beyond = ~(err <= tol)
        if not beyond.any():
            return np.full(numeric.shape, OK, dtype=np.int8), floor, kinked
        floor[beyond] = self.rounding().error / self.tol.eps
        for flat in np.flatnonzero(beyond & ~(err <= floor)):
            index = np.unravel_index(flat, numeric.shape)
            d_2h, kinks = self.second_step(t, index)
            floor[index] += float(floors.truncation_error(numeric[index], d_2h))
            kinked[index] = ", ".join(kinks)
        codes = floors.classify(err, tol, floor)
        codes[(codes == FAIL) & (kinked != "")] = UNDECIDED
        return codes, floor, kinked

    def second_step(self, t: Tensor, index: tuple[int, ...]) -> tuple[float, list[str]]:
        """The central difference with step 2 eps at ``t[index]``, and the kinks that step
        crosses (the signatures at x +- 2 eps against the one at x)."""
        orig, step = t.data[index].copy(), 2 * self.tol.eps
        values, crossed = [], set()
        try:
            for sign in (1, -1):
                t.data[index] = orig + sign * step
                actual = abs(float(t.data[index]) - float(orig))
                value, sig = self.project()
                values.append((value, actual))
                crossed.update(kinks_crossed(self.probe().signature, sig))
        finally:
            t.data[index] = orig
        (up, h_up), (down, h_down) = values
        return (up - down) / (h_up + h_down), sorted(crossed)

    def comparison(self, reference: str, t: Tensor, analytic: np.ndarray,
                   numeric: np.ndarray, exact: np.ndarray | None, ref: np.ndarray,
                   codes: np.ndarray, atol: float, rtol: float) -> Comparison:
        """One line of the table: the errors against ``ref`` and the worst element -- the
        largest relative error among the elements with the worst verdict."""
        err = np.abs(analytic - ref)
        rel = relative_error(err, ref, atol, rtol)
        if not ref.size:
            return Comparison(reference, 0.0, 0.0, (), 0.0, 0.0, None, "ok", errors=err,
                              relative=rel, rtol=rtol)
        rank = np.where(codes == codes.max(), np.nan_to_num(rel, nan=np.inf), -1.0)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(rank)), ref.shape))
        where = str(locate(self.run, t, worst, self.tol.eps, self.probe()))
        return Comparison(
            reference, float(np.nanmax(err)), float(np.nanmax(rel)), worst,
            engine=float(analytic[worst]), numerical=float(numeric[worst]),
            symbolic=None if exact is None else float(exact[worst]),
            status=STATUS[int(codes.max())], where=where, errors=err, relative=rel, rtol=rtol)

    # -- notes
    def notes(self, row: InputReport, k: int, numeric: np.ndarray, exact: np.ndarray | None,
              fd: tuple[np.ndarray, np.ndarray, np.ndarray],
              sym_codes: np.ndarray | None) -> list[str]:
        """The explanations a verdict other than ``ok`` needs (``fd``: the verdicts, floor
        and kinks of :meth:`fd_verdicts`)."""
        fd_codes, fd_floor, kinks = fd
        out = []
        at_kink = (fd_codes == UNDECIDED) & (kinks != "")
        if np.any((fd_codes == UNDECIDED) & ~at_kink):
            out.append(self.fd_floor_note(row, k, (fd_codes == UNDECIDED) & ~at_kink,
                                          fd_floor, numeric))
        if np.any(at_kink):
            n = int(np.sum(at_kink))
            first = np.unravel_index(np.flatnonzero(at_kink)[0], at_kink.shape)
            out.append(f"{row.name}: {n} element{'s' if n > 1 else ''} (first "
                       f"{[int(i) for i in first]}) {'lie' if n > 1 else 'lies'} within "
                       f"{2 * self.tol.eps:g} of a kink "
                       f"({kinks[first]}): the central difference straddles it and measures "
                       f"neither side, so undecided" + ("" if row.sym is not None else
                                                        "; rerun with symbolic=True"))
        if sym_codes is not None and np.any(sym_codes == UNDECIDED):
            out.append(self.sym_floor_note(row, k, sym_codes, exact))
        if exact is None:
            return out
        fd_vs_exact = np.abs(numeric - exact)
        if row.fd.ok and row.sym is not None and row.sym.status == "FAIL":
            out.append(self.hidden_error_note(row, float(np.max(fd_vs_exact))))
        if row.fd.status == "FAIL" and row.sym is not None and row.sym.ok:
            i = row.fd.worst_index
            out.append(f"{row.name}: the engine agrees with SymPy, but finite differences "
                       f"differ from both by {fd_vs_exact[i]:.2e} at {list(i)}, beyond their "
                       f"floor ({fd_floor[i]:.1e}): the numeric forward does not compute "
                       f"what the symbolic run differentiates there (a kink, a clamp, a "
                       f"branch on the data), or the step is too large for the curvature")
        return out

    def fd_floor_note(self, row: InputReport, k: int, undecided: np.ndarray,
                      floor: np.ndarray, numeric: np.ndarray) -> str:
        """Why finite differences are undecided at the elements ``undecided``: the rounding
        of L, its condition, the step; what decides instead."""
        r = self.rounding()
        n = int(np.sum(undecided))
        rel = np.where(undecided, relative_error(np.abs(self.engine[k] - numeric), numeric,
                                                 self.tol.atol, self.tol.rtol), -1.0)
        j = tuple(int(i) for i in np.unravel_index(int(np.argmax(rel)), rel.shape))
        text = (f"{row.name}: finite differences cannot resolve {n} element"
                f"{'s' if n > 1 else ''} (undecided; the worst, "
                f"{abs(self.engine[k][j] - numeric[j]):.2e} at {list(j)}, is within their "
                f"floor {floor[j]:.1e}): L = {r.value:.3g} is computed with a rounding error "
                f"of about {r.error:.1e} in {r.dtype} (u * sum |v_bar| |v| over the graph's "
                f"{r.nodes} computed nodes, {r.condition:.1e} times u |L|: large terms "
                f"cancel), and a central difference with step {self.tol.eps:g} divides the "
                f"difference of two such values by {2 * self.tol.eps:g}")
        if row.sym is None:
            return text + "; rerun with symbolic=True to decide"
        return text + ("; SymPy decides: the engine agrees with it" if row.sym.ok else "")

    def hidden_error_note(self, row: InputReport, fd_err: float) -> str:
        """Why finite differences passed a VJP that SymPy rejects: their own error is as
        large as the engine's (noise), or they resolve it and ``rtol`` lets it pass."""
        eng = row.sym.max_abs_err
        head = (f"{row.name}: finite differences agree within atol/rtol, but the engine "
                f"differs from SymPy's exact gradient by {eng:.2e} at "
                f"{list(row.sym.worst_index)} (finite differences themselves are off by "
                f"{fd_err:.2e})")
        if fd_err >= eng:
            return head + ": a VJP error hidden in the finite-difference noise"
        return (head + f": the finite differences resolve it ({eng / fd_err:.0f} times their "
                f"own error), but it is within rtol={self.tol.rtol:g}: a VJP error the "
                f"tolerance lets pass")

    def sym_floor_note(self, row: InputReport, k: int, codes: np.ndarray,
                       exact: np.ndarray) -> str:
        """Why the engine-vs-SymPy comparison is undecided: the gradient's conditioning."""
        n = int(np.sum(codes == UNDECIDED))
        j = list(row.sym.worst_index)
        floor, moved = self.engine_floor(k)
        moved_at = [int(i) for i in np.unravel_index(moved, exact.shape)]
        u = floors.unit_roundoff(self.checked[k].dtype)
        cond = floor / floors.SPREAD_FACTOR / max(4 * u * float(np.max(np.abs(exact))),
                                                  np.finfo(np.float64).tiny)
        worst = abs(row.sym.engine - (row.sym.symbolic or 0.0))
        return (f"{row.name}: the engine differs from SymPy beyond sym_atol/sym_rtol at {n} "
                f"element{'s' if n > 1 else ''} (worst {worst:.2e} at {j}), "
                f"but within the float floor of this gradient, {floor:.1e}: moving the "
                f"inputs by 4 units in the last place moves it by up to "
                f"{floor / floors.SPREAD_FACTOR:.1e} (at {moved_at}; condition about "
                f"{cond:.1e}); float rounding, not evidence of a wrong VJP, so undecided; "
                f"check at a better-conditioned point (less saturated weights, smaller "
                f"scores)")
