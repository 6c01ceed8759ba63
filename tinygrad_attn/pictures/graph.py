r"""Draw the graph the engine records: forward ops or backward VJPs, as Graphviz.

Every non-leaf :class:`~tinygrad_attn.engine.Tensor` keeps the op that made it
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
node (:mod:`.clusters`).  In the backward graph each VJP node receives the upstream
gradient ``g``, each leaf ``x`` receives its adjoint ``x̄`` (:mod:`.labels`), and the
adjoint of a Tensor used twice is the *sum* of its two VJP contributions, drawn as an
explicit ``+`` node.  The node labels are in :mod:`.labels`, the layout programs in
:mod:`.renderers`.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import Tensor, no_grad, run_backward, toposort
from .clusters import STYLE, ClusterBuilder, Collapse, collapse_rule
from .labels import (adjoint, formula_lines, is_scalar_const, leaf_kind, leaf_label, leaf_name,
                     op_title, shape_text, summary, vjp_formula)
from .renderers import available_renderers, output_format, render_source, write_source

if TYPE_CHECKING:  # annotations only: graphviz loads when a picture is made
    import graphviz

__all__ = ["MAX_NODES", "Collapse", "available_renderers", "digraph", "draw", "render",
           "render_source", "vjp_formula"]

#: Above this many nodes, ``draw`` collapses every top-level scope unless told otherwise.
MAX_NODES = 500


def digraph(name: str) -> graphviz.Digraph:
    """An empty ``graphviz.Digraph`` that a notebook displays as SVG whether or not the
    system Graphviz is installed (:func:`digraph_class`)."""
    return digraph_class()(name=name)


@functools.lru_cache(maxsize=None)
def digraph_class() -> type:
    """The ``graphviz.Digraph`` subclass :func:`draw` returns; graphviz is imported here,
    when a picture is made.

    ``graphviz.Digraph`` displays itself in Jupyter by running the system ``dot``, and
    raises ``ExecutableNotFound`` where it is missing; this one lays out with
    :func:`~tinygrad_attn.pictures.renderers.render_source` (the system ``dot`` when on
    PATH, else the embedded WebAssembly Graphviz), so ``ta.draw(y)`` as a cell's last line
    shows the picture after a plain ``pip install``.
    """
    try:
        import graphviz
    except ImportError:  # pragma: no cover - graphviz is a declared dependency
        raise ImportError("draw: needs the graphviz Python package: pip install graphviz") \
            from None

    class Digraph(graphviz.Digraph):
        """A ``graphviz.Digraph`` whose notebook display (SVG) needs no system Graphviz."""

        def svg(self, renderer: str = "auto") -> str:
            """The picture as SVG text (``renderer``: ``"auto"``, ``"dot"`` or ``"wasm"``)."""
            return render_source(self.source, "svg", renderer).decode("utf-8")

        def _repr_svg_(self) -> str:
            return self.svg()

        def _repr_image_svg_xml(self) -> str:
            return self.svg()

        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                              **kwargs: Any) -> dict[str, str]:
            return {"image/svg+xml": self.svg()}

    Digraph.__module__, Digraph.__qualname__ = __name__, "Digraph"
    return Digraph


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
    An ``expand`` or ``reshape`` that keeps the shape changes nothing: its input is drawn
    in its place.
    """
    order = toposort(outputs, constants=True)
    nodes = [_Node(t, i) for i, t in enumerate(order)]
    by_id = {id(n.t): n for n in nodes}
    for n in nodes:
        for p in _parent_tensors(n):
            if n not in by_id[id(p)].consumers:
                by_id[id(p)].consumers.append(n)
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


def _parent_tensors(n: _Node) -> list[Tensor]:
    ctx = n.t._ctx
    return [] if ctx is None else [p for p in ctx.parents if p is not None]


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


# ----------------------------------------------------------------------------- options

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


