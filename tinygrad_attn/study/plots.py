"""Pictures of what the toy-translation models attend to: alignment heat maps.

A heat map shows one (T, S) matrix of attention weights: the input characters along the
top, the output characters down the side.  Every heat map of the project's pictures uses
one colour convention, :data:`CMAP`: weight 0 = white, 1 = black (the reverse of
Bahdanau et al. 2014, figure 3), with a colour bar, and axes labelled in the notation of
``docs/notation.md`` (query $i$, key $j$).  Heads and layers are numbered from 0, as the
graphs' ``head i`` scopes.  matplotlib (Agg, files only) loads when a picture is drawn.
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Any, Sequence

import numpy as np

from .data import EOS, Task, format_date
from .models import Model, RNNSearch

__all__ = ["CMAP", "heatmap", "pyplot", "save_figure", "showcase", "alignment",
           "plot_alignment", "plot_alignments", "plot_alignment_panel"]

#: The one colour map of weights in every picture: 0 = white, 1 = black.
CMAP = "Greys"


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the file-only Agg backend: imported when a picture is
    drawn, never at import time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> Any:
    """Write ``fig`` (110 dpi, tight, no timestamp so files are reproducible) and close it."""
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    pyplot().close(fig)
    return path


def heatmap(ax: Any, data: np.ndarray, xlabel: str = "key $j$", ylabel: str = "query $i$",
            label: str = "weight $P_{ij}$", vmin: float = 0.0, vmax: float = 1.0,
            bar: bool = True, **kw: Any) -> Any:
    """Draw ``data`` on ``ax`` in the project's convention (:data:`CMAP`, ``vmin`` white,
    ``vmax`` black), label both axes, and add a colour bar named ``label``."""
    im = ax.imshow(data, cmap=CMAP, vmin=vmin, vmax=vmax, **kw)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if bar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8, label=label)
    return im


def showcase(task: Task) -> list[str]:
    """Sources whose alignments the heat maps show: one date in several formats
    (2026-11-21, the issue's example), or the first test sources of other tasks."""
    if task.name == "date":
        day = dt.date(2026, 11, 21)
        return [format_date(day, k) for k in (0, 1, 2, 7)]
    return task.test.sources[:2]


def alignment(model: Model, task: Task, source: str) -> tuple[str, np.ndarray]:
    """Greedy translation of ``source`` and its attention weights: (T, S) for the RNN,
    (layers, heads, T, S) for the transformer (T up to and including </s>)."""
    src = np.array([task.src_vocab.encode(source)], dtype=np.int64)
    ids, w = model.greedy(src, task.max_target_len)
    ids = ids[0]
    stop = int(np.argmax(ids == EOS)) + 1 if (ids == EOS).any() else len(ids)
    return task.tgt_vocab.decode(ids), w[0][..., :stop, :]


def plot_alignment(weights: np.ndarray, source: str, target: str, ax: Any,
                   title: str = "") -> Any:
    """Draw one (T, S) weight matrix on ``ax``: input characters along the top, output
    characters down the side, in the convention of :func:`heatmap` (0 = white, 1 = black),
    with a colour bar."""
    rows = list(target) + ["</s>"]
    im = heatmap(ax, weights[:len(rows)], xlabel="input character $j$",
                 ylabel="output character $i$", aspect="auto")
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels([c if c != " " else "␣" for c in source], fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    if title:
        ax.set_title(title, fontsize=9, pad=18)
    return im


def plot_alignments(model: Model, task: Task, sources: Sequence[str], out_dir: str,
                    prefix: str = "model") -> list[str]:
    """Write one PNG per source: the RNN's additive attention, or every cross-attention
    head of every decoder layer of the transformer.  Returns the paths."""
    plt = pyplot()
    paths = []
    for k, source in enumerate(sources):
        target, w = alignment(model, task, source)
        if w.ndim == 2:
            fig, ax = plt.subplots(figsize=(0.28 * len(source) + 1.5, 4.0))
            plot_alignment(w, source, target, ax, f"{source!r} -> {target!r}")
        else:
            L, Hh = w.shape[:2]
            fig, axes = plt.subplots(L, Hh, figsize=(Hh * (0.22 * len(source) + 1.0),
                                                     L * 3.4), squeeze=False)
            for li in range(L):
                for hi in range(Hh):
                    plot_alignment(w[li, hi], source, target, axes[li, hi],
                                   f"layer {li} head {hi}")
            fig.suptitle(f"cross-attention: {source!r} -> {target!r}", fontsize=10)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{prefix}-alignment-{k}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_alignment_panel(model: RNNSearch, task: Task, sources: Sequence[str], path: str,
                         cols: int = 2) -> str:
    """The RNN's alignments of several sources in one figure, panels (a), (b), ...,
    laid out as Bahdanau et al. (2014) lay out the four samples of their figure 3."""
    plt = pyplot()
    if not isinstance(model, RNNSearch):
        raise TypeError(f"plot_alignment_panel: needs an RNNSearch (one attention per "
                        f"step), got {type(model).__name__}; use plot_alignments")
    rows = -(-len(sources) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 5.2, rows * 4.0), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(sources):
            ax.axis("off")
            continue
        target, w = alignment(model, task, sources[k])
        plot_alignment(w, sources[k], target, ax, f"({chr(97 + k)}) {sources[k]!r}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
