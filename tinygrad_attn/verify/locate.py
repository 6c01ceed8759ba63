r"""Where an input element sits in an attention mechanism, and what is special there.

Both answers come from the recorded graph, by perturbing the one element and watching
what changes -- no guess from names or shapes:

* **attention sites** (:func:`attention_sites`): the nodes that make attention weights
  :math:`P` of shape (..., m, n) -- the fused ``sdpa`` / ``sdpa_weights`` ops, and a
  ``softmax`` over the last axis whose output multiplies values (:math:`PV`).  Each site
  keeps its scores *before* masking (so a masked score still shows who influences it),
  the mask, the weights, and whether axis -3 indexes heads (the scores were made from a
  Tensor whose last axis was split and moved: the multi-head layout) or the site sits in
  a ``head i`` scope.
* **location** (:func:`locate`): the element is moved by the finite-difference step both
  ways; the score entries that change name it.  One row of one batch and head is
  "query i", one column "key j", one entry "query i, key j", a row and a column through
  the same index "position p" (self-attention).  An element that changes no score but
  changes one row j of the values a site's weights multiply is "key j (value)".
* **tags**, on the weights the element touches: ``masked (zero weight)`` when every one of
  them is masked; ``saturated`` when a touched row is one-hot to within
  :math:`\sqrt{u}` (the softmax Jacobian :math:`\operatorname{diag}(p) - pp^\top` is then
  near zero and its value is all cancellation); ``near a kink (relu)`` (or ``abs``,
  ``max``, a data-dependent ``where`` such as a clamp) when the step moves an input of
  such an op across its kink: the sign pattern of the op's input (or its arg-max, or
  the ``where`` condition) differs between the evaluations (:func:`kink_signature`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..attention import kernels
from ..engine import Tensor, numeric, toposort
from .floors import unit_roundoff

__all__ = ["Location", "Probe", "Site", "attention_sites", "kink_signature", "locate", "probe"]


@dataclass
class Site:
    """One node that makes attention weights, as arrays of shape (..., m, n)."""

    op: str
    scores: np.ndarray                 # before masking, float64
    weights: np.ndarray                # P, float64
    allowed: np.ndarray                # True = attended
    unit: float                        # unit roundoff of the weights' dtype
    head_axis: bool = False            # axis -3 indexes heads
    head: int | None = None            # the head of a node in a "head i" scope
    values: np.ndarray | None = None   # the values P multiplies (P V), when found


@dataclass
class Probe:
    """What :func:`locate` compares between evaluations: the sites and the kinks."""

    sites: list[Site]
    signature: list[tuple[str, bytes]]


@dataclass
class Location:
    """An element in the mechanism's terms, and its tags."""

    where: str = ""
    tags: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.where:
            return ", ".join(self.tags)
        return self.where + (f" [{', '.join(self.tags)}]" if self.tags else "")


# ----------------------------------------------------------------------------- the graph

def probe(outs: Sequence[Tensor]) -> Probe:
    """The attention sites and the kink signature of the graph that computed ``outs``."""
    return Probe(attention_sites(outs), kink_signature(outs))


def attention_sites(outs: Sequence[Tensor]) -> list[Site]:
    """Every node of the graph that makes attention weights (see the module docstring)."""
    order = toposort([o for o in outs if o.requires_grad])
    consumers: dict[int, list[Tensor]] = {}
    for node in order:
        for p in node._ctx.parents if node._ctx is not None else ():
            if p is not None:
                consumers.setdefault(id(p), []).append(node)
    sites, fused = [], set()
    for node in order:
        name = node._ctx.name if node._ctx is not None else ""
        if name in ("sdpa", "sdpa_weights"):
            q, k = node._ctx.parents[:2]
            if (id(q), id(k)) not in fused:
                fused.add((id(q), id(k)))
                sites.append(fused_site(node))
        elif name == "softmax" and node.ndim >= 2 and node._ctx.attrs["axis"] == node.ndim - 1:
            uses = [c for c in consumers.get(id(node), [])
                    if c._ctx.name == "matmul" and c._ctx.parents[0] is node]
            if uses:
                sites.append(softmax_site(node, uses[0]._ctx.parents[1]))
    return sites


def softmax_site(node: Tensor, values: Tensor | None) -> Site:
    """A ``softmax`` site; a ``where`` that puts :math:`-\\infty` is read as its mask."""
    parent = node._ctx.parents[0]
    raw, allowed = parent.data, parent.data > -np.inf
    ctx = parent._ctx
    if ctx is not None and ctx.name == "where":
        a, b = ctx.parents
        cond = np.broadcast_to(ctx.attrs["cond"], node.shape)
        for keep, other, attend in ((a, b, cond), (b, a, ~cond)):
            if other is not None and keep is not None and not other.requires_grad \
                    and np.all(np.isneginf(other.data)):
                raw, allowed = keep.data, attend
    return Site("softmax", np.broadcast_to(raw, node.shape).astype(np.float64),
                node.data.astype(np.float64), np.broadcast_to(allowed, node.shape),
                unit_roundoff(node.dtype), head_axis=made_of_split_heads(parent),
                head=scope_head(node), values=None if values is None else values.data.copy())


