r"""The inputs a comparison runs on: random ones of the user's shapes, and the edge cases
that break attention code.

The parameters of the reference name the parts they play (:class:`Roles`): which input
is the query, the keys, the values, the boolean mask (True = attend, never
differentiated), and which input scales the logits linearly.  The roles are read from
the parameter names (``q``/``query``, ``k``/``key``/``keys``, ``v``/``value``/``values``,
``mask``/``attn_mask``; the logits are scaled through the query) and can be given
explicitly.  A built-in case applies only where the roles it needs exist:

=============  ===========================================================================
``random``      every float input standard normal; a random mask with one attended key
                per row at least
``masked_row``  (mask) query row 0 fully masked: every key of it False
``large_logits`` the ``logits`` input multiplied so that the largest attended score of the
                reference's attention weights is 1e3 (saturated softmax)
``single_key``  (key, value) n = 1: keys, values and the mask cut to their first key
``causal``      (mask) the top-left causal mask, key j attended by query i iff j <= i
``batch_heads`` (query, key, value with fewer than 4 axes) batch and head axes (2, 3)
                put in front of query, keys and values; the mask broadcasts
=============  ===========================================================================

A user's own case is a function ``case(inputs, rng) -> inputs`` of a dict of NumPy
arrays (the random case) and a ``numpy.random.Generator``; it returns the new dict, or
None where it does not apply.  Its ``__name__`` names it in the report.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["BUILTIN", "Case", "Roles", "builtin_cases", "parameters", "random_inputs",
           "resolve_cases"]

#: The logits the ``large_logits`` case reaches (largest attended score).
LARGE_LOGIT = 1e3
#: Probability that a key is attended in the random mask.
ATTEND = 0.75
#: The names the built-in cases go by, in the order they run.
BUILTIN = ("random", "masked_row", "large_logits", "single_key", "causal", "batch_heads")

ROLE_NAMES = {"query": ("q", "query", "queries"), "key": ("k", "key", "keys"),
              "value": ("v", "value", "values"), "mask": ("mask", "attn_mask")}

Inputs = dict[str, np.ndarray]
Builder = Callable[[Inputs, np.random.Generator], "Inputs | None"]


@dataclass(frozen=True)
class Roles:
    """The parameter that plays each part (None: no such parameter).  ``logits`` names
    the input the logits are linear in (the query for dot-product scores, the scoring
    vector ``v`` of additive attention); by default the query."""

    query: str | None = None
    key: str | None = None
    value: str | None = None
    mask: str | None = None
    logits: str | None = None

    @classmethod
    def infer(cls, names: Sequence[str]) -> "Roles":
        """The roles read from parameter names (see the module docstring)."""
        found = {role: next((n for n in names if n.lower() in options), None)
                 for role, options in ROLE_NAMES.items()}
        return cls(**found, logits=found["query"])

    def check(self, names: Sequence[str]) -> None:
        """Every role names a parameter (else a ValueError naming it); a role whose
        parameter gets no input (a mask left at its default) plays no part."""
        for role, name in self.__dict__.items():
            if name is not None and name not in names:
                raise ValueError(f"roles: {role}={name!r} is not a parameter of the reference "
                                 f"({', '.join(names)})")


@dataclass(frozen=True)
class Case:
    """A named way of building inputs from the random ones (None: does not apply)."""

    name: str
    build: Builder


def parameters(fn: Callable[..., Any], shapes: Mapping[str, tuple[int, ...]],
               who: str = "reference") -> list[str]:
    """The parameters of ``fn`` that get an input: those in ``shapes``, in order, up to
    the first one with a default that has none.  ValueError for a shape that names no
    parameter and for a parameter without default and without shape."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in params]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise ValueError(f"shapes for {unknown} name no parameter of the {who} "
                         f"{fn.__name__}({', '.join(names)})")
    used = []
    for p in params:
        if p.name in shapes:
            used.append(p.name)
        elif p.default is not p.empty:
            break
        else:
            raise ValueError(f"no shape for parameter {p.name!r} of the {who} "
                             f"{fn.__name__}({', '.join(names)}), e.g. {p.name}=4x8")
    return used


