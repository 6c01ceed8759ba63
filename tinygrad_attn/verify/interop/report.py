"""The result of :func:`~.compare.compare`: one cell per case, dtype and quantity
(output, VJP, HVP), the worst element of each named in the mechanism's terms, a text
table (``str``/``repr``) and an HTML table (``_repr_html_``, for notebooks)."""
from __future__ import annotations

import html
from dataclasses import dataclass, field

__all__ = ["Cell", "ComparisonReport", "Worst"]

KINDS = ("output", "VJP", "HVP")
#: How a cell that is not ok is marked in the HTML table.
STYLES = {"FAIL": ' style="background:#f8d7da;color:#842029"',
          "error": ' style="background:#f8d7da;color:#842029"',
          "undecided": ' style="background:#fff3cd;color:#664d03"'}


@dataclass(frozen=True)
class Worst:
    """The element furthest beyond its tolerance in one cell."""

    quantity: str                 # "output", "VJP of q", "HVP of k"
    index: tuple[int, ...]
    where: str                    # "batch 0, head 1, query 2" ("" when unnamed)
    impl: float
    ref: float
    error: float                  # |impl - ref|
    ratio: float                  # error / (atol + rtol |ref|): > 1 fails
    floor: float | None = None    # the float floor of the dtype, when within it

    def __str__(self) -> str:
        name, _, of = self.quantity.partition(" of ")
        element = f"{of or 'output'}[{', '.join(map(str, self.index))}]"
        where = f" ({self.where})" if self.where else ""
        head = element + where if not of else f"{name} of {element}{where}"
        floor = "" if self.floor is None else \
            f", within the float floor {self.floor:.1e}"
        return (f"{head}: impl {self.impl:.6g}, ref {self.ref:.6g}, error {self.error:.2e} "
                f"= {self.ratio:.3g} x tolerance{floor}")


@dataclass
class Cell:
    """One comparison: a case, a dtype, a quantity (output, VJP or HVP)."""

    case: str
    dtype: str
    kind: str
    status: str                   # "ok", "undecided", "FAIL", "error" (the implementation raised)
    max_error: float = float("nan")
    worst: Worst | None = None
    problem: str = ""             # what went wrong when there is no worst element
    failed: list[str] = field(default_factory=list)   # every quantity that failed

    @property
    def ok(self) -> bool:
        """Passed: within the tolerance, or within the reference's float floor."""
        return self.status in ("ok", "undecided")

    def detail(self) -> str:
        """The problem, or the worst element (and the other quantities that failed)."""
        if self.problem or self.worst is None:
            return self.problem
        others = [q for q in self.failed if q != self.worst.quantity]
        verb = "fails" if len(others) == 1 else "fail"
        return str(self.worst) + (f"; {', '.join(others)} {verb} too" if others else "")


