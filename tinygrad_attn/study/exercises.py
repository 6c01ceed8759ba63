r"""Exercises the tool checks: a student's answer, written as a Python function, checked
exactly against the engine and SymPy, with a hint that never prints the solution.

Most exercises ask for a gradient: the answer is a function of the mechanism's inputs and
the upstream gradient ``G`` (:math:`\bar O`) written with the engine's Tensor ops
(``@``, ``.mT``, ``.softmax(-1)``, ``.sum(axis, keepdims=True)``, ``*``, ...). It is run
on *symbolic* inputs (every element a SymPy symbol, sizes small and explicit), and its
result is decided equal to :math:`\partial L / \partial x` of
:math:`L = \sum \bar O \odot O` element by element
(:func:`~tinygrad_attn.verify.equivalence.decide`: exact cancellation or identity
testing). A wrong answer is located (which elements) and diagnosed at a random point
(off by a constant factor, by a sign, transposed; which inputs the error depends on).

:data:`EXERCISES` lists them (each names the derivation page that ends with it);
:func:`check` checks an answer; :func:`template` is the skeleton a student starts from.
The solutions live apart, in :mod:`tinygrad_attn.study.solutions`, for a teacher.
``tinygrad-attn exercise`` is the command line.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .. import attention as A
from ..engine import Tensor

__all__ = ["EXERCISES", "Exercise", "Verdict", "check", "exercises_for", "template"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``statement`` (Markdown) on derivation page ``page``.

    Gradient exercises (``wrt`` set): ``forward(**inputs)`` is the mechanism, the answer
    ``fn(*inputs, G)`` returns the gradient of ``wrt`` (``adapt`` first turns another
    asked-for object, such as a Jacobian, into that gradient; ``exact(derivation)`` is
    the exact asked-for object, named ``label`` in hints). Value exercises
    (``values`` set): the answer ``fn(*args)`` is compared with ``reference(*args)`` at
    every argument tuple in ``values``."""

    name: str
    page: str
    title: str
    statement: str
    shapes: Mapping[str, Shape] = field(default_factory=dict)
    forward: Callable[..., Tensor] | None = None
    wrt: str = ""
    asked: str = ""
    adapt: Callable[[Any, Mapping[str, Tensor], Tensor], Any] | None = None
    exact: Callable[[Any], np.ndarray] | None = None
    label: str = ""
    values: tuple[tuple[int, ...], ...] = ()
    reference: Callable[..., Any] | None = None

    @property
    def arguments(self) -> list[str]:
        """The answer's parameters, in order."""
        if self.values:
            return list(inspect.signature(self.reference).parameters)
        return [*self.shapes, "G"]


@dataclass
class Verdict:
    """The outcome of checking an answer: ``ok``, and lines a student can act on."""

    exercise: str
    ok: bool
    lines: list[str]

    def __str__(self) -> str:
        head = f"exercise {self.exercise}: {'correct' if self.ok else 'not yet'}"
        return "\n".join([head, *("  " + ln for ln in self.lines)])

    def __bool__(self) -> bool:
        return self.ok


# ----------------------------------------------------------------------------- forwards

def _sdpa(Q: Tensor, K: Tensor, V: Tensor) -> Tensor:
    return A.scaled_dot_product(Q, K, V)[0]


def _causal(Q: Tensor, K: Tensor, V: Tensor) -> Tensor:
    return A.scaled_dot_product(Q, K, V, causal=True)[0]


def _softmax(s: Tensor) -> Tensor:
    return s.softmax(-1)


def _additive(Q: Tensor, K: Tensor, V: Tensor, W_q: Tensor, W_k: Tensor, v: Tensor) -> Tensor:
    return A.additive(Q, K, V, W_q, W_k, v)[0]


def _general(Q: Tensor, K: Tensor, V: Tensor, W: Tensor) -> Tensor:
    return A.general(Q, K, V, W)[0]


