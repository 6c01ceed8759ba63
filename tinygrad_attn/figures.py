r"""The built-in figures: textbook attention graphs, forward and backward.

Each figure runs a small attention computation with the engine (seeded, tiny shapes so
every label fits) and draws what the engine recorded.  ``write_figures(folder)``
regenerates them all as ``<name>.svg`` and ``<name>-backward.svg`` with the DOT source
next to each (``.dot``), which is what the tests compare to decide the committed
pictures are current.

================  ===============================================================
``additive``      Bahdanau et al. 2015: $e_j = v^\top \tanh(q W_q + k_j W_k)$
``self``          self-attention: $Q, K, V = X W_q, X W_k, X W_v$, Vaswani et al. 2017
``causal``        scaled dot-product with a causal mask: $\mathrm{softmax}(QK^\top/\sqrt d + M)V$
``multihead``     multi-head attention, 4 heads, each head drawn as one collapsed node
``decoder``       one step of the Bahdanau decoder: attend, then update the state
================  ===============================================================
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .graph import draw, render
from .tensor import Tensor, concat, scope


@dataclass
class Figure:
    """What a figure draws: the forward outputs, the Tensors whose gradient flows back."""

    outputs: tuple[Tensor, ...]
    backward: tuple[Tensor, ...]
    params: list[Tensor] = field(default_factory=list)
    title: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def _inputs(rng: np.random.Generator, **shapes: tuple[int, ...]) -> list[Tensor]:
    return [Tensor(rng.normal(size=s), requires_grad=True, name=n) for n, s in shapes.items()]


def _params(rng: np.random.Generator, **shapes: tuple[int, ...]) -> list[Tensor]:
    out = _inputs(rng, **shapes)
    for p in out:
        p.role = "parameter"
    return out


# ----------------------------------------------------------------------------- mechanisms
# Written like the mechanisms of attention.py, with the same scopes, one line per equation.

def _additive(q: Tensor, K: Tensor, V: Tensor, W_q: Tensor, W_k: Tensor,
              v: Tensor) -> tuple[Tensor, Tensor]:
    """Bahdanau: e_j = v^T tanh(q W_q + k_j W_k), a = softmax(e), c = a V."""
    with scope("score"):
        e = (q @ W_q + K @ W_k).tanh() @ v        # (h,) + (n, h) -> (n, h) -> (n,)
    with scope("softmax"):
        a = e.softmax(axis=-1)                    # (n,)
    with scope("context"):
        c = a @ V                                 # (n,) x (n, d_v) -> (d_v,)
    return c, a


def _sdpa(Q: Tensor, K: Tensor, V: Tensor, causal: bool = False) -> tuple[Tensor, Tensor]:
    """Vaswani: softmax(Q K^T / sqrt(d_k), masked) V."""
    n, d_k = Q.shape[-2], Q.shape[-1]
    with scope("score"):
        s = Q @ K.mT * (1.0 / math.sqrt(d_k))     # (m, d_k) x (d_k, n) -> (m, n)
        if causal:
            s = s.masked_fill(~np.tril(np.ones((n, n), dtype=bool)), -np.inf)
    with scope("softmax"):
        a = s.softmax(axis=-1)                    # (m, n)
    with scope("context"):
        c = a @ V                                 # (m, n) x (n, d_v) -> (m, d_v)
    return c, a


def _multi_head(X: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor,
                heads: int) -> tuple[Tensor, Tensor]:
    """PyTorch layout: head h takes columns h*d_h:(h+1)*d_h; concat, then W_o."""
    Q, K, V = X @ W_q, X @ W_k, X @ W_v           # (n, d) x (d, d) -> (n, d)
    d_h = Q.shape[-1] // heads
    ctxs, weights = [], []
    for h in range(heads):
        cols = slice(h * d_h, (h + 1) * d_h)
        with scope(f"head {h}"):
            c, a = _sdpa(Q[:, cols], K[:, cols], V[:, cols])
        ctxs.append(c)
        weights.append(a)
    with scope("output projection"):
        out = concat(ctxs, axis=-1) @ W_o         # (n, heads * d_h) x (d, d) -> (n, d)
    return out, weights[0]


# ----------------------------------------------------------------------------- figures

def additive() -> Figure:
    """Additive (Bahdanau) attention of one query over n = 4 keys."""
    rng = np.random.default_rng(0)
    q, K, V = _inputs(rng, q=(3,), K=(4, 3), V=(4, 3))
    W_q, W_k, v = _params(rng, W_q=(3, 2), W_k=(3, 2), v=(2,))
    c, a = _additive(q, K, V, W_q, W_k, v)
    c.name, a.name = "c", "a"
    return Figure((c, a), (c,), title="additive attention (Bahdanau et al. 2015)")


def self_attention() -> Figure:
    """Self-attention of a sequence of n = 4 tokens, d = 3, d_k = 2."""
    rng = np.random.default_rng(1)
    (X,) = _inputs(rng, X=(4, 3))
    W_q, W_k, W_v = _params(rng, W_q=(3, 2), W_k=(3, 2), W_v=(3, 2))
    c, a = _sdpa(X @ W_q, X @ W_k, X @ W_v)
    c.name, a.name = "C", "A"
    return Figure((c, a), (c,), title="self-attention")


def causal() -> Figure:
    """Scaled dot-product attention with a causal mask (position i sees j <= i)."""
    rng = np.random.default_rng(2)
    Q, K, V = _inputs(rng, Q=(4, 2), K=(4, 2), V=(4, 2))
    c, a = _sdpa(Q, K, V, causal=True)
    c.name, a.name = "C", "A"
    return Figure((c, a), (c,), title="scaled dot-product attention, causal mask")


def multihead() -> Figure:
    """Multi-head self-attention, 4 heads of d_h = 2; each head is one collapsed node."""
    rng = np.random.default_rng(3)
    (X,) = _inputs(rng, X=(4, 8))
    W_q, W_k, W_v, W_o = _params(rng, W_q=(8, 8), W_k=(8, 8), W_v=(8, 8), W_o=(8, 8))
    out, _ = _multi_head(X, W_q, W_k, W_v, W_o, heads=4)
    out.name = "Y"
    return Figure((out,), (out,), title="multi-head attention (4 heads, collapsed)",
                  options={"collapse": "head *"})


def decoder() -> Figure:
    """One decoder step of Bahdanau et al. 2015 with a tanh RNN cell, for clarity.

    c_i = additive(s_{i-1}, H, H);  s_i = tanh(s_{i-1} W_s + y_{i-1} W_y + c_i W_c);
    logits_i = s_i W_o.  (The paper's cell is gated; the attention part is the same.)
    """
    rng = np.random.default_rng(4)
    s_prev, H, y_prev = _inputs(rng, s_prev=(3,), H=(4, 3), y_prev=(2,))
    W_q, W_k, v = _params(rng, W_q=(3, 2), W_k=(3, 2), v=(2,))
    W_y, W_c, W_s, W_o = _params(rng, W_y=(2, 3), W_c=(3, 3), W_s=(3, 3), W_o=(3, 5))
    with scope("attention"):
        c, a = _additive(s_prev, H, H, W_q, W_k, v)
    with scope("decoder cell"):
        s = (s_prev @ W_s + y_prev @ W_y + c @ W_c).tanh()
    with scope("output"):
        logits = s @ W_o
    s.name, logits.name = "s_i", "logits"
    return Figure((logits, s), (logits, s), title="Bahdanau decoder step")


#: The built-in figures by name (the names of the files in docs/graphs/).
FIGURES: dict[str, Callable[[], Figure]] = {
    "additive": additive,
    "self_attention": self_attention,
    "causal": causal,
    "multihead": multihead,
    "decoder": decoder,
}


def draw_figure(name: str, backward: bool = False, **options: Any):
    """The ``graphviz.Digraph`` of a built-in figure (``options`` as :func:`ta.draw`)."""
    if name not in FIGURES:
        raise ValueError(f"figure: unknown figure {name!r}; the figures are "
                         f"{', '.join(FIGURES)}")
    fig = FIGURES[name]()
    opts = dict(fig.options, params=fig.params or None, formulas=backward,
                title=fig.title + (" — backward" if backward else ""))
    opts.update(options)
    return draw(fig.backward if backward else fig.outputs, backward=backward, **opts)


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


def _load_target(target: str) -> Callable[[], Any]:
    """``module:function`` or ``path/to/file.py:function`` -> the function."""
    where, _, fn_name = target.rpartition(":")
    if not where or not fn_name:
        raise ValueError(f"graph: {target!r} is neither a figure ({', '.join(FIGURES)}) nor "
                         f"'module:function' / 'file.py:function'")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"graph: no such file {where!r}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(path.stem, module)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ValueError(f"graph: cannot import module {where!r}: {exc}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ValueError(f"graph: {where!r} has no function {fn_name!r}")
    return fn


def graph_command(target: str, output: str | Path | None = None, backward: bool = False,
                  renderer: str = "auto", **options: Any) -> Path:
    """``tinygrad-attn graph NAME|module:function [-o FILE] [--backward]``.

    ``target`` is a built-in figure name or a function of no arguments that returns the
    Tensor (or tuple of Tensors) to draw.  The file defaults to ``<name>[-backward].svg``.
    """
    if target in FIGURES:
        g = draw_figure(target, backward=backward, **options)
        stem = target
    else:
        result = _load_target(target)()
        g = draw(result, backward=backward, formulas=backward, **options)
        stem = target.rpartition(":")[2]
    path = Path(output) if output else Path(stem + ("-backward" if backward else "") + ".svg")
    return render(g, path, renderer=renderer)
