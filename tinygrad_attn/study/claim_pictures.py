"""The pictures of the claims (``docs/study.md``, the demo's report): one function per
figure, each drawing into a file and returning the numbers it shows, so the docs quote
what was drawn.

matplotlib (Agg, files only) draws the plots, Graphviz (:func:`~tinygrad_attn.render`)
the graph of image attention; both load when a picture is drawn.  :data:`PICTURES` maps
file names to functions, :func:`write_pictures` draws them into a folder.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import attention as A
from ..engine import Tensor
from .claims import (conv1d, conv1d_as_attention, cross_as_masked_self, cross_mask,
                     future_change, future_gradient, image_example, image_self_attention,
                     log_log_slope, mask_after_softmax, monte_carlo_error, receptive_field,
                     recorded_cost, weights_change)
from .plots import heatmap, pyplot, save_figure

__all__ = ["PICTURES", "write_pictures", "picture_expectation", "picture_convolution",
           "picture_cross", "picture_causal", "picture_image", "picture_image_graph",
           "picture_cost"]


def _example_sequence(n: int = 12, d: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, d)), "x2": rng.normal(size=(n, d)),
            "W_q": rng.normal(size=(d, d)), "W_k": rng.normal(size=(d, d)),
            "W_v": np.eye(d), "kernel": np.array([0.25, 0.5, 0.25])}


def picture_expectation(path: Path) -> dict[str, Any]:
    """Monte-Carlo error of the context against N (log-log), with the fitted slope and the
    theory $\\sqrt{\\operatorname{tr}\\operatorname{Cov}/N}$."""
    rng = np.random.default_rng(0)
    scores, values = rng.normal(size=8) * 1.5, rng.normal(size=(8, 3))
    _, p = A.attend(scores, values)
    p = p.data
    Ns = [2 ** k for k in range(13)]
    err = monte_carlo_error(p, values, Ns, trials=400, seed=1)
    c = p @ values
    theory = math.sqrt(float(np.sum(p[:, None] * (values - c) ** 2))) / np.sqrt(Ns)
    slope = log_log_slope(Ns, err)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.loglog(Ns, err, "o", label=f"measured RMS error (400 trials), slope {slope:.3f}")
    ax.loglog(Ns, theory, "-", color="grey",
              label=r"theory $\sqrt{\mathrm{tr\,Cov}(v_J)/N}$ (slope $-1/2$)")
    ax.set_xlabel("samples N")
    ax.set_ylabel(r"$\sqrt{E\,\|\hat c_N - c\|^2}$")
    ax.set_title(r"Monte-Carlo context $\hat c_N = \frac{1}{N}\sum v_{J_k}$, $J_k \sim p$")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return {"slope": slope, "sample_sizes": Ns, "error": err.tolist(),
            "theory": theory.tolist()}


def picture_convolution(path: Path) -> dict[str, Any]:
    """The weight matrices of a convolution and of self-attention for two inputs."""
    ex = _example_sequence()
    n = ex["x"].shape[0]

    def sa(x: np.ndarray) -> np.ndarray:
        return A.self_attention(x, ex["W_q"], ex["W_k"], ex["W_v"])[1].data

    def conv(x: np.ndarray) -> np.ndarray:
        return conv1d_as_attention(x, ex["kernel"])[1].data[:, 1:n + 1]  # drop padding

    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(8, 6.6), layout="constrained")
    for row, key in enumerate(("x", "x2")):
        for col, (title, fn) in enumerate((("convolution, kernel (1/4, 1/2, 1/4)", conv),
                                           ("self-attention", sa))):
            ax = axes[row, col]
            heatmap(ax, fn(ex[key]), xlabel="input position $j$",
                    ylabel="output position $i$", label="weight $W_{ij}$")
            ax.set_title(f"{title}\ninput {'A' if row == 0 else 'B'}", fontsize=9)
    save_figure(fig, path)
    return {"conv_change": weights_change(conv, ex["x"], ex["x2"]),
            "attention_change": weights_change(sa, ex["x"], ex["x2"]),
            "conv_field": int(receptive_field(lambda t: conv1d(t, ex["kernel"]),
                                              ex["x"], n // 2).sum()),
            "attention_field": int(receptive_field(
                lambda t: A.self_attention(t, ex["W_q"], ex["W_k"], ex["W_v"])[0],
                ex["x"], n // 2).sum()), "n": n}


def picture_cross(path: Path) -> dict[str, Any]:
    """The mask over the concatenation, and the cross-attention weights two ways."""
    rng = np.random.default_rng(0)
    m, n = 4, 6
    x_dec, x_enc = rng.normal(size=(m, 3)), rng.normal(size=(n, 5))
    W_q, W_k, W_v = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    c1, w1 = A.cross_attention(x_dec, x_enc, W_q, W_k, W_v)
    c2, w2 = cross_as_masked_self(x_dec, x_enc, W_q, W_k, W_v)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
    heatmap(axes[0], cross_mask(m, n), xlabel="key $j$ of $Z$", ylabel="query $i$ of $Z$",
            label="mask $M_{ij}$ (1 = may attend)")
    axes[0].set_title("mask over [encoder; decoder]\n(black = may attend)", fontsize=9)
    axes[0].axhline(n - 0.5, color="tab:red")
    axes[0].axvline(n - 0.5, color="tab:red")
    for ax, w, title in ((axes[1], w1.data, "cross_attention(x_dec, x_enc)"),
                         (axes[2], w2.data, "decoder rows of masked self-attention")):
        heatmap(ax, w, xlabel="encoder position $j$", ylabel="decoder position $i$")
        ax.set_title(title, fontsize=9)
    save_figure(fig, path)
    return {"max_context_difference": float(np.max(np.abs(c1.data - c2.data))),
            "max_weights_difference": float(np.max(np.abs(w1.data - w2.data)))}


def picture_causal(path: Path) -> dict[str, Any]:
    """Causal weights, and |d y_t / d x_j| for t = n/2: masked first vs masked after."""
    ex = _example_sequence(n=10)
    n, t = ex["x"].shape[0], 4
    causal = lambda x: A.self_attention(x, ex["W_q"], ex["W_k"], ex["W_v"],  # noqa: E731
                                        causal=True)
    after = lambda x: mask_after_softmax(x, ex["W_q"], ex["W_k"], ex["W_v"])  # noqa: E731
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6), layout="constrained")
    heatmap(axes[0], causal(ex["x"])[1].data, xlabel="key $j$", ylabel="query $t$",
            label="weight $P_{tj}$")
    axes[0].set_title("causal weights (exactly 0 above the diagonal)", fontsize=9)
    out = {}
    for label, fn, marker in (("mask on the scores (correct)", causal, "o"),
                              ("mask after the softmax (leaks)", after, "x")):
        g = np.abs(future_gradient(fn, ex["x"], t)).sum(axis=1)
        out[label] = {"future_gradient": float(g[t + 1:].max()),
                      "future_change": future_change(fn, ex["x"], t)}
        axes[1].semilogy(range(n), np.where(g > 0, g, 1e-18), marker, label=label)
    axes[1].axvline(t + 0.5, color="grey", ls=":")
    axes[1].set_ylim(1e-19, None)
    axes[1].set_xlabel("input position $j$")
    axes[1].set_ylabel(rf"$\sum |\partial O_{{{t}}} / \partial x_j|$ (0 drawn at 1e-18)")
    axes[1].set_title(f"what output t = {t} depends on", fontsize=9)
    axes[1].legend(fontsize=8)
    save_figure(fig, path)
    return out


def picture_image(path: Path) -> dict[str, Any]:
    """The synthetic image, the attention map of one patch over all patches, the output."""
    ex = image_example()
    img, p = ex["image"], ex["p"]
    out, w = image_self_attention(img, p, ex["W_q"], ex["W_k"], ex["W_v"], ex["W_o"])
    g = img.shape[0] // p
    q = ex["query"]
    amap = w.data[q].reshape(g, g)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    heatmap(axes[0], img[:, :, 0], xlabel="pixel column", ylabel="pixel row",
            label="pixel value (0 = white, 1 = black)")
    a, b = divmod(q, g)
    axes[0].add_patch(plt.Rectangle((b * p - 0.5, a * p - 0.5), p, p, fill=False,
                                    ec="tab:red", lw=2))
    axes[0].set_title(f"image {img.shape[0]}x{img.shape[1]}, {g * g} patches of {p}x{p}\n"
                      f"query patch ({a}, {b}) in red", fontsize=9)
    heatmap(axes[1], amap, xlabel="patch column $b$", ylabel="patch row $a$",
            label=f"weight $P_{{{q}j}}$ of key patch $j$", vmax=float(amap.max()))
    axes[1].set_title(f"weights of patch ({a}, {b})\nover the {g * g} patches", fontsize=9)
    shown = out.data[:, :, 0]
    heatmap(axes[2], shown, xlabel="pixel column", ylabel="pixel row",
            label="output value", vmin=float(shown.min()), vmax=float(shown.max()))
    axes[2].set_title("output: each patch a weighted average", fontsize=9)
    save_figure(fig, path)
    order = np.argsort(-w.data[q])
    return {"query": (a, b), "top": [(divmod(int(j), g), float(w.data[q, j]))
                                     for j in order[:10]],
            "background": float(np.median(w.data[q]))}


def picture_image_graph(path: Path) -> dict[str, Any]:
    """The recorded forward graph of image self-attention, kept tiny so every label fits:
    a 4x4 image in four 2x2 patches."""
    from ..pictures.graph import render

    rng = np.random.default_rng(0)
    img = Tensor(rng.random((4, 4, 1)), requires_grad=True, name="image")
    W = [Tensor(rng.normal(size=s), requires_grad=True, name=nm)
         for nm, s in (("W_q", (4, 2)), ("W_k", (4, 2)), ("W_v", (4, 2)), ("W_o", (2, 4)))]
    for t in W:
        t.role = "parameter"
    out, _ = image_self_attention(img, 2, *W)
    render(out, path, title="self-attention over image patches (4x4 image, p = 2)")
    return {}


def picture_cost(path: Path) -> dict[str, Any]:
    """Counted cost of self-attention against n (log-log): multiply-adds, floats held."""
    ns = [2 ** k for k in range(2, 11)]
    counts = [recorded_cost(n, 16) for n in ns]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for key, label in (("multiply_adds", "multiply-adds"), ("floats", "floats held"),
                       ("pairs", "weights (pairs)")):
        ys = [c[key] for c in counts]
        ax.loglog(ns, ys, "o-", label=f"{label}, slope {log_log_slope(ns[-4:], ys[-4:]):.2f}")
    ax.loglog(ns, [n * n for n in ns], ":", color="grey", label=r"$n^2$")
    ax.set_xlabel("tokens $n$")
    ax.set_ylabel("count")
    ax.set_title("self-attention, d = d_k = 16: counted on the recorded graph", fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return {"n": ns, "counts": counts}


#: The pictures of docs/study.md: file name -> function(path) -> the numbers drawn.
PICTURES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "claims_expectation.png": picture_expectation,
    "claims_convolution.png": picture_convolution,
    "claims_cross.png": picture_cross,
    "claims_causal.png": picture_causal,
    "claims_image.png": picture_image,
    "claims_image_graph.svg": picture_image_graph,
    "claims_cost.png": picture_cost,
}


def write_pictures(folder: str | Path, names: Sequence[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Draw the pictures (all, or ``names``) into ``folder``; returns file -> numbers."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unknown = set(names or ()) - set(PICTURES)
    if unknown:
        raise ValueError(f"write_pictures: unknown pictures {sorted(unknown)}; choose from "
                         f"{', '.join(PICTURES)}")
    return {name: PICTURES[name](folder / name) for name in (names or PICTURES)}
