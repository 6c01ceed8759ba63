"""The one result type of the provers: which claim, whether it holds, and how it was decided.

Two provers return a :class:`Proof`. :func:`tinygrad_attn.verify.symbolic.equivalent`
(behind ``Derivation.prove_engine`` and ``Derivation.prove``) compares two arrays of
expressions element by element at explicit sizes; :func:`tinygrad_attn.verify.indexcalc.
prove_equal` compares two index-notation expressions for every size through a normal
form.  A caller reads ``ok``, ``claim``, ``verdict`` and ``str(proof)`` the same way for
both; ``verdict`` is one of :data:`VERDICTS` (with ``k`` filled in) and is what a table
prints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["METHODS", "VERDICTS", "Proof"]

#: How an identity can be decided: the values of :attr:`Proof.method`.
METHODS = ("exact", "identity testing", "evaluation", "normal form")

#: The verdicts :attr:`Proof.verdict` can say (``{k}`` filled in by the proof).
VERDICTS = ("proven (exact)", "proven with probability >= 1 - 2^-{k} (identity testing)",
            "agrees numerically (not a proof)", "FAILED")

#: Most failing elements or residual terms ``str(proof)`` lists one per line.
SHOWN = 10


@dataclass(frozen=True, repr=False)
class Proof:
    """Whether ``claim`` holds (``ok``, also ``bool(proof)``) and how (``method``).

    ``method`` is one of :data:`METHODS`, the weakest decider any element needed:

    * ``"exact"``: every difference cancelled exactly (explicit sizes);
    * ``"identity testing"``: the remaining differences vanished at random points of
      random prime fields; a false identity passes with probability at most
      :math:`2^{-k}` (``k``; ``trials`` primes, numerators of degree at most
      ``degree`` with integer coefficients below :math:`2^{height}`);
    * ``"evaluation"``: some element was only evaluated numerically -- below
      :math:`10^{-(digits-10)}` relative at ``points`` random points with ``digits``
      significant digits (``ok``: agrees numerically, not a proof) or not (``failures``);
    * ``"normal form"``: both sides brought to one normal form in index notation, which
      holds for every size.

    Explicit sizes fill ``checked`` (elements compared, over the arrays ``names``; out of
    ``population`` when a sample was drawn), ``exact``, ``tested`` and ``numeric`` (how
    many elements each decider settled), ``failures`` (``(name, index, residual)``) and
    ``max_residual``, and ``reason`` (the deciders that left the evaluated elements
    undecided).  The normal form fills ``reason`` (its outcome), ``lhs_terms``,
    ``rhs_terms`` and ``residual`` (terms of ``lhs - rhs`` that did not cancel).
    ``assumptions`` says under which conditions the result holds; ``seconds`` is the wall
    time taken.
    """

    claim: str
    ok: bool
    method: str
    checked: int = 0
    names: list[str] = field(default_factory=list)
    points: int = 0
    digits: int = 0
    max_residual: float = 0.0
    failures: list[tuple[str, tuple[int, ...], float]] = field(default_factory=list)
    reason: str = ""
    lhs_terms: int = 0
    rhs_terms: int = 0
    residual: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    seconds: float = 0.0
    k: int | None = None
    trials: int = 0
    degree: int = 0
    height: int = 0
    exact: int = 0
    tested: int = 0
    numeric: int = 0
    population: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Proof: method must be one of {METHODS}, got {self.method!r}")

    def __bool__(self) -> bool:
        return self.ok

    @property
    def subject(self) -> str:
        """The claim (the name of ``equivalent``'s ``subject`` keyword that sets it)."""
        return self.claim

    @property
    def proven(self) -> bool:
        """Decided by a proof (exact or identity testing), not only by numbers."""
        return self.ok and self.method != "evaluation"

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS`: what a table of results prints."""
        if not self.ok:
            return VERDICTS[3]
        if self.method in ("exact", "normal form"):
            return VERDICTS[0]
        if self.method == "identity testing":
            return VERDICTS[1].format(k=self.k)
        return VERDICTS[2]

    @property
    def how(self) -> str:
        """How the elements were decided, in words."""
        if self.method == "normal form":
            return f"by normal form ({self.reason})"
        parts = []
        if self.exact:
            parts.append(f"{self.exact} by exact cancellation")
        if self.tested:
            parts.append(f"{self.tested} by identity testing ({self.trials} random primes "
                         f"and points; numerators of degree <= {self.degree} with "
                         f"coefficients < 2^{self.height})")
        if self.numeric:
            after = f" after {self.reason} left them nonzero" if self.reason else ""
            parts.append(f"{self.numeric} by evaluation at {self.points} random points with "
                         f"{self.digits} significant digits (largest relative difference "
                         f"{self.max_residual:.1e}){after}")
        return "; ".join(parts)

    def __str__(self) -> str:
        more = [f"  assuming {a}" for a in self.assumptions if self.method != "normal form"]
        if self.method == "normal form":
            head = (f"{self.claim}: {self.verdict} for every size {self.how}" if self.ok else
                    f"{self.claim}: FAILED: not proven for every size {self.how}")
            return "\n".join([head] + _more([f"  {r}" for r in self.residual]))
        names = ", ".join(self.names)
        sample = (f" (a random sample of {self.checked} of {self.population})"
                  if self.population > self.checked else "")
        if self.ok:
            return "\n".join([f"{self.claim}: {self.verdict} for all {self.checked} "
                              f"elements of {names}{sample}: {self.how}"] + more)
        head = (f"{self.claim}: FAILED: {len(self.failures)} of {self.checked} elements of "
                f"{names}{sample} differ: {self.how}")
        return "\n".join([head] + _more([f"  {n}{list(i)}: residual {r:.3e}"
                                         for n, i, r in self.failures]) + more)

    def __repr__(self) -> str:
        return f"Proof({self.claim!r}: {self.verdict})"

    def _repr_markdown_(self) -> str:
        """``str(proof)`` as Markdown, for notebooks (Jupyter calls this): the verdict in
        bold and the claim, then the sentence of ``str(proof)`` and each element or
        assumption it lists, as bullets."""
        head, *rest = str(self).split("\n")
        head = head[len(self.claim) + 2:] if head.startswith(f"{self.claim}: ") else head
        lines = [f"**{_markdown(self.verdict)}**: {_markdown(self.claim)}", ""]
        return "\n".join(lines + [f"- {_markdown(r.strip())}" for r in [head, *rest]])


def _markdown(text: str) -> str:
    """``text`` with the characters Markdown would read as markup escaped."""
    return "".join("\\" + c if c in "\\`*_[]<>|#" else c for c in text)


def _more(lines: list[str]) -> list[str]:
    """The first :data:`SHOWN` lines, and a count of the rest."""
    if len(lines) <= SHOWN:
        return lines
    return lines[:SHOWN] + [f"  ... and {len(lines) - SHOWN} more"]
