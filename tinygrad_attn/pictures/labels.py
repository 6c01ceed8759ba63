r"""The text of a graph picture's nodes: op titles, shapes, values and VJP formulas.

Labels follow the project notation (``docs/notation.md``): the adjoint of ``x`` (the
gradient of the final scalar with respect to ``x``) is written with a bar, ``x̄``, and the
upstream gradient a VJP receives is ``g``, as in the ops' docstrings.  Everything is
plain Unicode text, so both renderers (system ``dot`` and the embedded Graphviz) draw
the same picture.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..engine import Function, Tensor

#: The combining macron (U+0304), the bar over one letter: ``x̄``.
MACRON = "\u0304"
#: The combining overline (U+0305), a bar joined over every letter of a longer name.
OVERLINE = "\u0305"


def adjoint(name: str) -> str:
    """The adjoint of ``name`` written with a bar over its symbol, before any subscript.

    ``x`` -> ``x̄``, ``W_q`` -> ``W̄_q``, ``context`` -> ``c̅o̅n̅t̅e̅x̅t̅`` (one bar over the word).
    """
    base, sep, sub = name.partition("_")
    if len(base) == 1:
        return base + MACRON + sep + sub
    return "".join(ch + OVERLINE for ch in base) + sep + sub


def shape_text(shape: tuple[int, ...]) -> str:
    """``(3, 4)`` as ``3×4``; a scalar as ``scalar``."""
    return "×".join(str(s) for s in shape) if shape else "scalar"


def number_text(x: Any) -> str:
    """A number as a label shows it: 4 significant digits, a true minus sign, ``∞``."""
    if isinstance(x, (float, np.floating)) or (isinstance(x, np.generic) and x.dtype.kind == "f"):
        x = float(x)
        if np.isinf(x):
            return "∞" if x > 0 else "−∞"
        text = f"{x:.4g}"
        return text.replace("-", "−") if text.startswith("-") else text
    return str(x)


def summary(data: np.ndarray) -> str:
    """The numbers of a tiny array (at most 4 elements), else its Frobenius norm."""
    if data.dtype == object:
        return ", ".join(str(e) for e in data.ravel()) if data.size <= 2 else "symbolic"
    if data.size <= 4:
        return "[" + ", ".join(number_text(float(e)) for e in data.ravel()) + "]"
    return f"‖·‖ = {number_text(float(np.linalg.norm(data.astype(np.float64))))}"


def is_scalar_const(t: Tensor) -> bool:
    """An unnamed one-element leaf without gradient: written into its op's label, not drawn."""
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
            out.append(f"<{p.dtype.name} {shape_text(p.shape)}>")
        else:
            out.append(str(p))
    return "[" + ", ".join(out) + "]"


def _axis(axis: Any, ndim: int) -> str:
    if axis is None:
        return ""
    axes = axis if isinstance(axis, tuple) else (axis,)
    shown = [a - ndim if ndim and a == ndim - 1 else a for a in axes]
    return " axis=" + (str(shown[0]) if len(shown) == 1 else str(tuple(shown)))


def _where_title(t: Tensor, consts: list[bool], val: list[str | None]) -> str:
    """``masked_fill −∞`` when the filled value is a scalar constant, else ``where(...)``;
    a mask of another shape than the output is named with its shape."""
    cond = t._ctx.attrs.get("cond")
    mshape = np.shape(cond) if cond is not None else t.shape
    mask = "" if mshape == t.shape else f" (mask {shape_text(mshape)})"
    if consts[0]:
        return f"masked_fill {val[0]}{mask}"
    return f"where(mask, ·, {val[1] if consts[1] else '·'}){mask}"