@dataclass
class ComparisonReport:
    """Every cell of a comparison of an implementation with its engine reference."""

    reference: str
    implementation: str
    framework: str
    shapes: dict[str, tuple[int, ...]]
    cells: list[Cell]
    tolerances: dict[str, tuple[float, float]]          # dtype -> (atol, rtol)
    notes: list[str] = field(default_factory=list)
    run_notes: dict[str, list[str]] = field(default_factory=dict)  # note -> "case dtype"s

    def all_notes(self) -> list[str]:
        """The notes, a note of the implementation's runs once with the runs it holds in."""
        runs = len(self.rows())
        return self.notes + [f"{n} ({'every run' if len(r) == runs else ', '.join(r)})"
                             for n, r in self.run_notes.items()]

    @property
    def ok(self) -> bool:
        return bool(self.cells) and all(c.ok for c in self.cells)

    @property
    def failures(self) -> list[Cell]:
        """The cells that failed, or where the implementation raised."""
        return [c for c in self.cells if not c.ok]

    @property
    def undecided(self) -> list[Cell]:
        """The cells beyond the tolerance but within the reference's float floor."""
        return [c for c in self.cells if c.status == "undecided"]

    @property
    def status(self) -> str:
        """``ok``, ``undecided`` (passed, some cells only within the float floor), ``FAIL``."""
        return "FAIL" if not self.ok else "undecided" if self.undecided else "ok"

    def worst(self) -> Cell | None:
        """The failing cell furthest beyond its tolerance (an error first)."""
        bad = self.failures
        if not bad:
            return None
        return max(bad, key=lambda c: float("inf") if c.worst is None else c.worst.ratio)

    def rows(self) -> list[tuple[str, str, dict[str, Cell]]]:
        """(case, dtype, {kind: cell}) in the order they ran."""
        out: dict[tuple[str, str], dict[str, Cell]] = {}
        for c in self.cells:
            out.setdefault((c.case, c.dtype), {})[c.kind] = c
        return [(case, dtype, cells) for (case, dtype), cells in out.items()]

    def headline(self) -> str:
        shapes = ", ".join(f"{n}={'x'.join(map(str, s)) or 'scalar'}"
                           for n, s in self.shapes.items())
        n = len(self.cells)
        verdict = f"FAIL ({len(self.failures)} of {n} comparisons)" if not self.ok else \
            f"ok ({len(self.undecided)} of {n} comparisons undecided: within the float " \
            f"floor)" if self.undecided else f"ok ({n} comparisons)"
        return (f"{self.implementation} ({self.framework}) against the reference "
                f"{self.reference}, {shapes}: {verdict}")

    def __str__(self) -> str:
        lines = [self.headline(), "",
                 f"{'case':<14}{'dtype':<9}" + "".join(f"{k:<11}" for k in KINDS)
                 + "largest error (output, VJP, HVP)"]
        for case, dtype, cells in self.rows():
            status = "".join(f"{cells[k].status if k in cells else '-':<11}" for k in KINDS)
            errs = ", ".join(f"{cells[k].max_error:.1e}" for k in KINDS if k in cells)
            lines.append(f"{case:<14}{dtype:<9}{status}{errs}")
        lines.append("tolerance: |impl - ref| <= atol + rtol |ref|, by dtype: " + "; ".join(
            f"{d} atol {a:g} x max(1, max|ref|), rtol {r:g}"
            for d, (a, r) in self.tolerances.items()))
        if self.failures:
            lines += ["", "worst element of each failing comparison (the first dtype's):"]
            lines += [f"  {line}" for line in grouped(self.failures)]
        if self.undecided:
            lines += ["", ("undecided (beyond the tolerance, within the float floor of the "
                           "dtype at this point: no evidence either way):")]
            lines += [f"  {line}" for line in grouped(self.undecided)]
        lines += [f"note: {n}" for n in self.all_notes()]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{k}</th>" for k in ("case", "dtype") + KINDS)
        body = []
        for case, dtype, cells in self.rows():
            tds = []
            for k in KINDS:
                c = cells.get(k)
                if c is None:
                    tds.append("<td>-</td>")
                    continue
                style = STYLES.get(c.status, "")
                tip = f' title="{esc(c.detail())}"' if c.detail() else ""
                tds.append(f"<td{style}{tip}>{esc(c.status)} {c.max_error:.1e}</td>")
            body.append(f"<tr><td>{esc(case)}</td><td>{esc(dtype)}</td>{''.join(tds)}</tr>")
        fails = "".join(f"<li>{esc(line)}</li>" for line in grouped(self.failures))
        undecided = "".join(f"<li>{esc(line)}</li>" for line in grouped(self.undecided))
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.all_notes())
        return (f"<div><p><b>{esc(self.headline())}</b></p><table><tr>{head}</tr>"
                f"{''.join(body)}</table>"
                + (f"<p>worst element of each failing comparison:</p><ul>{fails}</ul>"
                   if fails else "")
                + (f"<p>undecided (within the float floor):</p><ul>{undecided}</ul>"
                   if undecided else "") + (f"<ul>{notes}</ul>" if notes else "") + "</div>")


def grouped(cells: list[Cell]) -> list[str]:
    """One line per case and quantity: the dtypes it fails in, the first one's detail."""
    by: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        by.setdefault((c.case, c.kind), []).append(c)
    return [f"{case}, {kind} ({', '.join(c.dtype for c in group)}): {group[0].detail()}"
            for (case, kind), group in by.items()]
