"""Einsum subscripts, parsed and checked: the one explicit form the einsum op computes.

:func:`parse_einsum` turns ``'bhid,bhjd->bhij'``, ``'ij,jk'`` (implicit output: the
subscripts that occur once, in alphabetical order) or ``'...id,...jd->...ij'`` into an
explicit spec of letters only (``...`` written out as letters no operand uses), and the
shape each operand is broadcast to (a subscript of size 1 in one operand and n in another
is broadcast, as NumPy does for ``...``).  Every mistake is a ValueError naming the spec,
the operand and the subscript.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Sequence

__all__ = ["EinsumSpec", "parse_einsum"]

LETTERS = string.ascii_letters


@dataclass(frozen=True)
class EinsumSpec:
    """``spec``: explicit, letters only (``'abc,acd->abd'``); ``shapes``: the shape each
    operand is broadcast to before the contraction."""

    spec: str
    shapes: tuple[tuple[int, ...], ...]


def parse_einsum(spec: str, shapes: Sequence[tuple[int, ...]]) -> EinsumSpec:
    """The explicit form of ``spec`` for operands of ``shapes`` (see the module doc)."""
    if not isinstance(spec, str):
        raise TypeError(f"einsum: the spec must be a string such as 'ij,jk->ik', got "
                        f"{type(spec).__name__}")
    text = spec.replace(" ", "")
    lhs, arrow, out = text.partition("->")
    if "->" in out:
        raise ValueError(f"einsum: spec {spec!r} has more than one '->'")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: spec {spec!r} has subscripts for {len(terms)} operand(s) "
                         f"but {len(shapes)} were given")
    for term in terms + ([out] if arrow else []):
        bad = set(term.replace("...", "")) - set(LETTERS)
        if bad or term.count("...") > 1:
            what = f"character {sorted(bad)[0]!r}" if bad else "'...' twice"
            raise ValueError(f"einsum: spec {spec!r} has {what} in {term!r}; subscripts "
                             f"are letters, with at most one '...' per operand")
    spare = [c for c in LETTERS if c not in text]
    expanded = [_expand(spec, k, term, shape, spare) for k, (term, shape)
                in enumerate(zip(terms, shapes))]
    width = max((n for _, n in expanded), default=0)
    ellipsis = "".join(reversed(spare[:width]))     # the axes right-aligned, as NumPy
    subs = [t for t, _ in expanded]
    output = _output(spec, subs, out if arrow else None, ellipsis)
    sizes = _sizes(spec, subs, shapes)
    target = tuple(tuple(sizes[c] for c in s) for s in subs)
    return EinsumSpec(",".join(subs) + "->" + output, target)


def _expand(spec: str, k: int, term: str, shape: tuple[int, ...],
            spare: list[str]) -> tuple[str, int]:
    """Operand ``k``'s subscripts with ``...`` written out (its last axis is always
    ``spare[0]``, so the axes broadcast right-aligned), and
    how many axes ``...`` stood for; checked against the operand's number of axes."""
    named = term.replace("...", "")
    if "..." not in term:
        if len(term) != len(shape):
            raise ValueError(f"einsum: operand {k} has {len(shape)} axes (shape {shape}) but "
                             f"its subscripts {term!r} in {spec!r} name {len(term)}")
        out = term
        width = 0
    else:
        width = len(shape) - len(named)
        if width < 0:
            raise ValueError(f"einsum: operand {k} has {len(shape)} axes (shape {shape}), "
                             f"fewer than its subscripts {term!r} in {spec!r} name")
        out = term.replace("...", "".join(reversed(spare[:width])))
    for c in named:
        if named.count(c) > 1:
            raise ValueError(f"einsum: operand {k}'s subscripts {term!r} in {spec!r} repeat "
                             f"{c!r} (a diagonal or a trace), which einsum does not support; "
                             f"take the diagonal by indexing first")
    return out, width


def _output(spec: str, subs: list[str], out: str | None, ellipsis: str) -> str:
    """The output subscripts: explicit (checked), or implicit (``...`` first, then the
    letters that occur once, sorted)."""
    used = "".join(subs)
    if out is None:
        once = sorted(c for c in set(used) if used.count(c) == 1 and c not in ellipsis)
        return ellipsis + "".join(once)
    result = out.replace("...", ellipsis)
    for c in out.replace("...", ""):
        if out.count(c) > 1:
            raise ValueError(f"einsum: the output {out!r} of {spec!r} repeats {c!r}")
        if c not in used:
            raise ValueError(f"einsum: the output {out!r} of {spec!r} has {c!r}, which no "
                             f"operand has")
    return result


def _sizes(spec: str, subs: list[str], shapes: Sequence[tuple[int, ...]]) -> dict[str, int]:
    """Each subscript's size: equal in every operand, or 1 where another has n."""
    sizes: dict[str, int] = {}
    where: dict[str, int] = {}
    for k, (s, shape) in enumerate(zip(subs, shapes)):
        for c, n in zip(s, shape):
            m = sizes.get(c)
            if m is None or m == 1:
                sizes[c], where[c] = n, k
            elif n != m and n != 1:
                raise ValueError(f"einsum: subscript {c!r} of {spec!r} has size {m} in "
                                 f"operand {where[c]} but {n} in operand {k}")
    return sizes
