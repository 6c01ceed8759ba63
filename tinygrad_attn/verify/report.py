r"""What :func:`tinygrad_attn.gradcheck` returns: one row per checked input, as a table.

``str(report)`` (and ``repr``) is the table a test failure, the command line or the
README prints: a verdict line, one line per input and reference -- its largest errors,
its worst element, where that element sits in the mechanism, the values there
(numerical, engine and, with ``symbolic=True``, SymPy's) -- then the notes.  In a
notebook the same table renders as HTML (``_repr_html_``).

**Relative error.**  ``max rel err`` is
:math:`\max |e - r| / (|r| + \mathrm{atol}/\mathrm{rtol})` for the engine's value
:math:`e` and the reference :math:`r`: relative where :math:`|r|` is large, absolute
(scaled by :math:`\mathrm{rtol}/\mathrm{atol}`) where it is small, never a division by
zero.  An element passes exactly when this is at most ``rtol`` (it is the same test as
:math:`|e - r| \le \mathrm{atol} + \mathrm{rtol}\,|r|`), and two exact zeros give 0.

**Verdicts.**  Each comparison gives ``ok``, ``FAIL``, or ``undecided``: beyond the
tolerance but within what the reference can resolve at this point
(:mod:`tinygrad_attn.verify.floors`).  An input passes when SymPy (if asked) agrees and
finite differences agree or are undecided; it fails when either comparison fails.  The
report is ``PASSED``, ``FAILED``, or ``UNDECIDED`` (nothing failed, something could not
be decided); ``report.ok`` is true only for ``PASSED``.

**Modes.**  ``mode`` is ``"full"`` (every element against its own central difference) or
``"fast"`` (:mod:`tinygrad_attn.verify.directional`: random directions; a passing input's
line is its worst direction, labelled ``direction i/K`` in the worst column, with the
engine's and the differences' directional derivatives; a failing input's line is the
element the bisection found, with its own central difference).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Comparison", "GradcheckError", "GradcheckReport", "InputReport"]


@dataclass(repr=False)
class Comparison:
    """The engine against one reference (``"FD"`` or ``"sympy"``) for one input."""

    reference: str
    max_abs_err: float
    max_rel_err: float                     # floored: see the module docstring
    worst_index: tuple[int, ...]
    engine: float                          # the values at the worst element
    numerical: float
    symbolic: float | None
    status: str                            # "ok", "undecided" or "FAIL"
    where: str = ""                        # the worst element in the mechanism's terms
    errors: np.ndarray | None = None       # |engine - reference| per element
    relative: np.ndarray | None = None     # the floored relative error per element
    rtol: float | None = None              # the bound ``relative`` is held to
    label: str = ""                        # the worst column when no element is named

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return (f"Comparison(engine vs {self.reference}: {self.status}, max abs err "
                f"{self.max_abs_err:.2e}, worst {list(self.worst_index)}{where})")


@dataclass(repr=False)
class InputReport:
    """One checked input: the comparison with finite differences and, with
    ``symbolic=True``, the one with SymPy, each with its own worst element."""

    name: str
    shape: tuple[int, ...]
    fd: Comparison
    sym: Comparison | None = None

    @property
    def status(self) -> str:
        """``FAIL`` if a comparison failed; with SymPy, SymPy's verdict (finite differences
        that are merely undecided do not count against it); else the FD verdict."""
        if "FAIL" in (self.fd.status, self.sym.status if self.sym else None):
            return "FAIL"
        return self.sym.status if self.sym is not None else self.fd.status

    @property
    def passed(self) -> bool:
        return self.status == "ok"

    # -- the finite-difference comparison under its historical names
    ok = property(lambda self: self.fd.ok, doc="Finite differences agree within atol/rtol.")
    max_abs_err = property(lambda self: self.fd.max_abs_err)
    max_rel_err = property(lambda self: self.fd.max_rel_err)
    worst_index = property(lambda self: self.fd.worst_index)
    numerical = property(lambda self: self.fd.numerical, doc="FD at the FD-worst element.")
    analytical = property(lambda self: self.fd.engine, doc="Engine at the FD-worst element.")
    symbolic = property(lambda self: self.fd.symbolic, doc="SymPy at the FD-worst element.")

    # -- the SymPy comparison
    sym_ok = property(lambda self: None if self.sym is None else self.sym.ok)
    sym_max_abs_err = property(lambda self: None if self.sym is None else self.sym.max_abs_err)
    sym_worst_index = property(lambda self: None if self.sym is None else self.sym.worst_index)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.shape)) or "scalar"
        parts = [repr(c) for c in (self.fd, self.sym) if c is not None]
        return f"InputReport({self.name} {shape}: {self.status}; {'; '.join(parts)})"


@dataclass(repr=False)
class GradcheckReport:
    """What :func:`~tinygrad_attn.verify.gradcheck.gradcheck` found: one
    :class:`InputReport` per checked input, the tolerances used, and notes."""

    inputs: list[InputReport]
    eps: float
    atol: float
    rtol: float
    symbolic: bool = False
    notes: list[str] = field(default_factory=list)
    sym_atol: float | None = None
    sym_rtol: float | None = None
    files: list[str] = field(default_factory=list)     # written with report_dir=
    mode: str = "full"                     # "full" (every element) or "fast" (directions)
    directions: int = 0                    # random directions per input in the fast mode

    @property
    def status(self) -> str:
        """``PASSED``, ``FAILED`` or ``UNDECIDED`` (see the module docstring)."""
        statuses = {r.status for r in self.inputs}
        return "FAILED" if "FAIL" in statuses else \
            "UNDECIDED" if "undecided" in statuses else "PASSED"

    @property
    def ok(self) -> bool:
        return self.status == "PASSED"

    def __bool__(self) -> bool:
        return self.ok

    def verdict(self) -> str:
        """The first line: the verdict and the settings it was reached with."""
        sym = "" if not self.symbolic else (
            f"; SymPy exact gradient, atol={self.sym_atol:g}, rtol={self.sym_rtol:g}")
        if self.mode == "fast":
            return (f"gradcheck: {self.status} (fast: {self.directions} random directions per "
                    f"input, extrapolated central differences, h={self.eps:.2g}, "
                    f"atol={self.atol:g}, rtol={self.rtol:g}, normwise)")
        return (f"gradcheck: {self.status} (central differences, eps={self.eps:g}, "
                f"atol={self.atol:g}, rtol={self.rtol:g}{sym})")

    def table(self) -> tuple[list[str], list[list[str]]]:
        """The column heads and the cells, one line per input and reference; the
        ``where`` column only when some element has a name in the mechanism's terms."""
        lines = [(r, c, i == 0) for r in self.inputs
                 for i, c in enumerate(c for c in (r.fd, r.sym) if c is not None)]
        show_where = any(c.where for _, c, _ in lines)
        head = ["input", "shape"] + (["error"] if self.symbolic else []) + [
            "max abs err", "max rel err", "worst"] + (["where"] if show_where else []) + [
            "numerical", "engine"] + (["sympy"] if self.symbolic else []) + ["result"]
        rows = []
        for r, c, first in lines:
            row = [r.name, "x".join(map(str, r.shape)) or "scalar"] if first else ["", ""]
            row += [f"|engine-{c.reference}|"] if self.symbolic else []
            row += [f"{c.max_abs_err:.2e}", f"{c.max_rel_err:.2e}",
                    c.label or str(list(c.worst_index))]
            row += [c.where] if show_where else []
            row += [f"{c.numerical:.10g}", f"{c.engine:.10g}"]
            row += ["-" if c.symbolic is None else f"{c.symbolic:.10g}"] if self.symbolic else []
            rows.append(row + [c.status if self.symbolic else r.status])
        return head, rows

    def __str__(self) -> str:
        head, rows = self.table()
        widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [self.verdict(), fmt.format(*head).rstrip(),
                 fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row).rstrip() for row in rows]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"written: {f}" for f in self.files]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        """The table as HTML, for notebooks (Jupyter calls this)."""
        colour = {"ok": "#1e8449", "PASSED": "#1e8449", "FAIL": "#c0392b",
                  "FAILED": "#c0392b", "undecided": "#b9770e", "UNDECIDED": "#b9770e"}
        shade = {"FAIL": "#fdedec", "undecided": "#fef5e7"}
        esc = html.escape
        head, rows = self.table()
        cell = 'style="text-align:left;font-family:monospace;padding:2px 8px"'
        out = [f'<div class="gradcheck-report"><p><b style="color:{colour[self.status]}">'
               f'gradcheck: {self.status}</b> {esc(self.verdict().split(" ", 2)[2])}</p>',
               "<table><thead><tr>" + "".join(f"<th {cell}>{esc(h)}</th>" for h in head)
               + "</tr></thead><tbody>"]
        for row in rows:
            tds = [f"<td {cell}>{esc(v)}</td>" for v in row[:-1]]
            tds.append(f'<td {cell}><b style="color:{colour.get(row[-1], "inherit")}">'
                       f"{esc(row[-1])}</b></td>")
            marked = row[-1] in ("FAIL", "undecided")   # the whole line, not only its verdict
            tr = (f'<tr class="{row[-1].lower()}" style="background:{shade[row[-1]]}">'
                  if marked else "<tr>")
            out.append(tr + "".join(tds) + "</tr>")
        out.append("</tbody></table>")
        if self.notes:
            out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        if self.files:
            out.append("<p>written: " + ", ".join(esc(f) for f in self.files) + "</p>")
        return "\n".join(out) + "</div>"


class GradcheckError(AssertionError):
    """Raised by ``gradcheck(..., raise_exception=True)``; its message is the report."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report