def _location(Q: Tensor, V: Tensor, W: Tensor) -> Tensor:
    return A.location(Q, V, W)[0]


def _content(Q: Tensor, K: Tensor, V: Tensor) -> Tensor:
    return A.content(Q, K, V)[0]


def _multi_head(X: Tensor, W_q: Tensor, W_k: Tensor, W_v: Tensor, W_o: Tensor) -> Tensor:
    return A.multi_head(X, X, W_q, W_k, W_v, W_o, num_heads=2)[0]


def _jacobian_vjp(J: Any, inputs: Mapping[str, Tensor], G: Tensor) -> Any:
    """A Jacobian :math:`J_{ij} = \\partial p_i / \\partial s_j` as the gradient
    :math:`\\bar s = J^\\top \\bar p` the engine computes."""
    J = J if isinstance(J, Tensor) else Tensor(np.asarray(J, dtype=object))
    return (G.reshape(1, -1) @ J).reshape(-1)


def _exact_jacobian(d: Any) -> np.ndarray:
    """:math:`J_{ij} = \\partial \\bar s_j / \\partial \\bar p_i` (the gradient is linear in
    the upstream gradient, with the Jacobian as its coefficients)."""
    import sympy as sp

    grads, G = d.gradients["s"], d.cotangents[0]
    return np.array([[sp.diff(grads[j], G[i]) for j in range(len(grads))]
                     for i in range(len(G))], dtype=object)


def crossover_reference(d: int) -> int:
    """The smallest n at which self-attention's n^2 multiply-adds exceed its projections',
    from the counts on the graph the engine records (the cost is a n + b n^2)."""
    from .claims import recorded_cost

    t1, t2 = (recorded_cost(n, d)["multiply_adds"] for n in (1, 2))
    b = (t2 - 2 * t1) // 2                 # t1 = a + b, t2 = 2a + 4b
    a = t1 - b
    return a // b + 1                      # b n^2 > a n  <=>  n > a / b


QKV = {"Q": (2, 3), "K": (3, 3), "V": (3, 2)}