def op_title(t: Tensor) -> str:
    """The first line of an op's label: name, folded scalar constant, key attributes.

    ``mul × 0.125``, ``softmax axis=-1``, ``transpose ᵀ``, ``getitem [0, :]``,
    ``einsum ij,kj->ik``.
    """
    ctx: Function = t._ctx
    name, attrs, parents = ctx.name, ctx.attrs, ctx.parents
    consts = [p is not None and is_scalar_const(p) for p in parents]
    val = [number_text(p.data.reshape(())[()]) if c else None for p, c in zip(parents, consts)]
    in_ndim = parents[0].ndim if parents and parents[0] is not None else t.ndim
    sym = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}
    if name in sym and len(parents) == 2 and any(consts):
        return f"{name} {sym[name]} {val[1]}" if consts[1] else f"{val[0]} {sym[name]} ·"
    if name == "pow" and "exponent" in attrs:
        return f"pow ^{number_text(attrs['exponent'])}"
    if name == "where":
        return _where_title(t, consts, val)
    if name == "einsum":
        return f"einsum {attrs['spec']}"
    if name in ("softmax", "log_softmax", "sum", "mean", "max", "concat", "stack", "logsumexp"):
        return name + _axis(attrs.get("axis"), in_ndim if name != "stack" else t.ndim)
    if name == "transpose":
        axes = attrs.get("axes", ())
        swap = tuple(range(len(axes) - 2)) + (len(axes) - 1, len(axes) - 2)
        return "transpose ᵀ" if tuple(axes) in (swap, (1, 0)) else f"transpose {tuple(axes)}"
    if name == "getitem":
        return "getitem " + _index(attrs.get("index"))
    return name


def leaf_kind(t: Tensor, params: set[int]) -> str:
    """``"param"`` (listed in ``params`` by id, or ``role == "parameter"``), ``"input"``
    (requires grad or has a name) or ``"const"``: how a leaf is styled."""
    if id(t) in params or getattr(t, "role", None) == "parameter":
        return "param"
    if t.requires_grad or t.name is not None:
        return "input"
    return "const"


def leaf_name(t: Tensor, kind: str) -> str:
    """A leaf's name as drawn: a Module parameter's dotted name (``dec.attention.W_q``)
    as its last part (``W_q``); an unnamed leaf as ``input`` or ``parameter``."""
    if t.name:
        return t.name.rsplit(".", 1)[-1]
    return "parameter" if kind == "param" else "input"


def leaf_label(t: Tensor, kind: str) -> str:
    """A leaf of the forward graph: its name over its shape (``const`` if unnamed)."""
    if kind == "const":
        return (t.name + "\n" if t.name else "const ") + shape_text(t.shape)
    return f"{leaf_name(t, kind)}\n{shape_text(t.shape)}"


# ----------------------------------------------------------------------------- formulas

_LATEX = [
    (r"\mathbin{?}", "?"), (r"\mathrm{", "{"), (r"\text{", "{"), (r"\operatorname{", "{"),
    (r"\odot", "⊙"), (r"\cdot", "·"), (r"\top", "ᵀ"), (r"\sum_j", "Σⱼ"), (r"\sum", "Σ"),
    (r"\frac1N", "1/N"), (r"\sigma", "σ"), (r"\log", "log"), (r"\exp", "exp"),
    (r"\max", "max"), (r"\pi^{-1}", "π⁻¹"), (r"\pi", "π"), (r"\dots", "…"), (r"\#", "#"),
    (r"\{", "⟮"), (r"\}", "⟯"), (r"\tanh", "tanh"), (r"\sqrt", "√"), (r"\in", "∈"), (r"\le", "≤"),
    (r"\,", " "), (r"\ ", " "), ("^2", "²"), ("^{b-1}", "^(b−1)"), ("^{p-1}", "^(p−1)"),
    ("^{-a}", "^(−a)"), ("``", ""), (r"\sin", "sin"), (r"\cos", "cos"), (r"\min", "min"),
    (r"\alpha", "α"), (r"\beta", "β"), (r"\lor", "∨"), (r"\ge", "≥"),
]
_SUB = str.maketrans("0123456789aejkik", "₀₁₂₃₄₅₆₇₈₉ₐₑⱼₖᵢₖ")


def _outside_math(text: str, char: str) -> int:
    """The index of the first ``char`` outside ``$...$`` in ``text``, or -1."""
    inside = False
    for i, ch in enumerate(text):
        inside = not inside if ch == "$" else inside
        if ch == char and not inside:
            return i
    return -1


