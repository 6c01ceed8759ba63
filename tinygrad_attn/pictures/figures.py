r"""The built-in figures: textbook attention graphs, forward and backward.

Each figure runs a small attention computation with the engine (seeded, tiny shapes so
every label fits) and draws what the engine recorded.  ``write_figures(folder)``
regenerates them all as ``<name>.svg`` and ``<name>-backward.svg`` with the DOT source
next to each (``.dot``), which is what the tests compare to decide the committed
pictures are current.

==================  =============================================================
``additive``        Bahdanau et al. 2014: $e_j = v^\top \tanh(q W_q + k_j W_k)$
``self_attention``  self-attention: $Q, K, V = X W_q, X W_k, X W_v$, Vaswani et al. 2017
``causal``          scaled dot-product, causal mask: scores $-\infty$ for $j > i$, then $PV$
``multihead``       multi-head attention, 4 heads, each head drawn as one collapsed node
``decoder``         one step of the Bahdanau decoder: attend, then update the state (its
                    backward graph laid out for a 16:9 slide)
==================  =============================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .. import attention
from ..engine import Tensor
from .graph import draw, render

if TYPE_CHECKING:  # annotations only: graphviz loads when a picture is made
    import graphviz


@dataclass
class Figure:
    """What a figure draws: the forward outputs, the Tensors whose gradient flows back."""

    outputs: tuple[Tensor, ...]
    backward: tuple[Tensor, ...]
    params: list[Tensor] = field(default_factory=list)
    title: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    #: The backward drawing laid out for a 16:9 slide: left to right, height/width 9/16.
    slide: bool = False


def _inputs(rng: np.random.Generator, **shapes: tuple[int, ...]) -> list[Tensor]:
    return [Tensor(rng.normal(size=s), requires_grad=True, name=n) for n, s in shapes.items()]


def _params(rng: np.random.Generator, **shapes: tuple[int, ...]) -> list[Tensor]:
    out = _inputs(rng, **shapes)
    for p in out:
        p.role = "parameter"
    return out


# ----------------------------------------------------------------------------- figures
# Each runs the project's own mechanism (attention/, nn.py) with the composed ops
# (fused=False), whose scopes (projection, score, softmax, context, head i, output
# projection) become the clusters of the picture.

def additive() -> Figure:
    """Additive (Bahdanau) attention of m = 1 query over n = 4 keys, d_v = 3."""
    rng = np.random.default_rng(0)
    q, K, V = _inputs(rng, q=(1, 3), K=(4, 3), V=(4, 3))
    W_q, W_k, v = _params(rng, W_q=(3, 2), W_k=(3, 2), v=(2,))
    c, a = attention.additive(q, K, V, W_q, W_k, v)
    return Figure((c, a), (c,), title="additive attention (Bahdanau et al. 2014)")


def self_attention() -> Figure:
    """Self-attention of a sequence of 4 tokens (m = n = 4), d = 3, d_k = d_v = 2."""
    rng = np.random.default_rng(1)
    (X,) = _inputs(rng, X=(4, 3))
    W_q, W_k, W_v = _params(rng, W_q=(3, 2), W_k=(3, 2), W_v=(3, 2))
    c, a = attention.self_attention(X, W_q, W_k, W_v, fused=False)
    return Figure((c, a), (c,), title="self-attention (Vaswani et al. 2017)")


def causal() -> Figure:
    """Scaled dot-product attention with a causal mask (query i sees keys j <= i),
    m = n = 4, d_k = d_v = 2."""
    rng = np.random.default_rng(2)
    Q, K, V = _inputs(rng, Q=(4, 2), K=(4, 2), V=(4, 2))
    c, a = attention.scaled_dot_product(Q, K, V, causal=True, fused=False)
    return Figure((c, a), (c,), title="scaled dot-product attention, causal mask")


def multihead() -> Figure:
    """Multi-head self-attention, 4 heads of d_k = d_v = 2 (m = n = 4); each head is one
    collapsed node."""
    rng = np.random.default_rng(3)
    (X,) = _inputs(rng, X=(4, 8))
    W_q, W_k, W_v, W_o = _params(rng, W_q=(8, 8), W_k=(8, 8), W_v=(8, 8), W_o=(8, 8))
    out, _ = attention.multi_head(X, X, W_q, W_k, W_v, W_o, num_heads=4, fused=False)
    return Figure((out,), (out,), title="multi-head attention (4 heads, collapsed)",
                  options={"collapse": "head *"})


def decoder() -> Figure:
    """One step of the Bahdanau decoder (nn.BahdanauDecoderCell, tanh RNN cell):
    attend over the encoder states from s_{i-1}, then s_i = tanh([y_{i-1}; c_i] W_x + ...).
    """
    from ..nn import BahdanauDecoderCell

    rng = np.random.default_rng(4)
    cell = BahdanauDecoderCell(d_in=2, d_enc=3, hidden=3, d_attn=2, cell="tanh", rng=4,
                               name="dec")
    y_prev, s_prev, h = _inputs(rng, y_prev=(2,), s_prev=(3,), h=(4, 3))  # encoder states
    s, c, a = cell(y_prev, s_prev, h)
    s.name, a.name = "s_i", "weights"
    return Figure((s, a), (s,), params=cell.parameters(), title="Bahdanau decoder step",
                  slide=True)


#: Height over width of a 16:9 slide.
SLIDE = 9 / 16

#: The built-in figures by name (the names of the files in docs/graphs/).
FIGURES: dict[str, Callable[[], Figure]] = {
    "additive": additive,
    "self_attention": self_attention,
    "causal": causal,
    "multihead": multihead,
    "decoder": decoder,
}


def draw_figure(name: str, backward: bool = False, **options: Any) -> graphviz.Digraph:
    """The ``graphviz.Digraph`` of a built-in figure (``options`` as :func:`ta.draw`)."""
    if name not in FIGURES:
        raise ValueError(f"figure: unknown figure {name!r}; the figures are "
                         f"{', '.join(FIGURES)}")
    fig = FIGURES[name]()
    slide = backward and fig.slide
    opts = dict(fig.options, params=fig.params or None, formulas=backward,
                title=fig.title + (" — backward" if backward else ""))
    if slide:
        opts["rankdir"] = "LR"
    opts.update(options)
    g = draw(fig.backward if backward else fig.outputs, backward=backward, **opts)
    if slide:
        g.attr(ratio=str(SLIDE))  # stretch the wide left-to-right layout to 16:9
    return g


def write_figures(folder: str | Path, renderer: str = "auto",
                  formats: tuple[str, ...] = ("svg", "dot")) -> list[Path]:
    """Render every built-in figure, forward and backward, into ``folder``.

    Writes ``<name>.svg``/``.dot`` and ``<name>-backward.svg``/``.dot``; returns the paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FIGURES:
        for backward in (False, True):
            g = draw_figure(name, backward=backward)
            stem = name + ("-backward" if backward else "")
            for fmt in formats:
                written.append(render(g, folder / f"{stem}.{fmt}", renderer=renderer))
    return written


def graph_command(target: str | Callable[..., Any], output: str | Path | None = None,
                  backward: bool = False, renderer: str = "auto",
                  inputs: Sequence[Any] = (), **options: Any) -> Path:
    """``tinygrad-attn graph NAME|module:function [--shape ...] [-o FILE] [--backward]``.

    ``target`` is a built-in figure name, or a function that returns the Tensor (or tuple
    of Tensors) to draw when called with ``inputs`` (the command line loads it from
    ``module:function`` and makes the inputs from ``--shape``).  The file defaults to
    ``<name>[-backward].svg``.
    """
    if target in FIGURES:
        g = draw_figure(target, backward=backward, **options)
        stem = target
    elif callable(target):
        g = draw(target(*inputs), backward=backward, formulas=backward, **options)
        stem = target.__name__
    else:
        raise ValueError(f"graph: {target!r} is not a figure ({', '.join(FIGURES)}); give a "
                         f"figure or 'module:function' / 'file.py:function'")
    path = Path(output) if output else Path(stem + ("-backward" if backward else "") + ".svg")
    return render(g, path, renderer=renderer)
