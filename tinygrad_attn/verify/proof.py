"""The one result type of the provers: which claim, whether it was proven, and how.

Two provers return a :class:`Proof`. :func:`tinygrad_attn.verify.symbolic.equivalent`
(behind ``Derivation.prove_engine`` and ``Derivation.prove``) compares two arrays of
expressions element by element at explicit sizes; :func:`tinygrad_attn.verify.indexcalc.
prove_equal` compares two index-notation expressions for every size through a normal
form.  A caller that only wants the verdict reads ``ok``, ``claim``, ``method`` and
``str(proof)`` the same way for both; ``method`` says which detail fields are filled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["METHODS", "Proof"]

#: How zero-equivalence can be decided: the values of :attr:`Proof.method`.
METHODS = ("simplification", "evaluation", "normal form")

#: Most failing elements or residual terms ``str(proof)`` lists one per line.
SHOWN = 10


@dataclass(frozen=True)
class Proof:
    """Whether ``claim`` was proven (``ok``, also ``bool(proof)``) and how (``method``).

    ``method`` is one of :data:`METHODS`:

    * ``"simplification"``: every difference reduced to 0 by ``sympy.cancel`` or
      ``sympy.simplify`` (explicit sizes);
    * ``"evaluation"``: every difference below :math:`10^{-(digits-10)}` relative at
      ``points`` random points with ``digits`` significant digits (explicit sizes);
    * ``"normal form"``: both sides brought to one normal form in index notation, which
      holds for every size.

    Explicit sizes fill ``checked`` (elements compared, over the arrays ``names``),
    ``failures`` (``(name, index, residual)`` of the elements not shown equal) and
    ``max_residual`` (the largest relative difference seen).  The normal form fills
    ``reason`` (the outcome in words), ``lhs_terms`` and ``rhs_terms`` (terms of each
    side's normal form), ``residual`` (terms of ``lhs - rhs`` that did not cancel) and
    ``assumptions`` (under which the proof holds).  ``seconds`` is the wall time taken.
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
    def how(self) -> str:
        """How equality was decided, in words."""
        if self.method == "simplification":
            return "by simplification (sympy.cancel / sympy.simplify to 0)"
        if self.method == "evaluation":
            return (f"by evaluation at {self.points} random points with {self.digits} "
                    f"significant digits (largest relative difference "
                    f"{self.max_residual:.1e})")
        return f"by normal form ({self.reason})"

    def __str__(self) -> str:
        if self.method == "normal form":
            verdict = "PROVEN" if self.ok else "NOT PROVEN"
            head = f"{self.claim}: {verdict} for every size {self.how}"
            return "\n".join([head] + _more([f"  {r}" for r in self.residual]))
        names = ", ".join(self.names)
        if self.ok:
            return (f"{self.claim}: PROVEN for all {self.checked} elements of {names} "
                    f"{self.how}")
        head = (f"{self.claim}: NOT PROVEN: {len(self.failures)} of {self.checked} elements "
                f"of {names} not shown equal {self.how}")
        return "\n".join([head] + _more([f"  {n}{list(i)}: residual {r:.3e}"
                                         for n, i, r in self.failures]))


def _more(lines: list[str]) -> list[str]:
    """The first :data:`SHOWN` lines, and a count of the rest."""
    if len(lines) <= SHOWN:
        return lines
    return lines[:SHOWN] + [f"  ... and {len(lines) - SHOWN} more"]