def _vjp_part(doc: str) -> str:
    """The LaTeX of the VJP in an op's docstring: after the first ``;`` outside math (or
    after a ``VJP ...:`` paragraph's colon), up to a second ``;`` or the end of the last
    formula, so a prose remark after it is left out."""
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
    return text


def vjp_formula(fn: Function | type[Function]) -> str:
    r"""The VJP part of an op's docstring as plain text (``\bar a = g\,y`` -> ``ā = g y``).

    The docstrings state ``forward; VJP``; the text after the first ``;`` up to the
    end of the formula is kept, LaTeX turned into Unicode for a Graphviz label, one
    equation a line.
    """
    text = _vjp_part((type(fn) if isinstance(fn, Function) else fn).__doc__ or "")
    text = re.sub(r"\\bar\s*\{?([A-Za-z])\}?", lambda m: m.group(1) + MACRON, text)
    text = text.replace("^\\top", "ᵀ")
    for latex, plain in _LATEX:
        text = text.replace(latex, plain)
    text = re.sub(r"_\{?([a-z0-9])\}?", lambda m: m.group(1).translate(_SUB), text)
    text = text.replace("$", "").replace("{", "").replace("}", "")
    text = re.sub(r"\s+", " ", text).strip().rstrip(".:;, ")
    text = re.sub(r",\s*(?=\w\u0304?\w?ᵀ?\s*=)", "\n", text)  # one equation per line
    text = text.replace(", i.e. ", "\ni.e. ")
    return re.sub(r"(?<![A-Za-z])-", "−", text).replace("⟮", "(").replace("⟯", ")")


#: Ops whose inputs broadcast against each other; the engine sums an input's adjoint back
#: over the axes it was broadcast along (one ``unbroadcast``), so its label shows that sum.
BROADCASTING = ("add", "sub", "mul", "div", "pow", "where", "matmul")


def broadcast_axes(in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                   matrix: bool = False) -> tuple[int, ...]:
    """The axes of ``out_shape`` that an input of ``in_shape`` was broadcast along: the
    leading axes it lacks and the axes where it has size 1 (``matrix``: the last two axes
    of a matmul operand are not broadcast)."""
    lead = len(out_shape) - len(in_shape)
    last = len(out_shape) - (2 if matrix else 0)
    return tuple(ax for ax in range(max(last, 0)) if ax < lead
                 or (in_shape[ax - lead] == 1 and out_shape[ax] != 1))


def summed_line(line: str, axes: tuple[int, ...]) -> str:
    """``ā = g`` as ``ā = Σ over axis 1 of g``: the adjoint of a broadcast input."""
    lhs, _, rhs = line.partition(" = ")
    word = "axis" if len(axes) == 1 else "axes"
    rhs = f"({rhs})" if " " in rhs else rhs
    return f"{lhs} = Σ over {word} {', '.join(map(str, axes))} of {rhs}"


def formula_lines(ctx: Function, out_shape: tuple[int, ...] | None = None) -> list[str]:
    """The VJP formula's lines, without those for inputs that get no gradient
    (``b̄`` of ``mul × 0.125`` is left out: the constant needs none).  Given the output's
    shape, an input broadcast by the op shows the sum over the broadcast axes
    (``ā = Σ over axis 1 of g``), the step the engine's ``unbroadcast`` takes."""
    keep = []
    for line in vjp_formula(ctx).split("\n"):
        k = "ab".find(line[:1].lower()) if line[1:2] == MACRON else -1
        if not line or (0 <= k < len(ctx.needs_input_grad) and not ctx.needs_input_grad[k]):
            continue
        parent = ctx.parents[k] if 0 <= k < len(ctx.parents) else None
        if out_shape is not None and parent is not None and ctx.name in BROADCASTING:
            axes = broadcast_axes(parent.shape, tuple(out_shape), ctx.name == "matmul")
            line = summed_line(line, axes) if axes else line
        keep.append(line)
    return keep
