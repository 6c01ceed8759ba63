r"""Compare a PyTorch or JAX function with its reference written with the engine.

For every case (:mod:`.cases`) and every dtype, both functions run on the same inputs
(rounded to the dtype), the same cotangent :math:`g` and the same directions :math:`u`;
the reference always runs in float64 at those rounded values -- the most accurate value
of what the implementation computes in the dtype -- and the implementation in the
dtype.  Output, VJPs and HVPs (:mod:`.frameworks`) are compared with the tolerances of
:func:`~..gradcheck.tolerances` for the dtype, those the engine is held to against SymPy:
an element passes when :math:`|impl - ref| \le atol\,\max(1, \max|ref|) + rtol\,|ref|`
(the absolute part scales with the quantity, so a gradient of size 1e3 at large logits
is judged as one of size 1).  The worst element of each comparison is the one furthest
beyond its tolerance (:func:`~..judge.relative_error`), named in the mechanism's terms
by :func:`~..locate.locate` on the reference's graph.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..floors import SPREAD_FACTOR, engine_spread
from ..gradcheck import DEFAULTS, tolerances
from ..judge import relative_error
from ..locate import Probe, attention_sites, locate, probe, site_label
from .cases import Case, Roles, builtin_cases, parameters, random_inputs, resolve_cases
from .frameworks import FRAMEWORKS, Derivatives, call, run_engine, user_line
from .report import KINDS, Cell, ComparisonReport, Worst

__all__ = ["compare", "tolerance"]

Shapes = Mapping[str, Sequence[int] | int]


def tolerance(dtype: str) -> tuple[float, float]:
    """(atol, rtol) for an implementation running in ``dtype``: the engine-vs-SymPy
    tolerances of :data:`~..gradcheck.DEFAULTS` (float32 is judged as float32)."""
    tol = tolerances(np.dtype(dtype))
    return tol.sym_atol, tol.sym_rtol


def compare(reference: Callable[..., Any], implementation: Callable[..., Any],
            shapes: Shapes, framework: str = "torch",
            dtypes: Sequence[str] = ("float64", "float32"),
            cases: str | Sequence[str | Case | Callable[..., Any]] | None = None,
            roles: Roles | None = None, seed: int = 0,
            ranges: Mapping[str, tuple[float, float]] | None = None) -> ComparisonReport:
    """Compare ``implementation`` (PyTorch or JAX) with ``reference`` (the engine).

    ``shapes`` gives each parameter's shape (``{"q": (2, 4, 8), ...}``); both functions
    take the parameters in the same order and return one array.  ``cases``: the
    built-in edge cases by name, user functions ``(inputs, rng) -> inputs`` (see
    :mod:`.cases`), or None for every built-in case that applies.  ``roles`` says which
    parameter is the query, keys, values, mask and which scales the logits (default:
    read from the names).  ``ranges`` maps a parameter to an interval its random values
    are drawn from uniformly (default: the standard normal), e.g. ``{"tau": (0.5, 2)}``.
    Returns a :class:`~.report.ComparisonReport`.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got "
                         f"{framework!r}")
    for d in dtypes:
        if d not in DEFAULTS:
            raise ValueError(f"dtypes: {d!r} is not one of {', '.join(DEFAULTS)}")
    shapes = normalize_shapes(shapes)
    names = parameters(reference, shapes)
    check_signatures(reference, implementation, names)
    roles = Roles.infer(names) if roles is None else roles
    roles.check(list(inspect.signature(reference).parameters))
    roles = Roles(**{r: n if n in names else None for r, n in roles.__dict__.items()})
    diff = [n for n in names if n != roles.mask]
    base = random_inputs(names, shapes, roles, np.random.default_rng(seed), ranges)
    reference_forward(reference, names, base, diff, strict=True)
    chosen = resolve_cases(cases, builtin_cases(roles, lambda x: largest_score(
        reference, names, x, diff)))
    report = ComparisonReport(reference.__name__, implementation.__name__, framework,
                              {n: shapes[n] for n in names}, [],
                              {d: tolerance(d) for d in dtypes})
    for k, case in enumerate(chosen):
        inputs = case.build({n: a.copy() for n, a in base.items()},
                            np.random.default_rng([seed, k]))
        if inputs is None:
            report.notes.append(f"case {case.name}: does not apply (needs {needs(case.name)})")
            continue
        problem = reference_forward(reference, names, inputs, diff, strict=False)
        if problem:
            report.notes.append(f"case {case.name}: the reference rejects it ({problem})")
            continue
        for dtype in dtypes:
            report.cells += run_case(reference, implementation, framework, names, diff,
                                     inputs, case.name, dtype, np.random.default_rng([seed, k]),
                                     report.run_notes)
    return report


