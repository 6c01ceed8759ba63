r"""How finely a comparison can resolve at this point: the floors of the references.

A disagreement below what the arithmetic can resolve is no evidence of a wrong backward.
Two floors are estimated, each for one comparison of :func:`~.gradcheck.gradcheck`:

* **finite differences** -- a central difference divides the rounding error of two
  evaluations of :math:`L(x) = \sum_k \langle g_k, f_k(x) \rangle` by the step :math:`2h`.
  That rounding error is estimated to first order from the recorded graph
  (:func:`rounding_error`): every node :math:`v` is computed with a relative error of about
  the unit roundoff :math:`u` of its dtype, which reaches :math:`L` multiplied by its
  adjoint :math:`\bar v`, so :math:`\delta L \approx u \sum_v \sum |\bar v| \, |v|`, where
  for a reduction (``matmul``, ``sum``, the fused attention op) :math:`|v|` is the sum of
  the absolute values of the terms it adds.  The ratio
  :math:`\sum_v |\bar v||v| \,/\, |L|` is the condition of the evaluation: large when big
  terms cancel (a saturated softmax with scores of 1e3).  The truncation error of the
  difference is estimated per element from a second step (:func:`truncation_error`).
  Neither uses the engine's gradient, so an engine error cannot hide by inflating them.
* **float arithmetic** -- how much the engine's gradient moves when the inputs move by a
  few units in the last place (:func:`engine_spread`): the conditioning of the gradient
  at this point.  No algorithm working in the inputs' precision can be expected to agree
  with the exact gradient more closely.  The floor of an input is :data:`SPREAD_FACTOR`
  times the largest move among its elements -- normwise, because a saturated weight
  that rounds to exactly 1 hides its own sensitivity from the element it feeds.  It is
  measured with the engine itself, so a backward that is unstable (erratic under a few
  ulps) is reported as undecided, not passed.

:func:`classify` turns the errors, the tolerance and a floor into one verdict per
element: ``OK``, ``UNDECIDED`` (beyond the tolerance, within the floor) or ``FAIL``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..engine import Tensor, grad, toposort

__all__ = ["FAIL", "OK", "SPREAD_FACTOR", "UNDECIDED", "Rounding", "classify", "engine_spread",
           "rounding_error", "term_scale", "truncation_error", "unit_roundoff"]

OK, UNDECIDED, FAIL = 0, 1, 2

#: The engine's float floor is this many times the largest move of its gradient under
#: 4 random moves of the inputs by up to 4 ulps: over saturated and cancelling attention
#: (cosine attention at temperatures 1e-4 to 1e-8) the engine-vs-SymPy difference stayed
#: below 1.3 times that move.
SPREAD_FACTOR = 2.0


def unit_roundoff(dtype: Any) -> float:
    """:math:`u`, half the machine epsilon of a float dtype (1.1e-16 for float64)."""
    return float(np.finfo(dtype).eps) / 2


@dataclass
class Rounding:
    """First-order rounding error of :math:`L` at the current inputs."""

    error: float        # u * sum_v sum |v_bar| |v|
    value: float        # L itself
    unit: float         # the largest unit roundoff among the graph's nodes
    nodes: int          # computed nodes the estimate sums over
    dtype: str = "float64"  # the dtype of that unit roundoff

    @property
    def condition(self) -> float:
        """:math:`\\delta L / (u |L|)`: 1 for a single rounding, large under cancellation."""
        return self.error / max(self.unit * abs(self.value), np.finfo(np.float64).tiny)


def rounding_error(outs: Sequence[Tensor], gs: Sequence[np.ndarray]) -> Rounding:
    """The rounding error of :math:`L = \\sum_k \\langle g_k, f_k \\rangle` estimated from the
    graph that computed ``outs`` (one backward pass to every computed node)."""
    pairs = [(o, g) for o, g in zip(outs, gs) if o.requires_grad]
    value = float(sum(np.sum(g * o.data.astype(np.float64)) for o, g in zip(outs, gs)))
    nodes = [n for n in toposort([o for o, _ in pairs]) if n._ctx is not None] if pairs else []
    if not nodes:
        return Rounding(0.0, value, unit_roundoff(np.float64), 0)
    adjoints = grad([o for o, _ in pairs], nodes, allow_unused=True,
                    grad_outputs=[g.astype(o.dtype) for o, g in pairs])
    error, unit, dtype = 0.0, 0.0, "float64"
    for node, adj in zip(nodes, adjoints):
        if adj is None or node.dtype.kind != "f":
            continue
        u = unit_roundoff(node.dtype)
        if u > unit:
            unit, dtype = u, node.dtype.name
        bar = np.abs(adj.data.astype(np.float64))
        error += u * float(np.sum(bar * term_scale(node)))
        error += u * sdpa_score_term(node, adj.data)
    return Rounding(error, value, unit or unit_roundoff(np.float64), len(nodes), dtype)


def term_scale(node: Tensor) -> np.ndarray:
    """The magnitude a node's rounding is relative to: the sum of the absolute values of
    the terms a reduction adds (``matmul``, ``sum``, ``mean``, the fused ``sdpa``'s
    :math:`PV`), and :math:`|v|` for every other op (one rounding of the result)."""
    ctx = node._ctx
    parents = [None if p is None else np.abs(p.data.astype(np.float64)) for p in ctx.parents]
    if ctx.name == "matmul" and all(p is not None for p in parents):
        return parents[0] @ parents[1]
    if ctx.name in ("sum", "mean") and parents[0] is not None:
        reduce = np.sum if ctx.name == "sum" else np.mean
        return reduce(parents[0], axis=ctx.attrs.get("axis"),
                      keepdims=ctx.attrs.get("keepdims", False)).reshape(node.shape)
    saved = getattr(ctx, "saved_tensors", ())
    if ctx.name == "sdpa" and saved and saved[0] is not None and parents[2] is not None:
        return np.abs(np.asarray(saved[0], dtype=np.float64)) @ parents[2]
    return np.abs(node.data.astype(np.float64))


def sdpa_score_term(node: Tensor, o_bar: np.ndarray) -> float:
    r"""The fused attention op's internal scores :math:`S = s\,QK^\top`, rounded relative to
    :math:`s\,|Q||K|^\top`, reach :math:`L` through :math:`\bar S = P \odot (\bar O V^\top -
    \operatorname{rowsum}(\bar O \odot O))` (0 for any other node, or when :math:`P` was
    not kept)."""
    ctx = node._ctx
    saved = getattr(ctx, "saved_tensors", ())
    if ctx.name != "sdpa" or not saved or saved[0] is None \
            or any(p is None for p in ctx.parents[:3]):
        return 0.0
    q, k, v = (np.asarray(p.data, dtype=np.float64) for p in ctx.parents[:3])
    p = np.asarray(saved[0], dtype=np.float64)
    g = np.asarray(o_bar, dtype=np.float64)
    s_bar = p * (g @ np.swapaxes(v, -1, -2)
                 - np.sum(g * node.data.astype(np.float64), axis=-1, keepdims=True))
    scale = ctx.attrs.get("scale")
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else abs(float(scale))
    return float(np.sum(np.abs(s_bar) * (scale * np.abs(q) @ np.swapaxes(np.abs(k), -1, -2))))


def truncation_error(d_h: np.ndarray, d_2h: np.ndarray) -> np.ndarray:
    """The truncation error of central differences with step h, from the ones with step
    2h: it grows as :math:`h^2`, so :math:`D(2h) - D(h) \\approx 3\\,T(h)`."""
    return np.abs(np.asarray(d_2h) - np.asarray(d_h)) / 3


def engine_spread(gradients: Callable[[], list[np.ndarray]], checked: Sequence[Tensor],
                  base: Sequence[np.ndarray], ulps: float = 4.0, trials: int = 4,
                  seed: int = 0) -> list[np.ndarray]:
    """How far the engine's gradient moves, per element, when every checked input moves by
    up to ``ulps`` units in the last place (``trials`` random moves, the largest change).

    ``gradients()`` recomputes the engine's gradients at the inputs' current values; the
    inputs are moved in place (``fn`` may reach them through a closure) and restored.
    """
    rng = np.random.default_rng(seed)
    spread = [np.zeros(np.shape(b)) for b in base]
    originals = [t.data.copy() for t in checked]
    try:
        for _ in range(trials):
            for t, orig in zip(checked, originals):
                u = unit_roundoff(t.dtype)
                move = 1 + ulps * u * rng.uniform(-1, 1, size=orig.shape)
                t.data[...] = (orig * move).astype(t.dtype)
            for s, b, moved in zip(spread, base, gradients()):
                np.maximum(s, np.abs(moved - b), out=s)
    finally:
        for t, orig in zip(checked, originals):
            t.data[...] = orig
    return spread


def classify(err: np.ndarray, tol: np.ndarray, floor: np.ndarray | float) -> np.ndarray:
    """Per element: ``OK`` within the tolerance, else ``UNDECIDED`` within the floor (the
    reference cannot resolve the difference), else ``FAIL``; a NaN error is ``FAIL``."""
    codes = np.full(np.shape(err), FAIL, dtype=np.int8)
    codes[err <= floor] = UNDECIDED
    codes[err <= tol] = OK
    return codes
