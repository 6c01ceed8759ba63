"""What :func:`tinygrad_attn.gradcheck` returns: one row per checked input, as a table.

``str(report)`` is the table a test failure or the README prints: a verdict line, then
each input's largest errors, its worst element and the values there (numerical, engine
and, with ``symbolic=True``, SymPy's), then the notes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GradcheckError", "GradcheckReport", "InputReport"]


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
        """Both comparisons passed (the SymPy one counts only when it was made)."""
        return self.ok and self.sym_ok is not False


@dataclass
class GradcheckReport:
    """What :func:`~tinygrad_attn.verify.gradcheck.gradcheck` found: one
    :class:`InputReport` per checked input."""

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
        head = self._head()
        rows = [self._row(r) for r in self.inputs]
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [self._verdict(), fmt.format(*head).rstrip(),
                 fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*row).rstrip() for row in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _verdict(self) -> str:
        return (f"gradcheck: {'PASSED' if self.ok else 'FAILED'} (central differences, "
                f"eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g}"
                f"{'; SymPy exact gradient' if self.symbolic else ''})")

    def _head(self) -> list[str]:
        head = ["input", "shape", "max abs err", "max rel err", "worst", "numerical",
                "engine"]
        if self.symbolic:
            head += ["sympy", "|engine-sympy|"]
        return head + ["result"]

    def _row(self, r: InputReport) -> list[str]:
        row = [r.name, "x".join(map(str, r.shape)) or "scalar", f"{r.max_abs_err:.2e}",
               f"{r.max_rel_err:.2e}", str(list(r.worst_index)), f"{r.numerical:.10g}",
               f"{r.analytical:.10g}"]
        if self.symbolic:
            row += ["-" if r.symbolic is None else f"{r.symbolic:.10g}",
                    "-" if r.sym_max_abs_err is None else
                    f"{r.sym_max_abs_err:.2e} at {list(r.sym_worst_index or ())}"]
        return row + ["ok" if r.passed else "FAIL"]


class GradcheckError(AssertionError):
    """Raised by ``gradcheck(..., raise_exception=True)``; its message is the report."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report
