r"""The basics a course starts from, measured with the engine: why scores are scaled by
$1/\sqrt{d_k}$, and what each mechanism's weights look like on the same queries and keys.

* :func:`scaling` -- for widths $d_k = 1 \dots 1024$: the variance of the scores
  $q \cdot k$ (unit-variance entries), how saturated the softmax is (the mean largest
  weight of a row), and the size of the score gradient $\bar S$, with and without the
  scale $s = 1/\sqrt{d_k}$ (Vaswani et al. 2017, sec. 3.2.1, footnote 4: the variance
  argument);
* :func:`mechanism_weights` -- the weights $P$ of every mechanism of
  :mod:`tinygrad_attn.attention` for one set of $m = 4$ queries and $n = 6$ keys;
* :data:`PICTURES` and :func:`write_pictures` draw both (``docs/images/basics_*.png``).

matplotlib loads only when a picture is drawn.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import attention as A
from ..engine import Tensor, grad
from .plots import heatmap, pyplot, save_figure

__all__ = ["scaling", "mechanism_weights", "MECHANISMS", "picture_scaling",
           "picture_mechanisms", "PICTURES", "write_pictures"]

WIDTHS: tuple[int, ...] = tuple(2 ** k for k in range(11))


def _score_stats(d_k: int, scaled: bool, rows: int, n: int,
                 rng: np.random.Generator) -> dict[str, float]:
    """Score variance, mean largest weight and RMS of the score gradient at one width."""
    Q = rng.standard_normal((rows, d_k))
    K = rng.standard_normal((n, d_k))
    S = Tensor(Q @ K.T * (1 / math.sqrt(d_k) if scaled else 1.0), requires_grad=True)
    P = S.softmax(axis=-1)
    upstream = rng.standard_normal((rows, n))                 # a random adjoint P-bar
    (S_bar,) = grad((P * Tensor(upstream)).sum(), [S])
    return {"variance": float(S.data.var()), "max_weight": float(P.data.max(axis=1).mean()),
            "gradient": float(np.sqrt(np.mean(S_bar.data ** 2)))}


def scaling(widths: Sequence[int] = WIDTHS, rows: int = 2000, n: int = 16,
            seed: int = 0) -> dict[str, list[float]]:
    r"""For each width $d_k$: the score variance, the mean largest weight per row and the
    RMS of $\bar S$ (for a random upstream $\bar P$), unscaled ($q \cdot k$) and scaled
    ($q \cdot k / \sqrt{d_k}$), over ``rows`` queries against ``n`` keys with standard
    normal entries.  Deterministic for a ``seed``."""
    out: dict[str, list[float]] = {"d_k": [float(d) for d in widths]}
    for scaled in (False, True):
        rng = np.random.default_rng(seed)
        stats = [_score_stats(d, scaled, rows, n, rng) for d in widths]
        tag = "scaled" if scaled else "unscaled"
        for key in ("variance", "max_weight", "gradient"):
            out[f"{key}_{tag}"] = [s[key] for s in stats]
    return out


def _inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    m, n, d, h = 4, 6, 4, 5
    return {"Q": rng.standard_normal((m, d)), "K": rng.standard_normal((n, d)),
            "V": rng.standard_normal((n, 2)), "W_q": rng.standard_normal((d, h)),
            "W_k": rng.standard_normal((d, h)), "v": rng.standard_normal(h),
            "W_loc": rng.standard_normal((d, n)), "W": rng.standard_normal((d, d))}


#: Each mechanism on the inputs of :func:`_inputs`: name -> (its weights P, its score).
MECHANISMS: dict[str, Callable[[dict[str, np.ndarray]], Any]] = {
    "content (cosine, β = 4)": lambda x: A.content(x["Q"], x["K"], x["V"], beta=4.0),
    "additive": lambda x: A.additive(x["Q"], x["K"], x["V"], x["W_q"], x["W_k"], x["v"]),
    "location": lambda x: A.location(x["Q"], x["V"], x["W_loc"]),
    "general": lambda x: A.general(x["Q"], x["K"], x["V"], x["W"]),
    "dot": lambda x: A.dot_product(x["Q"], x["K"], x["V"]),
    "scaled dot-product": lambda x: A.scaled_dot_product(x["Q"], x["K"], x["V"]),
}


def mechanism_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """The (4, 6) weights of every mechanism on the same queries, keys and values."""
    x = _inputs(seed)
    return {name: fn(x)[1].data for name, fn in MECHANISMS.items()}


def picture_scaling(path: Path) -> dict[str, Any]:
    """Three panels against $d_k$: score variance, mean largest weight, RMS of $\\bar S$."""
    r = scaling()
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    panels = (("variance", "variance of the scores $S_{ij}$", True),
              ("max_weight", r"mean largest weight $\max_j P_{ij}$", False),
              ("gradient", r"RMS of the score adjoint $\bar S_{ij}$", True))
    for ax, (key, ylabel, logy) in zip(axes, panels):
        ax.plot(r["d_k"], r[f"{key}_unscaled"], "o-", color="black",
                label=r"unscaled $q \cdot k$")
        ax.plot(r["d_k"], r[f"{key}_scaled"], "s--", color="grey",
                label=r"scaled $q \cdot k / \sqrt{d_k}$")
        ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("key width $d_k$")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    fig.suptitle("why $1/\\sqrt{d_k}$: 2000 queries against 16 keys, entries N(0, 1)",
                 fontsize=10)
    save_figure(fig, path)
    return r


def picture_mechanisms(path: Path) -> dict[str, Any]:
    """One heat map of the weights per mechanism, all on the same queries and keys."""
    weights = mechanism_weights()
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(12, 5.6), layout="constrained")
    for ax, (name, w) in zip(axes.ravel(), weights.items()):
        heatmap(ax, w)
        ax.set_title(name, fontsize=9)
    fig.suptitle("the weights $P$ of each mechanism: the same 4 queries and 6 keys",
                 fontsize=10)
    save_figure(fig, path)
    return {k: v.round(3).tolist() for k, v in weights.items()}


#: The pictures of the basics: file name -> function(path) -> the numbers drawn.
PICTURES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "basics_scaling.png": picture_scaling,
    "basics_mechanisms.png": picture_mechanisms,
}


def write_pictures(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Draw every picture of :data:`PICTURES` into ``folder``; returns file -> numbers."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {name: fn(folder / name) for name, fn in PICTURES.items()}