def random_inputs(names: Sequence[str], shapes: Mapping[str, tuple[int, ...]],
                  roles: Roles, rng: np.random.Generator,
                  ranges: Mapping[str, tuple[float, float]] | None = None) -> Inputs:
    """Standard normal float64 arrays, or uniform on ``ranges[name]`` (a temperature kept
    positive); the mask random with one attended key per row."""
    out = {}
    for name in names:
        shape = tuple(shapes[name])
        if name == roles.mask:
            out[name] = random_mask(shape, rng)
        elif ranges and name in ranges:
            out[name] = np.asarray(rng.uniform(*ranges[name], size=shape))
        else:
            out[name] = np.asarray(rng.standard_normal(shape))
    return out


def random_mask(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """True with probability :data:`ATTEND`, and one random key per row True."""
    mask = rng.random(shape) < ATTEND
    if mask.ndim:
        keep = rng.integers(0, shape[-1], size=shape[:-1])
        np.put_along_axis(mask, keep[..., None], True, axis=-1)
    else:
        mask = np.asarray(True)
    return mask


def builtin_cases(roles: Roles, largest_score: Callable[[Inputs], float | None]) -> dict[
        str, Case]:
    """The built-in cases; ``largest_score(inputs)`` is the largest attended score of the
    reference's attention weights at ``inputs`` (None when it makes none)."""
    def masked_row(x: Inputs, rng: np.random.Generator) -> Inputs | None:
        if roles.mask is None:
            return None
        mask = x[roles.mask].copy()
        if mask.ndim >= 2:
            mask[..., 0, :] = False
        else:
            mask[...] = False
        return {**x, roles.mask: mask}

    def large_logits(x: Inputs, rng: np.random.Generator) -> Inputs | None:
        if roles.logits is None:
            return None
        top = largest_score(x)
        if not top:
            return None
        return {**x, roles.logits: x[roles.logits] * (LARGE_LOGIT / top)}

    def single_key(x: Inputs, rng: np.random.Generator) -> Inputs | None:
        if roles.key is None or roles.value is None or x[roles.key].ndim < 2:
            return None
        out = {**x, roles.key: x[roles.key][..., :1, :], roles.value: x[roles.value][..., :1, :]}
        if roles.mask is not None and x[roles.mask].ndim:
            out[roles.mask] = np.ones(x[roles.mask].shape[:-1] + (1,), dtype=bool)
        return out

    def causal(x: Inputs, rng: np.random.Generator) -> Inputs | None:
        if roles.mask is None or x[roles.mask].ndim < 2:
            return None
        shape = x[roles.mask].shape
        return {**x, roles.mask: np.broadcast_to(np.tril(np.ones(shape[-2:], dtype=bool)),
                                                 shape).copy()}

    def batch_heads(x: Inputs, rng: np.random.Generator) -> Inputs | None:
        parts = [r for r in (roles.query, roles.key, roles.value) if r is not None]
        if len(parts) < 3 or any(x[r].ndim < 2 or x[r].ndim >= 4 for r in parts):
            return None
        out = dict(x)
        for r in parts:
            lead = (2, 3)[:4 - x[r].ndim]
            out[r] = rng.standard_normal(lead + x[r].shape)
        return out

    made = [masked_row, large_logits, single_key, causal, batch_heads]
    return {"random": Case("random", lambda x, rng: x), **{f.__name__: Case(f.__name__, f)
                                                           for f in made}}


def resolve_cases(cases: str | Sequence[str | Case | Builder] | None,
                  builtin: Mapping[str, Case]) -> list[Case]:
    """``None`` or ``"attention"``: every built-in case; otherwise each item a built-in's
    name, a :class:`Case` or a user's function ``(inputs, rng) -> inputs | None``."""
    if cases is None or cases == "attention":
        return [builtin[n] for n in BUILTIN]
    if isinstance(cases, str):
        cases = [cases]
    out = []
    for item in cases:
        if isinstance(item, Case):
            out.append(item)
        elif isinstance(item, str):
            if item not in builtin:
                raise ValueError(f"cases: no built-in case {item!r}; the built-in cases are "
                                 f"{', '.join(BUILTIN)} (or 'attention' for all)")
            out.append(builtin[item])
        elif callable(item):
            out.append(Case(getattr(item, "__name__", "custom"), item))
        else:
            raise TypeError(f"cases: expected a case name, a Case or a function "
                            f"(inputs, rng) -> inputs, got {item!r}")
    return out
