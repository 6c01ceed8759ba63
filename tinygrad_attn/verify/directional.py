r"""The fast gradient check: directional derivatives along random directions, and a
bisection that finds the wrong element when one of them disagrees.

**What is compared.**  :func:`~.gradcheck.gradcheck` differentiates
:math:`L(x) = \sum_k \langle w_k, f_k(x) \rangle` for fixed random cotangents :math:`w`;
the engine's backward gives :math:`G = \nabla L = w^\top J` in one pass.  For a random
direction :math:`u` (standard normal, seeded, one per checked input and direction),
:math:`\langle G, u \rangle = w^\top J u` is compared with the central difference of
:math:`L(x + h u)`, extrapolated (Richardson) from the steps :math:`h` and :math:`h/2`:
:math:`R = (4 D(h/2) - D(h)) / 3` with :math:`D(s) = (L(x + s u) - L(x - s u)) / 2s`,
exact up to :math:`O(h^4)`.  Four evaluations of ``fn`` per direction and input,
whatever the size.  The inputs are moved in their own dtype; the direction actually
taken (the rounded :math:`x \pm s u` minus :math:`x`) is the one the engine's value is
computed along, so rounding the moved inputs biases nothing.

**Step.**  :math:`h = \epsilon^{1/5}` for the machine epsilon :math:`\epsilon` of the
dtype (7.4e-4 in float64, 0.041 in float32): it balances the :math:`h^4` truncation of
the extrapolated difference against the rounding of :math:`L` divided by :math:`h`.

**Verdict.**  A direction passes when :math:`|\langle G, u\rangle - R| \le \tau =
\|\mathrm{atol} + \mathrm{rtol}\,|G|\|_2`, the norm of the per-element tolerances of
the full check: an error :math:`e` within them element by element has
:math:`\|e\|_2 \le \tau`, and :math:`\langle e, u \rangle` over Gaussian :math:`u` has
the standard deviation :math:`\|e\|_2`.  The tolerance is normwise: relative to the size
of the compared quantity, not to each element.  Beyond it, a difference within what
finite differences resolve -- three times the rounding error of :math:`L`
(:func:`.floors.rounding_error`) over :math:`h`, plus the truncation measured between
the two steps -- or one whose steps cross a kink is ``undecided``; otherwise ``FAIL``.
A direction whose steps cross a kink (the sign of a ``relu``'s input changes, see
:func:`.locate.kink_signature`) and does not pass is measured again with steps 16 and
256 times smaller (:func:`compare`), which fewer elements lie that close to.

**Localisation.**  A failing direction's error :math:`\langle G, u \rangle - R` is linear
in :math:`u`: restricted to half of the elements it splits into the errors of the two
halves.  :func:`bisect` measures one half (four evaluations) and gets the other by
subtraction, follows the halves still beyond their own tolerance (:math:`\tau` over
the half; over one element, the full check's) worst first, and stops at single
elements: a wrong element among :math:`N` is found in :math:`\lceil \log_2 N \rceil`
halvings.  Up to
:data:`LOCATE_LIMIT` elements per input are followed; failing blocks left over are
counted in the note (more wrong elements may exist).  Each element found is confirmed
by its own central difference and judged, named and tagged as in the full check
(:class:`~.judge.Judge`).

**False negatives.**  Let :math:`e = G - \nabla L` be the error of the engine's VJP
(:math:`e = J_\mathrm{err}^\top w`).  A direction misses it when
:math:`|\langle e, u\rangle| \le \tau`.  With :math:`u` standard normal,
:math:`\langle e, u\rangle \sim \mathcal N(0, \|e\|_2^2)`, so in exact arithmetic
(:math:`\tau = 0`) any :math:`e \ne 0` is caught with probability 1, and with a
tolerance :math:`\tau` fixed before :math:`u` is drawn (it is: it depends on
:math:`G` only) one direction misses with probability at most
:math:`\sqrt{2/\pi}\,\tau/\|e\|_2`, and :math:`K` independent directions with at most
:math:`(\sqrt{2/\pi}\,\tau/\|e\|_2)^K` (:func:`miss_probability`).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..engine import Tensor
from . import floors
from .floors import FAIL, OK, UNDECIDED
from .judge import STATUS, Judge
from .locate import kinks_crossed
from .report import Comparison, InputReport

__all__ = ["AUTO_ELEMENTS", "DIRECTIONS", "LOCATE_LIMIT", "Direction", "bisect",
           "central_difference", "choose_mode", "compare", "extrapolated", "fast_rows",
           "miss_probability", "step_size"]

#: Directions per checked input when ``directions`` is not given.
DIRECTIONS = 4
#: Wrong elements followed down to one element per input before the bisection stops.
LOCATE_LIMIT = 3
#: ``mode="auto"`` runs the per-element check up to this many checked elements in all
#: and the fast one above: there the per-element check of scaled dot-product attention
#: takes about a second on a 2-core machine (1.3 s at 3072 elements, n = 16, d = 64,
#: where the fast one takes 0.01 s; benchmarks/bench_gradcheck.py).
AUTO_ELEMENTS = 2048


def step_size(dtype: np.dtype) -> float:
    """:math:`\\epsilon^{1/5}`, the step of the extrapolated difference in ``dtype``."""
    return float(np.finfo(dtype).eps) ** 0.2


def choose_mode(mode: str, checked: Sequence[Tensor], symbolic: bool,
                report_dir: object, directions: int) -> str:
    """``full`` or ``fast``: ``auto`` is fast above :data:`AUTO_ELEMENTS` checked elements
    (full with ``symbolic`` or ``report_dir``, which need every element)."""
    if mode not in ("auto", "full", "fast"):
        raise ValueError(f"gradcheck: mode must be 'auto', 'full' or 'fast', not {mode!r}")
    if not isinstance(directions, (int, np.integer)) or isinstance(directions, bool) \
            or directions < 1:
        raise ValueError(f"gradcheck: directions must be a positive int, not {directions!r}")
    per_element = symbolic or report_dir is not None
    if mode == "fast" and per_element:
        raise ValueError("gradcheck: symbolic=True and report_dir= compare every element; "
                         "use mode='full' (or 'auto') with them")
    if mode == "auto":
        size = sum(t.size for t in checked)
        return "full" if per_element or size <= AUTO_ELEMENTS else "fast"
    return mode


def miss_probability(tol: float, error_norm: float, directions: int) -> float:
    """The bound :math:`(\\sqrt{2/\\pi}\\,\\tau/\\|e\\|_2)^K` (at most 1) on the chance that
    an error of norm ``error_norm`` passes ``directions`` Gaussian directions."""
    if error_norm <= 0:
        return 1.0
    return min(1.0, np.sqrt(2 / np.pi) * tol / error_norm) ** directions


def central_difference(project: Callable[[], float], t: Tensor, index: tuple[int, ...],
                       eps: float) -> float:
    """The central difference of ``project()`` in element ``index`` of ``t``, moved in
    place and restored; the step is the one represented (``(x + eps) - x``), so rounding
    of the moved value does not bias the quotient."""
    flat = t.data.reshape(-1)  # a view
    j = int(np.ravel_multi_index(index, t.shape)) if t.ndim else 0
    orig = flat[j]
    try:
        flat[j] = orig + eps
        step_up = flat[j] - orig
        f_plus = project()
        flat[j] = orig - eps
        step_down = orig - flat[j]
        f_minus = project()
    finally:
        flat[j] = orig
    return float((f_plus - f_minus) / (step_up + step_down))


@dataclass
class Direction:
    """One directional comparison: the engine's :math:`\\langle G, u \\rangle` and the
    extrapolated difference, the tolerance, the floor, and the kinks crossed."""

    engine: float
    numerical: float
    tol: float
    truncation: float
    kinks: list[str]
    step: float

    @property
    def error(self) -> float:
        return abs(self.engine - self.numerical)


def extrapolated(judge: Judge, t: Tensor, u: np.ndarray, h: float,
                 gradient: np.ndarray) -> Direction:
    """The engine against Richardson's extrapolation of central differences of
    :math:`L` along ``u`` (moved in place in ``t``'s dtype, then restored)."""
    orig = t.data.copy()
    base = orig.astype(np.float64)
    diffs, taken, crossed = [], [], set()
    try:
        for s in (h, h / 2):
            values, moves = [], []
            for sign in (1, -1):
                t.data[...] = base + sign * s * u
                moves.append(sign * (t.data.astype(np.float64) - base))
                value, sig = judge.project()
                values.append(value)
                crossed.update(kinks_crossed(judge.probe().signature, sig))
            diffs.append((values[0] - values[1]) / (2 * s))
            taken.append((moves[0] + moves[1]) / (2 * s))
    finally:
        t.data[...] = orig
    direction = (4 * taken[1] - taken[0]) / 3
    return Direction(engine=float(np.sum(gradient * direction)),
                     numerical=(4 * diffs[1] - diffs[0]) / 3, tol=0.0,
                     truncation=abs(diffs[1] - diffs[0]) / 3, kinks=sorted(crossed), step=h)


def compare(judge: Judge, k: int, u: np.ndarray, h: float, tol: float) -> tuple[int, Direction]:
    """The verdict of direction ``u`` of checked input ``k``: with step ``h``, or, while
    a step crosses a kink (a relu's input changes sign) and the verdict is not ``OK``,
    with steps 16 and 256 times smaller (fewer elements lie that close to a kink); when
    every step crosses one, the closest of them, undecided."""
    tried = []
    for step in (h, h / 16, h / 256):
        d = extrapolated(judge, judge.checked[k], u, step, judge.engine[k])
        d.tol = tol
        code = verdict(judge, d)
        if code == OK or not d.kinks:
            return code, d
        tried.append((code, d))
    return min(tried, key=lambda cd: cd[1].error)


def verdict(judge: Judge, d: Direction) -> int:
    """``OK`` within the tolerance, ``UNDECIDED`` within the floor of the difference (the
    rounding of L over the step, the truncation) or across a kink, ``FAIL`` otherwise."""
    if d.error <= d.tol:
        return OK
    code = int(floors.classify(np.array(d.error), d.tol, floor(judge, d)))
    return UNDECIDED if code == FAIL and d.kinks else code


def floor(judge: Judge, d: Direction) -> float:
    """What the extrapolated difference resolves: the rounding error of each value of
    L reaches it as (4 * 2 + 1) / 3 = 3 times rounding / step, plus the truncation."""
    return 3 * judge.rounding().error / d.step + d.truncation


def tolerance(judge: Judge, gradient: np.ndarray) -> float:
    r""":math:`\|\mathrm{atol} + \mathrm{rtol}\,|G|\|_2` over the elements a direction
    moves: the norm of the full check's per-element tolerances (with the engine's value
    for the reference's), so that one element alone is held to exactly its own."""
    return float(np.linalg.norm(judge.tol.atol + judge.tol.rtol * np.abs(gradient)))


# ----------------------------------------------------------------------------- bisection

@dataclass
class Bisection:
    """What :func:`bisect` found: the elements, the failing blocks it did not follow,
    the smallest block whose halves both passed (the error spread over it), its cost."""

    found: list[tuple[int, ...]]
    left_over: int
    spread: tuple[int, int] | None
    evaluations: int


def bisect(judge: Judge, k: int, u: np.ndarray, failed: Direction,
           limit: int = LOCATE_LIMIT) -> Bisection:
    """Halve the elements of checked input ``k`` that direction ``u`` moves, following
    the halves whose error is beyond their tolerance (the same norm over the half) and
    floor, worst first, down to
    ``limit`` single elements (flat order; see the module docstring), with the failed
    direction's step."""
    t, gradient, h = judge.checked[k], judge.engine[k].reshape(-1), failed.step
    flat_u = u.reshape(-1)
    rounding = judge.rounding().error / h

    def bar(lo: int, hi: int, truncation: float, derived: bool) -> float:
        noise = (6 if derived else 3) * rounding + truncation
        return max(tolerance(judge, gradient[lo:hi]), noise)

    first = failed.engine - failed.numerical
    heap = [(-abs(first) / bar(0, t.size, failed.truncation, False), 0, t.size, first,
             failed.truncation)]
    found, spread, evaluations = [], None, 0
    while heap and len(found) < limit:
        _, lo, hi, error, truncation = heapq.heappop(heap)
        if hi - lo == 1:
            found.append(tuple(int(i) for i in np.unravel_index(lo, t.shape)))
            continue
        mid = (lo + hi) // 2
        part = np.zeros_like(flat_u)
        part[lo:mid] = flat_u[lo:mid]
        left = extrapolated(judge, t, part.reshape(u.shape), h, judge.engine[k])
        evaluations += 4
        e_left = left.engine - left.numerical
        halves = [(lo, mid, e_left, left.truncation, False),
                  (mid, hi, error - e_left, truncation + left.truncation, True)]
        pushed = 0
        for a, b, e, trunc, derived in halves:
            limit_ab = bar(a, b, trunc, derived)
            if abs(e) > limit_ab:
                heapq.heappush(heap, (-abs(e) / limit_ab, a, b, e, trunc))
                pushed += 1
        if not pushed and spread is None:
            spread = (lo, hi)
    return Bisection(found, len(heap), spread, evaluations)


# ----------------------------------------------------------------------------- the rows

def fast_rows(judge: Judge, names: Sequence[str], directions: int, h: float,
              seed: int = 0) -> tuple[list[InputReport], list[str]]:
    """The report rows of the fast check, one per checked input, and the notes: the
    method and its false-negative bound first, then one note per failing input."""
    rng = np.random.default_rng([seed, 21])
    judge.probe()  # read from the inputs' arrays: before any of them is moved
    rows, notes, tols = [], [], []
    for k, t in enumerate(judge.checked):
        tol = tolerance(judge, judge.engine[k])
        tols.append(tol)
        tried = []
        for _ in range(directions):
            u = rng.standard_normal(t.shape)
            tried.append((*compare(judge, k, u, h, tol), u))
        row, row_notes = fast_row(judge, k, names[k], tried)
        rows.append(row)
        notes += row_notes
    return rows, [method_note(directions, h, max(tols, default=0.0))] + notes


def method_note(directions: int, h: float, tol: float) -> str:
    """How the fast check decides, and its false-negative bound (module docstring)."""
    return (f"fast: each input's gradient G is compared with central differences of L "
            f"along {directions} random Gaussian direction{'s' if directions > 1 else ''} "
            f"u (Richardson extrapolation from steps {h:.2g} and {h / 2:.2g}, "
            f"{4 * directions} evaluations per input); a direction passes when "
            f"|<G, u> - difference| <= tol = ||atol + rtol |G| ||_2 (here up to {tol:.2e}); an "
            f"engine error e passes all {directions} with probability <= "
            f"(0.8 tol / ||e||_2)^{directions}, {miss_probability(1, 10, directions):.0e} "
            f"for ||e||_2 = 10 tol; an error of norm below tol can pass (normwise: "
            f"mode='full' judges each element)")


def fast_row(judge: Judge, k: int, name: str,
             tried: list[tuple[int, Direction, np.ndarray]]) -> tuple[InputReport, list[str]]:
    """One input's row: its worst direction, or, when that failed and the bisection found
    elements, the worst of them, confirmed by its own central difference."""
    t, gradient = judge.checked[k], judge.engine[k]
    i = max(range(len(tried)), key=lambda j: (tried[j][0], tried[j][1].error
                                              / max(tried[j][1].tol, 1e-300)))
    code, d, u = tried[i]
    label = f"direction {i + 1}/{len(tried)}"
    found = bisect(judge, k, u, d) if code == FAIL else None
    notes = [undecided_note(judge, name, label, d)] if code == UNDECIDED else []
    if found is not None:
        failing = sum(c == FAIL for c, _, _ in tried)
        notes = [failure_note(judge, name, f"{failing} of {len(tried)} directions fail; "
                              f"the worst, {label},", d, found, t.size)]
    if found is None or not found.found:
        # scaled so that, as for an element, the direction passes when it is <= rtol
        rel = judge.tol.rtol * d.error / d.tol if d.tol > 0 else float(d.error > 0)
        comp = Comparison("directional", d.error, rel, (), d.engine, d.numerical, None,
                          STATUS[code], label=label)
        return InputReport(name, tuple(t.shape), comp), notes
    numeric = gradient.copy()
    for j in found.found:
        numeric[j] = central_difference(lambda: judge.project()[0], t, j, judge.tol.eps)
    codes = judge.fd_verdicts(t, gradient, numeric)[0]
    comp = judge.comparison("FD", t, gradient, numeric, None, numeric, codes,
                            judge.tol.atol, judge.tol.rtol)
    comp.status = "FAIL"      # the direction failed, whatever the elements found say
    return InputReport(name, tuple(t.shape), comp), notes


def undecided_note(judge: Judge, name: str, label: str, d: Direction) -> str:
    """Why a direction beyond its tolerance is undecided: its steps cross a kink, or the
    difference is within what finite differences resolve."""
    text = f"{name}: {label} differs by {d.error:.2e} (tolerance {d.tol:.2e}), but "
    if d.kinks:
        text += (f"every step tried crosses a kink ({', '.join(d.kinks)}; shown: step "
                 f"{d.step:.2g}): the difference measures neither side")
    else:
        r = judge.rounding()
        text += (f"within what the differences resolve, {floor(judge, d):.1e}: L = "
                 f"{r.value:.3g} is computed with a rounding error of about {r.error:.1e} "
                 f"({r.condition:.1e} times u |L|), divided by the step {d.step:.2g}, plus "
                 f"a truncation of {d.truncation:.1e}")
    return text + "; undecided: mode='full' (or symbolic=True) checks element by element"


def failure_note(judge: Judge, name: str, label: str, d: Direction, found: Bisection,
                 size: int) -> str:
    """What failed (the direction), how the element was found, and what may be left."""
    text = (f"{name}: {label} gives <G, u> = {d.engine:.10g} against {d.numerical:.10g} by "
            f"differences (|difference| {d.error:.2e} > tolerance {d.tol:.2e}, beyond their "
            f"floor {floor(judge, d):.1e}); bisection over {size} element{'s' * (size != 1)} "
            f"({found.evaluations} evaluations of fn)")
    if found.found:
        text += (f" found {', '.join(str(list(j)) for j in found.found)}; per-element central "
                 f"differences there (step {judge.tol.eps:g}) give the row above")
        if found.left_over or len(found.found) >= LOCATE_LIMIT:
            text += (f"; stopped after {len(found.found)} element"
                     f"{'s' if len(found.found) > 1 else ''} with {found.left_over} failing "
                     f"block{'s' if found.left_over != 1 else ''} not followed: more wrong "
                     f"elements may exist")
    elif found.spread is not None:
        lo, hi = found.spread
        text += (f": no single element: both halves of flat elements [{lo}, {hi}) pass "
                 f"their own tolerance, the error is spread over many small ones")
    return text