EXERCISES: dict[str, Exercise] = {e.name: e for e in [
    Exercise("softmax_jacobian", "softmax", "The softmax Jacobian",
             r"Write the Jacobian $J_{ij} = \partial p_i / \partial s_j$ of "
             r"$p = \operatorname{softmax}(s)$ for $s \in \mathbb{R}^3$ (return the "
             r"$3 \times 3$ Tensor; `G` is not needed). Then show that each row of $J$ sums "
             r"to zero, and say why that must hold.",
             {"s": (3,)}, _softmax, "s", "the Jacobian J (3 x 3)", _jacobian_vjp,
             _exact_jacobian, "J"),
    Exercise("softmax_vjp", "softmax", "The softmax backward",
             r"Given $\bar p$ (`G`), return $\bar s$ for $p = \operatorname{softmax}(s)$, "
             r"$s \in \mathbb{R}^3$, without forming the Jacobian.",
             {"s": (3,)}, _softmax, "s"),
    Exercise("sdpa_dV", "scaled_dot_product", r"$\bar V$ of scaled dot-product attention",
             r"For $O = \operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$ return $\bar V$.",
             QKV, _sdpa, "V"),
    Exercise("sdpa_dQ", "scaled_dot_product", r"$\bar Q$ by differentials",
             r"Write $dO = dP\,V$ and $dP$ through the softmax, then read off $\bar Q$ "
             r"for $O = \operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$.",
             QKV, _sdpa, "Q"),
    Exercise("sdpa_dK", "scaled_dot_product", r"$\bar K$ of scaled dot-product attention",
             r"Return $\bar K$ for $O = \operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$.",
             QKV, _sdpa, "K"),
    Exercise("additive_dv", "additive", r"Bahdanau's score vector $v_a$",
             r"For additive attention return $\bar v$, the gradient of its score vector.",
             {"Q": (2, 2), "K": (2, 2), "V": (2, 1), "W_q": (2, 2), "W_k": (2, 2),
              "v": (2,)}, _additive, "v"),
    Exercise("additive_dWq", "additive", r"The query projection $W_q$",
             r"For additive attention return $\bar W_q$: the broadcast over the keys "
             r"must be summed back.",
             {"Q": (2, 2), "K": (2, 2), "V": (2, 1), "W_q": (2, 2), "W_k": (2, 2),
              "v": (2,)}, _additive, "W_q"),
    Exercise("general_dW", "dot_product_general", r"Luong's general score $W$",
             r"For scores $S = Q W K^\top$ return $\bar W$.",
             {"Q": (2, 2), "K": (3, 2), "V": (3, 2), "W": (2, 2)}, _general, "W"),
    Exercise("location_dW", "location", r"Location-based attention's $W$",
             r"Scores $S = Q W$ give one score per *position*: return $\bar W$. Why must "
             r"the number of positions $n$ be fixed in advance?",
             {"Q": (2, 2), "V": (3, 2), "W": (2, 3)}, _location, "W"),
    Exercise("content_dQ", "content", "Cosine (content-based) attention",
             r"For scores $S_{ij} = \cos(q_i, k_j)$ return $\bar Q$.",
             QKV, _content, "Q"),
    Exercise("multi_head_dWo", "multi_head", r"The output projection $W_o$",
             r"Self-attention with two heads, "
             r"$O = \operatorname{Concat}(\mathrm{head}_0, \mathrm{head}_1)\,W_o$ (the heads "
             r"joined along the feature axis): return $\bar W_o$.",
             {"X": (2, 2), "W_q": (2, 2), "W_k": (2, 2), "W_v": (2, 2), "W_o": (2, 2)},
             _multi_head, "W_o"),
    Exercise("causal_dK", "causal_masking", r"$\bar K$ under a causal mask",
             r"With a causal mask (query $i$ sees keys $j \le i$), return $\bar K$ for "
             r"$m = n = 3$. Which entries of the score adjoint $\bar S$ are zero, and why?",
             {"Q": (3, 2), "K": (3, 2), "V": (3, 2)}, _causal, "K"),
    Exercise("cost_crossover", "claim_cost", r"Where $n^2 d$ overtakes $n d^2$",
             r"Self-attention over $n$ tokens of width $d = d_k = d_v$ costs "
             r"$3 n d^2$ multiply-adds in its projections and $2 n^2 d$ in $QK^\top$ and "
             r"$PV$. Write `crossover(d)`: the smallest $n$ for which the second exceeds "
             r"the first. (Checked against the counts on the engine's recorded graph.)",
             values=tuple((d,) for d in range(1, 17)), reference=crossover_reference),
]}


def exercises_for(page: str) -> list[Exercise]:
    """The exercises that end derivation page ``page``."""
    return [e for e in EXERCISES.values() if e.page == page]


def template(name: str) -> str:
    """The skeleton of an answer to exercise ``name``."""
    ex = _get(name)
    args = ", ".join(ex.arguments)
    fn = "crossover" if ex.values else f"{name}"
    what = ex.asked or (f"the gradient of {ex.wrt}, shape {ex.shapes[ex.wrt]}" if ex.wrt
                        else "an int")
    return (f"def {fn}({args}):\n    # return {what}\n    # Tensor ops: @, .mT, "
            f".softmax(-1), .sum(axis, keepdims=True), .exp(), *, /\n    ...\n")


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; choose one of {', '.join(EXERCISES)}")
    return EXERCISES[name]


def check(name: str, answer: Callable[..., Any], seed: int = 0) -> Verdict:
    """Check ``answer`` to exercise ``name``; the verdict says where it is wrong."""
    from .exercise_check import check_gradient, check_values

    ex = _get(name)
    ok, lines = check_values(ex, answer) if ex.values else check_gradient(ex, answer, seed)
    return Verdict(name, ok, lines)