def _default_collapse(nodes: list[_Node], collapse: Collapse,
                      max_nodes: int) -> tuple[Collapse, str]:
    """A graph over ``max_nodes`` with scopes is collapsed unless ``collapse`` says
    otherwise; the note tells the reader why."""
    if collapse is not None or len(nodes) <= max_nodes:
        return collapse, ""
    if any(n.scope for n in nodes):
        return True, (f"{len(nodes)} nodes: scopes drawn collapsed "
                      f"(draw(..., collapse=False) draws every node)")
    return collapse, f"{len(nodes)} nodes (no scopes to collapse)"


def _gradients(outs: list[Tensor], nodes: list[_Node]) -> dict[int, np.ndarray]:
    """The adjoint of every node that requires grad, by ``id``; ``.grad`` is not touched."""
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


# ----------------------------------------------------------------------------- drawing

def draw(output: Tensor | Sequence[Tensor], backward: bool = False, *,
         collapse: Collapse = None, show_values: bool = False, show_grads: bool = False,
         formulas: bool = False, rankdir: str = "TB", params: Any = None,
         title: str | None = None, max_nodes: int = MAX_NODES) -> graphviz.Digraph:
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
    outs = _as_outputs(output)
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    nodes, by_id = _walk(outs)
    collapse, note = _default_collapse(nodes, collapse, max_nodes)
    build = ClusterBuilder(collapse_rule(collapse))
    grads = _gradients(outs, nodes) if show_grads else {}
    pids = _param_ids(params)

    g = digraph("backward" if backward else "forward")
    g.attr(rankdir=rankdir, nodesep="0.3", ranksep="0.35", fontname="Helvetica",
           newrank="true", ordering="out")
    g.attr("node", fontname="Helvetica", fontsize="11", margin="0.08,0.04", height="0.3")
    g.attr("edge", color="#555555", arrowsize="0.7")
    label = "\n".join(x for x in (title, note) if x)
    if label:
        g.attr(label=label, labelloc="t", fontsize="13")
    if backward:
        _draw_backward(build, outs, nodes, pids, grads, show_values, formulas)
        build.finish(g, "VJPs")
    else:
        _draw_forward(build, outs, nodes, by_id, pids, grads, show_values)
        build.finish(g, "ops")
    return g


def _extra(t: Tensor, grads: dict[int, np.ndarray], show_values: bool,
           grad_prefix: str) -> str:
    """The value and gradient lines under a label (``show_values``, ``show_grads``)."""
    lines = []
    if show_values:
        lines.append(summary(t.data))
    if id(t) in grads:
        lines.append(grad_prefix + summary(grads[id(t)]))
    return "".join("\n" + x for x in lines)


def _draw_forward(build: ClusterBuilder, outs: list[Tensor], nodes: list[_Node],
                  by_id: dict[int, _Node], pids: set[int], grads: dict[int, np.ndarray],
                  show_values: bool) -> None:
    """Leaves and ops, with an edge for each use of a Tensor, in data-flow order."""
    out_ids = {id(t) for t in outs}
    drawn: dict[int, str] = {}
    for n in nodes:
        t, is_out = n.t, id(n.t) in out_ids
        extra = _extra(t, grads, show_values, "grad ")
        if n.kind == "op":
            label = op_title(t) + "\n" + shape_text(t.shape)
            if t.name:
                label = f"{t.name} = {label}"
            drawn[id(t)] = build.node(n.id, n.scope, label + extra, STYLE["op"], is_out)
        elif is_scalar_const(t) and n.consumers:
            continue  # folded into the consumer's label
        else:
            kind = leaf_kind(t, pids)
            drawn[id(t)] = build.node(n.id, _leaf_scope(n, kind), leaf_label(t, kind) + extra,
                                      STYLE[kind], is_out, absorb=False)
    for n in nodes:
        for p in _parent_tensors(n):
            p = by_id[id(p)].t
            if id(p) in drawn:
                src, dst = drawn[id(p)], drawn[id(n.t)]
                if src != dst:
                    build.note_leaving(src, shape_text(p.shape))
                build.edge(src, dst)