def normalize_shapes(shapes: Shapes) -> dict[str, tuple[int, ...]]:
    """Each shape a tuple of positive ints (a ValueError naming the bad one)."""
    out = {}
    for name, shape in dict(shapes).items():
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
            raise ValueError(f"shapes[{name!r}] = {shape!r}: expected a tuple of positive "
                             f"ints, e.g. (4, 8)")
        out[name] = tuple(int(d) for d in dims)
    return out


def check_signatures(reference: Callable[..., Any], implementation: Callable[..., Any],
                     names: Sequence[str]) -> None:
    """The implementation takes the reference's parameters, by the same names, in order."""
    try:
        params = list(inspect.signature(implementation).parameters.values())
    except (TypeError, ValueError):
        return  # a builtin or a jitted function without a signature: called positionally
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return
    theirs = [p.name for p in params]
    required = [p.name for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if theirs[:len(names)] != list(names) or len(required) > len(names):
        ours = ", ".join(inspect.signature(reference).parameters)
        raise ValueError(f"the signatures differ: the reference is {reference.__name__}"
                         f"({ours}) and is called with ({', '.join(names)}); the "
                         f"implementation is {implementation.__name__}({', '.join(theirs)}): "
                         f"give both the same parameters in the same order")


def reference_forward(reference: Callable[..., Any], names: Sequence[str],
                      inputs: Mapping[str, np.ndarray], diff: Sequence[str],
                      strict: bool) -> str:
    """Run the reference's forward; its error as a line ("" when it ran).  ``strict``:
    raise a ValueError instead (the random case, which must run)."""
    from ...engine import Tensor

    try:
        out = call(reference, names, {**inputs, **{n: Tensor(inputs[n], requires_grad=True)
                                                   for n in diff}})
        if not isinstance(out, Tensor):
            raise TypeError(f"it returned {type(out).__name__}, not a Tensor: return one "
                            f"Tensor (for a mechanism returning (context, weights), the "
                            f"context)")
    except Exception as exc:  # the user's reference
        line = f"{type(exc).__name__}: {exc}{user_line(exc, reference)}"
        if strict:
            shapes = ", ".join(f"{n}={inputs[n].shape}" for n in names)
            raise ValueError(f"the reference {reference.__name__} fails at {shapes}: "
                             f"{line}") from None
        return line
    return ""


def largest_score(reference: Callable[..., Any], names: Sequence[str],
                  inputs: Mapping[str, np.ndarray], diff: Sequence[str]) -> float | None:
    """The largest attended score of the reference's attention sites (None: none)."""
    from ...engine import Tensor

    out = call(reference, names, {**inputs, **{n: Tensor(inputs[n], requires_grad=True)
                                               for n in diff}})
    tops = [float(np.max(np.abs(s.scores[s.allowed]))) for s in attention_sites([out])
            if s.allowed.any()]
    return max(tops) if tops else None


def needs(case: str) -> str:
    """What a built-in case needs, for the note of a case that does not apply."""
    return {"masked_row": "a mask parameter", "causal": "a mask parameter of at least 2 axes",
            "large_logits": "an input scaling the logits and attention weights in the "
                            "reference",
            "single_key": "key and value parameters",
            "batch_heads": "query, key and value of 2 or 3 axes"}.get(
        case, "the case returned None")


def rounded(inputs: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """The float inputs rounded to ``dtype`` and held in float64 (exactly)."""
    return {n: a if a.dtype == bool else a.astype(dtype).astype(np.float64)
            for n, a in inputs.items()}


def run_case(reference: Callable[..., Any], implementation: Callable[..., Any],
             framework: str, names: Sequence[str], diff: Sequence[str],
             inputs: Mapping[str, np.ndarray], case: str, dtype: str,
             rng: np.random.Generator, runs: dict[str, list[str]]) -> list[Cell]:
    """The three cells (output, VJP, HVP) of one case in one dtype; what the
    implementation's runner noted goes to ``runs`` (note -> the runs that noted it)."""
    x = rounded(inputs, dtype)
    us = {n: rng.standard_normal(x[n].shape).astype(dtype).astype(np.float64) for n in diff}
    out_shape = reference_shape(reference, names, x, diff)
    g = rng.standard_normal(out_shape).astype(dtype).astype(np.float64)
    ref, out, leaves = run_engine(reference, names, x, diff, g, us)
    try:
        impl = FRAMEWORKS[framework](implementation, names, x, diff, dtype, g, us)
    except Exception as exc:  # the user's implementation
        problem = (f"the implementation raised {type(exc).__name__}: {exc}"
                   f"{user_line(exc, implementation)}")
        return [Cell(case, dtype, k, "error", problem=problem) for k in KINDS]
    for n in impl.notes:
        runs.setdefault(n, []).append(f"{case} {dtype}")
    judge = Judge(case, dtype, Namer(reference, names, x, diff, leaves, out),
                  Floor(reference, names, x, diff, g, us, dtype, ref))
    cells = [judge.cell("output", {"output": (impl.output, ref.output)})]
    for kind, pick in (("VJP", lambda d: d.vjp), ("HVP", lambda d: d.hvp)):
        if kind in impl.errors:
            cells.append(Cell(case, dtype, kind, "error", problem=f"the implementation's "
                              f"{kind} raised {impl.errors[kind]}"))
            continue
        cells.append(judge.cell(kind, {f"{kind} of {n}": (pick(impl)[n], pick(ref)[n])
                                       for n in diff}))
    return cells


def reference_shape(reference: Callable[..., Any], names: Sequence[str],
                    x: Mapping[str, np.ndarray], diff: Sequence[str]) -> tuple[int, ...]:
    """The shape of the reference's output at ``x``."""
    from ...engine import Tensor, no_grad

    with no_grad():
        return tuple(call(reference, names, {**x, **{n: Tensor(x[n]) for n in diff}}).shape)


class Floor:
    """What the dtype can resolve here: the engine runs the reference in the dtype, and
    the floor of a quantity is :data:`~..floors.SPREAD_FACTOR` times the larger of its
    distance from the float64 reference and its largest move when the inputs move by 4
    ulps of the dtype (:func:`~..floors.engine_spread`), normwise.  A difference below
    it is no evidence against the implementation: a saturated softmax at logits 1e3
    leaves second derivatives that are all cancellation, in any framework.  Measured
    once, when a comparison first exceeds its tolerance."""

    def __init__(self, reference: Callable[..., Any], names: Sequence[str],
                 x: Mapping[str, np.ndarray], diff: Sequence[str], g: np.ndarray,
                 us: Mapping[str, np.ndarray], dtype: str, base: Derivatives) -> None:
        self.args = reference, names, x, diff, g, us, dtype
        self.base = base
        self._floors: dict[str, float] | None = None

    def arrays(self, d: Derivatives) -> dict[str, np.ndarray]:
        diff = self.args[3]
        return {"output": d.output, **{f"VJP of {n}": d.vjp[n] for n in diff},
                **{f"HVP of {n}": d.hvp[n] for n in diff}}

    def __call__(self, quantity: str) -> float:
        if self._floors is None:
            reference, names, x, diff, g, us, dtype = self.args
            mine, _, leaves = run_engine(reference, names, x, diff, g, us, dtype)

            def again() -> list[np.ndarray]:
                moved = {**x, **{n: t.data.copy() for n, t in zip(diff, leaves)}}
                return list(self.arrays(run_engine(reference, names, moved, diff, g, us,
                                                   dtype)[0]).values())

            here = self.arrays(mine)
            spread = engine_spread(again, leaves, list(here.values()))
            self._floors = {k: SPREAD_FACTOR * max(float(np.max(s, initial=0.0)), float(
                np.max(np.abs(here[k] - ref), initial=0.0)))
                for (k, ref), s in zip(self.arrays(self.base).items(), spread)}
        return self._floors[quantity]


class Judge:
    """The cells of one case in one dtype: tolerance, floor, worst element, its name."""

    def __init__(self, case: str, dtype: str, namer: "Namer", floor: Floor) -> None:
        self.case, self.dtype, self.namer, self.floor = case, dtype, namer, floor
        self.atol, self.rtol = tolerance(dtype)

    def cell(self, kind: str, pairs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Cell:
        """Every (implementation, reference) pair of arrays of one quantity: the status
        (ok; undecided: beyond the tolerance, within the dtype's floor; FAIL), the element
        furthest beyond its tolerance, and every quantity that failed."""
        worst, largest, status, failed = None, 0.0, "ok", []
        for quantity, (impl, ref) in pairs.items():
            if impl.shape != ref.shape:
                return Cell(self.case, self.dtype, kind, "FAIL", float("nan"), None,
                            f"{quantity} has shape {impl.shape}, the reference's {ref.shape}")
            if not ref.size:
                continue
            err = np.array(np.abs(impl - ref), dtype=np.float64)
            err[np.isnan(err)] = np.inf
            largest = max(largest, float(np.max(err)))
            ratio = relative_error(err, ref, self.atol * max(1.0, float(np.max(np.abs(ref)))),
                                   self.rtol) / self.rtol
            flat = int(np.argmax(ratio))
            mine = "ok" if ratio.flat[flat] <= 1 else \
                "undecided" if np.max(err) <= self.floor(quantity) else "FAIL"
            failed += [quantity] if mine == "FAIL" else []
            if RANK[mine] > RANK[status] or (RANK[mine] == RANK[status] and (
                    worst is None or ratio.flat[flat] > worst.ratio)):
                index = tuple(int(i) for i in np.unravel_index(flat, ref.shape))
                worst = Worst(quantity, index, "", float(impl.flat[flat]),
                              float(ref.flat[flat]), float(err.flat[flat]),
                              float(ratio.flat[flat]))
                status = max(status, mine, key=RANK.get)
        if worst is not None and status != "ok":
            worst = dataclasses.replace(worst, where=self.namer.name(worst.quantity,
                                                                     worst.index))
            if status == "undecided":
                worst = dataclasses.replace(worst, floor=self.floor(worst.quantity))
        return Cell(self.case, self.dtype, kind, status, largest, worst, failed=failed)


RANK = {"ok": 0, "undecided": 1, "FAIL": 2}


class Namer:
    """Names an element of the output or of an input in the reference's terms.  Axis
    -3 of attention weights with 4 or more axes is the head axis, as in PyTorch's
    (batch, heads, m, n) layout."""

    def __init__(self, reference: Callable[..., Any], names: Sequence[str],
                 x: Mapping[str, np.ndarray], diff: Sequence[str], leaves: Sequence[Any],
                 out: Any) -> None:
        self.leaves = dict(zip(diff, leaves))
        self.run = lambda: (call(reference, names, {**x, **self.leaves}),)
        self.out = out
        self._probe: Probe | None = None

    def probe(self) -> Probe:
        if self._probe is None:
            base = probe([self.out])
            base.sites = [dataclasses.replace(s, head_axis=s.head_axis or s.scores.ndim >= 4)
                          for s in base.sites]
            self._probe = base
        return self._probe

    def name(self, quantity: str, index: tuple[int, ...]) -> str:
        """"batch 0, head 1, query 2" for ``index`` of the output or of an input."""
        _, _, of = quantity.partition(" of ")
        try:
            if not of:
                return output_where(self.out.shape, index, self.probe())
            return str(locate(self.run, self.leaves[of], index, DEFAULTS["float64"].eps,
                              self.probe()))
        except Exception:  # naming is a courtesy: never let it hide the verdict
            return ""


def output_where(shape: tuple[int, ...], index: tuple[int, ...], base: Probe) -> str:
    """Row ``index[:-1]`` of an output (..., m, d_v) made by weights (..., m, n): the
    batch, head and query it belongs to."""
    for site in base.sites:
        if len(shape) >= 2 and site.scores.shape[:-1] == tuple(shape[:-1]):
            c = np.zeros(site.scores.shape, dtype=bool)
            c[tuple(index[:-1])] = True
            return site_label(site, c)
    return ""
