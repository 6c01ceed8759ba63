"""LaTeX for notebooks: the names of a derivation's symbols (``Q_0_1`` as
:math:`Q_{0,1}`, an upstream gradient ``dO_0_1`` as :math:`\\bar{O}_{0,1}`) and the display
of a :class:`~tinygrad_attn.verify.symbolic.Derivation` (its ``_repr_latex_``).
"""
from __future__ import annotations

from typing import Any, Sequence

import sympy as sp

__all__ = ["LATEX_CHARS", "derivation_latex", "latex_base", "latex_names"]

#: A gradient whose LaTeX is longer than this is named in a display, not written out.
LATEX_CHARS = 20000


def latex_names(syms: Sequence[sp.Symbol], bar: bool = False) -> dict[sp.Symbol, str]:
    """``Q_0_1`` -> ``Q_{0,1}``, ``dO_0_1`` -> ``\\bar{O}_{0,1}`` (upstream gradients get a bar)."""
    out = {}
    for s in syms:
        parts = s.name.split("_")
        head = [p for p in parts if not p.isdigit()]
        idx = [p for p in parts if p.isdigit()]
        base = head[0]
        if len(base) > 1 and base.startswith("d") and bar:
            base = r"\bar{" + latex_base(base[1:]) + "}"
        else:
            base = latex_base(base)
        if len(head) > 1:
            base += "^{" + ",".join(head[1:]) + "}"
        out[s] = base + ("_{" + ",".join(idx) + "}" if idx else "")
    return out


def latex_base(name: str) -> str:
    """A Greek letter's command, a one-letter name as is, a longer one upright."""
    greek = {"alpha", "beta", "gamma", "delta", "mu", "sigma", "tau", "theta", "lambda"}
    return "\\" + name if name in greek else name if len(name) == 1 else \
        r"\mathrm{" + name + "}"


# ----------------------------------------------------------------------------- Derivation

#: Longest LaTeX of one gradient ``Derivation._repr_latex_`` writes out in a notebook.
LATEX_CHARS = 20000


def derivation_latex(d: Any) -> str:
    """The objective and each input's exact gradient of derivation ``d`` as LaTeX; a
    gradient of more than 2 dimensions or of more than :data:`LATEX_CHARS` characters is
    named, not written out."""
    outs = ", ".join(latex_base(n) for n in d.output_names)
    rows = [r"L &= \textstyle\sum \bar{O} \odot O, \quad " + outs + " = "
            + r"\mathrm{" + d.fn_name.strip("<>").replace("_", r"\_") + "}("
            + ", ".join(latex_base(n) for n in d.inputs) + ")"]
    for name, t in d.inputs.items():
        lhs = r"\frac{\partial L}{\partial " + latex_base(name) + "}"
        body = d.latex(name) if t.data.ndim <= 2 else ""
        if not body or len(body) > LATEX_CHARS:
            shape = r" \times ".join(map(str, t.shape)) or "1"
            body = r"\text{(}" + shape + r"\text{ exact expressions: see .gradients)}"
        rows.append(f"{lhs} &= {body}")
    return "$$\\begin{aligned}" + r" \\ ".join(rows) + "\\end{aligned}$$"