def _draw_backward(build: ClusterBuilder, outs: list[Tensor], nodes: list[_Node],
                   pids: set[int], grads: dict[int, np.ndarray], show_values: bool,
                   formulas: bool) -> None:
    """Seed -> VJP of each op -> (+ where a Tensor has several users) -> leaf adjoints."""
    live = [n for n in nodes if n.t.requires_grad]
    target = {id(n.t): _adjoint_node(build, n, pids, grads, show_values, formulas)
              for n in live}
    seeds: dict[int, str] = {}
    for t in outs:
        if t.requires_grad and id(t) not in seeds:
            seeds[id(t)] = seed = f"seed{len(seeds)}"
            text = f"{adjoint(t.name or 'L')} = 1" if t.size == 1 else \
                f"upstream {adjoint(t.name or 'y')}\n{shape_text(t.shape)}"
            build.node(seed, (), text, STYLE["op"], output=True)
    live_ids = set(target)
    for n in live:  # the users whose VJP sends a contribution to n, summed if several
        srcs = [build.where("b" + u.id, u.scope)[0] for u in n.consumers
                if id(u.t) in live_ids]
        srcs += [seeds[id(n.t)]] if id(n.t) in seeds else []
        srcs = list(dict.fromkeys(srcs))  # users inside one collapsed scope: one edge
        dst = target[id(n.t)]
        if len(srcs) > 1:
            plus = build.node("p" + n.id, _grad_scope(n, pids), "+", STYLE["sum"],
                              absorb=n.kind == "op")
            for s in srcs:
                build.edge(s, plus)
            build.edge(plus, dst)
        else:
            for s in srcs:
                build.edge(s, dst)


def _grad_scope(n: _Node, pids: set[int]) -> tuple[str, ...]:
    """The scope the backward nodes of ``n`` are drawn in: its op's, or its leaf's."""
    return n.scope if n.kind == "op" else _leaf_scope(n, leaf_kind(n.t, pids))


def _adjoint_node(build: ClusterBuilder, n: _Node, pids: set[int],
                  grads: dict[int, np.ndarray], show_values: bool, formulas: bool) -> str:
    """Where the adjoint of ``n`` is collected: the VJP node of its op (receiving ``g``,
    with the formula if asked), or the leaf's ``x̄`` node."""
    t = n.t
    if n.kind == "op":
        label = f"{op_title(t)} VJP\ng {shape_text(t.shape)}"
        if formulas:
            label += "".join("\n" + line for line in formula_lines(t._ctx, t.shape))
        label += _extra(t, grads, show_values, "g ")
        return build.node("b" + n.id, n.scope, label, STYLE["vjp"])
    kind = leaf_kind(t, pids)
    label = f"{adjoint(leaf_name(t, kind))}\n{shape_text(t.shape)}"
    label += _extra(t, grads, show_values, "")
    return build.node("b" + n.id, _grad_scope(n, pids), label, STYLE[kind], absorb=False)


# ----------------------------------------------------------------------------- rendering

def render(output: Any, path: str | os.PathLike, *, renderer: str = "auto",
           **draw_options: Any) -> Path:
    """Draw ``output`` (as :func:`draw`, same options) and write it to ``path``.

    The suffix picks the format: ``.svg``, ``.png``, ``.pdf``, or ``.dot``/``.gv`` for
    the DOT source itself.  ``output`` may also be a ready ``graphviz.Digraph``.
    ``renderer``: ``"auto"`` (system ``dot`` if on PATH, else the embedded Graphviz),
    ``"dot"`` or ``"wasm"`` (:mod:`.renderers`).  Returns the path written.
    """
    output_format(path)  # a wrong suffix or directory fails before drawing
    if isinstance(output, (Tensor, tuple, list)):
        source = draw(output, **draw_options).source
    else:
        import graphviz

        if not isinstance(output, graphviz.Digraph):
            _as_outputs(output)  # the error that says what can be drawn
        if draw_options:
            raise TypeError(f"render: draw options {sorted(draw_options)} cannot apply to a "
                            f"ready graphviz.Digraph; pass the Tensor instead")
        source = output.source
    return write_source(source, path, renderer)