def fused_site(node: Tensor) -> Site:
    """An ``sdpa`` / ``sdpa_weights`` site: scores :math:`QK^\\top`, mask and causal from
    the op's attributes (combined as the kernels combine them), weights from the op, or
    computed by the kernels when the op did not keep them (the blocked kernels)."""
    ctx = node._ctx
    q, k = (np.asarray(p.data, dtype=np.float64) for p in ctx.parents[:2])
    raw = q @ np.swapaxes(k, -1, -2)
    m, n = raw.shape[-2:]
    mask = kernels.allowed(ctx.attrs.get("mask"), ctx.attrs.get("causal", False), m, n)
    shape = raw.shape if mask is None else np.broadcast_shapes(raw.shape, np.shape(mask))
    raw = np.broadcast_to(raw, shape)
    allowed = np.ones(shape, dtype=bool) if mask is None else \
        np.broadcast_to(np.asarray(mask, dtype=bool), shape)
    kept = getattr(ctx, "weights", None)        # the plain forward's P; None when blocked
    if ctx.name == "sdpa_weights":
        weights = node.data.astype(np.float64)
    elif kept is not None:
        weights = np.asarray(kept, dtype=np.float64)
    else:
        weights = kernels.masked_softmax(numeric, raw.copy(), allowed)
    values = ctx.parents[2].data.copy() if ctx.name == "sdpa" else None
    return Site(ctx.name, raw, np.broadcast_to(weights, shape), allowed,
                unit_roundoff(node.dtype), head_axis=made_of_split_heads(ctx.parents[0]),
                head=scope_head(node), values=values)


def made_of_split_heads(t: Tensor | None, depth: int = 5) -> bool:
    """Whether ``t`` descends (within ``depth`` ops) from a ``transpose`` of a ``reshape``
    that split the last axis in two: (..., r, H d) -> (..., H, r, d), the head layout."""
    frontier = [t]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            if node is None or node._ctx is None:
                continue
            parent = node._ctx.parents[0]
            if node._ctx.name == "transpose" and parent is not None and parent._ctx is not None \
                    and parent._ctx.name == "reshape" and parent.ndim == \
                    (parent._ctx.parents[0].ndim + 1 if parent._ctx.parents[0] is not None
                     else -1):
                return True
            nxt.extend(p for p in node._ctx.parents if p is not None)
        frontier = nxt
    return False


def scope_head(node: Tensor) -> int | None:
    """``i`` when the node was made in a ``head i`` scope."""
    for name in reversed(node._ctx.scope if node._ctx is not None else ()):
        match = re.fullmatch(r"head (\d+)", name)
        if match:
            return int(match.group(1))
    return None


def kink_signature(outs: Sequence[Tensor]) -> list[tuple[str, bytes]]:
    """Per computed node, its op and the pattern that selects a branch of a non-smooth op:
    the signs of a ``relu`` or ``abs`` input, the arg-max of a ``max``, the condition of a
    ``where``, the pattern an op's ``branches`` gives (maximum, clamp, elu, softplus).
    Two evaluations with different patterns lie on two sides of a kink."""
    sig = []
    for node in toposort([o for o in outs if o.requires_grad]):
        ctx = node._ctx
        if ctx is None:
            continue
        a = ctx.parents[0].data if ctx.parents and ctx.parents[0] is not None else None
        if ctx.name in ("relu", "abs") and a is not None:
            bits = np.sign(a)
        elif ctx.name == "max" and a is not None:
            bits = a == np.max(a, axis=ctx.attrs.get("axis"), keepdims=True)
        elif ctx.name == "where":
            bits = np.asarray(ctx.attrs["cond"])
        else:  # maximum, clamp, elu, softplus: the op says (None: smooth)
            branches = getattr(type(ctx), "branches", None)
            bits = branches(ctx) if branches is not None and not ctx.xp.symbolic else None
            if bits is None:
                sig.append((ctx.name, b""))
                continue
        sig.append((ctx.name, np.ascontiguousarray(bits).tobytes()))
    return sig


def kinks_crossed(base: list[tuple[str, bytes]], other: list[tuple[str, bytes]]) -> list[str]:
    """The ops whose branch differs between two signatures (``graph`` if the graphs
    themselves differ: a Python branch on the data)."""
    if [n for n, _ in base] != [n for n, _ in other]:
        return ["graph"]
    return sorted({n for (n, a), (_, b) in zip(base, other) if a != b})


# ----------------------------------------------------------------------------- an element

