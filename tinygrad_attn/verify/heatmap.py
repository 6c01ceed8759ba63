"""Error heat maps of a gradcheck report: where in each input the engine disagrees.

:func:`write_heatmaps` draws, per checked input, the relative error of every element
(:math:`|e - r| / (|r| + \\mathrm{atol}/\\mathrm{rtol})`, the quantity the verdict holds to
``rtol``; see :mod:`.report`) on a log scale -- one panel per reference, finite
differences and SymPy when it was asked -- with ``rtol`` marked on the colour bar and
the worst element outlined, and writes one PNG per input.  An input of more than two
axes is drawn as its last axis against all the others flattened (row labels name the
leading indices).  matplotlib loads here only; the figures are drawn on an Agg canvas of
their own, without pyplot, so a notebook's backend is left alone.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .report import Comparison, GradcheckReport, InputReport

__all__ = ["as_matrix", "draw", "file_name", "write_heatmaps"]


def write_heatmaps(report: GradcheckReport, directory: Path) -> list[str]:
    """One PNG per input of ``report`` in ``directory`` (made if missing); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    used: set[str] = set()
    for row in report.inputs:
        panels = [c for c in (row.fd, row.sym) if c is not None and c.relative is not None]
        if not panels or not row.shape and not panels[0].relative.size:
            continue
        path = directory / file_name(row.name, used)
        draw(row, panels).savefig(path, dpi=110)
        written.append(str(path))
    return written


def file_name(name: str, used: set[str]) -> str:
    """``gradcheck_<name>.png`` with the name made safe for a file system and unique."""
    stem = "gradcheck_" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "input")
    candidate, i = stem, 1
    while candidate in used:
        i += 1
        candidate = f"{stem}_{i}"
    used.add(candidate)
    return candidate + ".png"


def as_matrix(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``values`` as a 2-D array (a scalar is 1x1, a vector one row, more axes their
    leading indices flattened into rows) and the label of each row."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim <= 1:
        return a.reshape(1, -1), [""]
    return a.reshape(-1, a.shape[-1]), [str(list(i)) for i in np.ndindex(*a.shape[:-1])]


def draw(row: InputReport, panels: list[Comparison]) -> Any:
    """The figure of one input (a matplotlib ``Figure`` on its own Agg canvas): a panel
    per reference, each on its own log scale with its ``rtol`` marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mat, labels = as_matrix(panels[0].relative)
    rows, cols = mat.shape
    fig = Figure(figsize=(min(4 + 0.35 * cols, 14) * len(panels), min(2.5 + 0.3 * rows, 12)))
    FigureCanvasAgg(fig)
    for ax, comparison in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        panel(fig, ax, comparison, row.name, labels)
    fig.tight_layout()
    return fig


def panel(fig: Any, ax: Any, c: Comparison, name: str, labels: list[str]) -> None:
    """One reference's relative errors: log10 colours, ``rtol`` on the colour bar, the
    worst element outlined."""
    from matplotlib.patches import Rectangle

    mat, _ = as_matrix(c.relative)
    positive = mat[mat > 0]
    top = float(np.log10(max(positive.max(), c.rtol or 0))) if positive.size else 0.0
    low = max(float(np.log10(positive.min())) if positive.size else top - 1, top - 12)
    low = min(low, top - 1)
    shown = np.log10(np.where(mat > 0, mat, 10.0 ** low))
    image = ax.imshow(shown, cmap="magma_r", vmin=low, vmax=top, aspect="auto",
                      interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, label="log10 relative error (green line: rtol)"
                       if c.rtol else "log10 relative error")
    if c.rtol:
        bar.ax.axhline(np.log10(c.rtol), color="#2ecc71", lw=2)
    flat = np.ravel_multi_index(c.worst_index, c.relative.shape) if c.relative.ndim else 0
    r, col = np.unravel_index(flat, mat.shape)
    ax.add_patch(Rectangle((col - 0.5, r - 0.5), 1, 1, fill=False, ec="#2ecc71", lw=2))
    ax.set_title(f"{name}: engine vs {c.reference} ({c.status})\n"
                 f"worst {list(c.worst_index)} {c.where}".rstrip(), fontsize=9)
    ax.set_xlabel("last axis")
    if mat.shape[1] <= 40:
        ax.set_xticks(range(mat.shape[1]))
    if mat.shape[0] <= 40 and labels != [""]:
        ax.set_yticks(range(mat.shape[0]), labels, fontsize=7)
    elif labels == [""]:
        ax.set_yticks([])