def locate(run: Callable[[], Sequence[Tensor]], t: Tensor, index: tuple[int, ...],
           step: float, base: Probe) -> Location:
    """Name ``t[index]`` in the mechanism's terms and tag it (see the module docstring).

    The element is moved by ``step`` both ways, ``run()`` evaluates the function at the
    current inputs, and the element is restored.
    """
    orig = t.data[index].copy()
    probes = []
    try:
        for sign in (1, -1):
            t.data[index] = orig + sign * step
            probes.append(probe(run()))
    finally:
        t.data[index] = orig
    changed = [np.zeros(s.scores.shape, dtype=bool) for s in base.sites]
    rows = [np.zeros(s.scores.shape, dtype=bool) for s in base.sites]
    for p in probes:
        if [s.scores.shape for s in p.sites] != [s.scores.shape for s in base.sites]:
            continue
        for c, r, b, s in zip(changed, rows, base.sites, p.sites):
            c |= b.scores != s.scores
            r |= value_rows(b, s)
    loc = describe(base.sites, changed, rows)
    kinks = sorted(set().union(*(kinks_crossed(base.signature, p.signature) for p in probes)))
    if kinks:
        loc.tags.append(f"near a kink ({', '.join(kinks)})")
    return loc


def value_rows(base: Site, other: Site) -> np.ndarray:
    """The weights (..., m, n) that multiply a row of values that differs between two
    evaluations of a site: column j of P for a changed value row j."""
    out = np.zeros(base.scores.shape, dtype=bool)
    if base.values is None or other.values is None or base.values.shape != other.values.shape:
        return out
    moved = np.any(base.values != other.values, axis=-1)[..., None, :]   # (..., 1, n)
    try:
        return out | np.broadcast_to(moved, out.shape)
    except ValueError:
        return out


def describe(sites: Sequence[Site], changed: Sequence[np.ndarray],
             rows: Sequence[np.ndarray]) -> Location:
    """The location from the score entries the element changed at each site (``changed``)
    or, when it changed none, from the weights on the value rows it changed (``rows``)."""
    by_scores = any(c.any() for c in changed)
    touched = [(s, c) for s, c in zip(sites, changed if by_scores else rows) if c.any()]
    names = [site_label(s, c, scope=len(touched) == 1) for s, c in touched]
    if not by_scores:
        names = [n + " (value)" if n.split(", ")[-1].startswith("key") else n for n in names]
    loc = Location("; ".join(dict.fromkeys(n for n in names if n)))
    loc.tags += weight_tags(touched, saturation=by_scores)
    return loc


def site_label(site: Site, c: np.ndarray, scope: bool = True) -> str:
    """"batch b, head h, query i" (or key j, query i and key j, position p) for the
    changed entries ``c`` of one site; axes the element spans entirely are left out, and
    so is the head of a ``head i`` scope unless ``scope`` (the element reaches one head)."""
    lead = c.shape[:-2]
    parts = []
    for ax, size in enumerate(lead):
        hit = np.flatnonzero(c.any(axis=tuple(i for i in range(c.ndim) if i != ax)))
        head = site.head_axis and ax == len(lead) - 1
        if size > 1 and len(hit) == 1:
            parts.append(f"{'head' if head else 'batch'} {int(hit[0])}")
    if site.head is not None and scope:
        parts.append(f"head {site.head}")
    plane = c.any(axis=tuple(range(c.ndim - 2)))
    return ", ".join(parts + [p for p in [plane_label(plane)] if p])


def plane_label(plane: np.ndarray) -> str:
    """Name a pattern of changed (query, key) entries: a row, a column, one entry, or a
    row and a column through the same position (self-attention)."""
    m, n = plane.shape
    rows, cols = np.flatnonzero(plane.any(1)), np.flatnonzero(plane.any(0))
    if len(rows) == 1 and len(cols) == 1:
        i, j = int(rows[0]), int(cols[0])
        return (f"query {i}, key {j}" if m > 1 and n > 1 else
                f"key {j}" if n > 1 else f"query {i}" if m > 1 else "")
    if len(rows) == 1:
        return f"query {int(rows[0])}"
    if len(cols) == 1:
        return f"key {int(cols[0])}"
    if m == n:
        for p in set(rows) & set(cols):
            cross = np.zeros_like(plane)
            cross[p, :] = cross[:, p] = True
            if not np.any(plane & ~cross):
                return f"position {int(p)}"
    return ""


def weight_tags(touched: Sequence[tuple[Site, np.ndarray]], saturation: bool) -> list[str]:
    """``masked (zero weight)`` when every touched weight is masked; ``saturated`` when a
    touched row with more than one attended key is one-hot to within sqrt(u)."""
    if not touched:
        return []
    if not any(np.any(c & s.allowed) for s, c in touched):
        return ["masked (zero weight)"]
    if not saturation:
        return []
    hit, total, gap = 0, 0, 1.0
    for s, c in touched:
        rows = np.any(c & s.allowed, axis=-1) & (np.sum(s.allowed, axis=-1) > 1)
        row_gap = 1 - np.max(s.weights, axis=-1)
        sat = rows & (row_gap < np.sqrt(s.unit))
        hit, total = hit + int(sat.sum()), total + int(rows.sum())
        gap = min(gap, float(row_gap[sat].min())) if sat.any() else gap
    if not hit:
        return []
    count = f"{hit} of {total} rows, " if total > 1 else ""
    top = "rounds to 1" if gap <= 0 else f"1 - {gap:.1e}"
    return [f"saturated ({count}max weight {top})"]
