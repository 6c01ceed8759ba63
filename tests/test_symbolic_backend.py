"""The symbolic backend's fast constructions build exactly what plain SymPy builds.

``SymbolicBackend.exp``/``tanh`` skip SymPy's assumption queries for plain arguments
(:func:`~tinygrad_attn.engine.symbolic_backend.plain_function`) and ``matmul`` adds each element's
products in one ``Add``; these tests run every op case and the attention mechanisms
twice -- with the fast constructions and with plain ``sympy.exp``/``sympy.tanh`` and
``np.matmul`` -- and require the same expressions, node for node.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from op_cases import all_cases

from tinygrad_attn import attention as A
from tinygrad_attn.engine import symbolic_backend as backend
from tinygrad_attn.engine.symbolic_backend import (
    NOT_PLAIN,
    POSITIVE,
    REAL,
    SymbolicBackend,
    plain_function,
    plain_kind,
)
from tinygrad_attn.verify.dag import topological
from tinygrad_attn.verify.symbolic import derive

NAMES = "abcdefgh"
MASK = np.array([[True, False, True], [False, False, False]])


def additive(Q, K, V, W_q, W_k, v):
    return A.additive(Q, K, V, W_q, W_k, v)[0]


def sdpa_masked(Q, K, V):
    return A.scaled_dot_product(Q, K, V, mask=MASK, fused=False)[0]


def content(Q, K, V):
    return A.content(Q, K, V, beta=2.0)[0]


MECHANISMS = [
    (additive, {"Q": (2, 2), "K": (3, 2), "V": (3, 1), "W_q": (2, 3), "W_k": (2, 3),
                "v": (3,)}, ()),
    (sdpa_masked, {"Q": (2, 2), "K": (3, 2), "V": (3, 2)}, ()),
    (content, {"Q": (2, 2), "K": (3, 2), "V": (3, 1)}, ()),
]
CASES = [(c.fn, {NAMES[i]: s for i, s in enumerate(c.shapes)}, c.positive)
         for _, c in all_cases()] + MECHANISMS


def _expressions(fn, shapes, positive) -> list[sp.Basic]:
    """The forward's outputs and the engine's backward, flattened."""
    der = derive(fn, shapes, positive=positive)
    eng = der.engine_gradients()
    return [e for o in der.outputs for e in np.ravel(o)] + \
        [e for g in eng.values() for e in g.reshape(-1)]


def _plain_sympy(monkeypatch) -> None:
    """The backend as it would be with SymPy's own constructions only."""
    monkeypatch.setattr(SymbolicBackend, "exp", classmethod(lambda cls, x: cls._map("exp", x)))
    monkeypatch.setattr(SymbolicBackend, "tanh",
                        classmethod(lambda cls, x: cls._map("tanh", x)))
    monkeypatch.setattr(SymbolicBackend, "matmul", staticmethod(
        lambda a, b: np.matmul(np.asarray(a, dtype=object), np.asarray(b, dtype=object))))
    monkeypatch.setattr(backend, "plain_function", lambda name: getattr(sp, name))


@pytest.mark.parametrize("index", range(len(CASES)))
def test_fast_constructions_build_the_expressions_sympy_builds(index, monkeypatch):
    fn, shapes, positive = CASES[index]
    sp.core.cache.clear_cache()
    fast = _expressions(fn, shapes, positive)
    sp.core.cache.clear_cache()
    with monkeypatch.context() as m:
        _plain_sympy(m)
        slow = _expressions(fn, shapes, positive)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a == b


@pytest.mark.parametrize("index", range(len(CASES)))
def test_every_exp_and_tanh_is_what_sympy_evaluates_it_to(index):
    fn, shapes, positive = CASES[index]
    for node in topological(_expressions(fn, shapes, positive)):
        if isinstance(node, (sp.exp, sp.tanh)):
            assert type(node)(node.args[0]) == node


def test_plain_kind_reads_sign_and_realness_from_the_structure():
    x, y = sp.symbols("x y", real=True)
    p = sp.Symbol("p", positive=True)
    z = sp.Symbol("z")                                       # complex: plain, not real
    assert plain_kind(x * y + 3) == REAL
    assert plain_kind(sp.exp(x) + p) == POSITIVE
    assert plain_kind(sp.tanh(x) * 2) == REAL
    assert plain_kind(1 / x) < REAL                          # x may be 0
    assert plain_kind(sp.sqrt(x)) < REAL                     # x may be negative
    assert plain_kind(z + x) < REAL
    assert plain_kind(sp.log(p)) == NOT_PLAIN
    assert plain_kind(x + sp.pi) == NOT_PLAIN
    assert plain_kind(x * sp.I) == NOT_PLAIN


def test_plain_functions_evaluate_what_sympy_would_simplify():
    x = sp.Symbol("x", real=True)
    exp, tanh = plain_function("exp"), plain_function("tanh")
    assert exp(-sp.oo) == 0 and exp(sp.Integer(0)) == 1
    assert exp(sp.log(x)) == x
    assert tanh(-x) == -sp.tanh(x)
    assert tanh(sp.Integer(0)) == 0
    assert exp(x).is_positive and tanh(x).is_real and tanh(x).is_finite
    assert sp.tanh(sp.Symbol("z")).is_real is None          # no fact without a real argument


def test_matmul_matches_numpy_on_every_shape_rule():
    rng = np.random.default_rng(0)

    def arr(shape, name):
        out = np.empty(shape, dtype=object)
        for i, idx in enumerate(np.ndindex(shape)):
            s = sp.Symbol(f"{name}{i}", real=True)
            out[idx] = [s, sp.Rational(int(rng.integers(-3, 4)), 2), -sp.oo, sp.tanh(s)][
                int(rng.integers(0, 4))]
        return out

    for sa, sb in [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                   ((5, 2, 3), (3, 4)), ((5, 2, 3), (1, 3, 4)), ((2, 0), (0, 3))]:
        a, b = arr(sa, "a"), arr(sb, "b")
        ref = np.asarray(np.matmul(a, b), dtype=object)
        new = np.asarray(SymbolicBackend.matmul(a, b), dtype=object)
        assert new.shape == ref.shape
        assert all(x == y for x, y in zip(new.reshape(-1), ref.reshape(-1)))
    with pytest.raises(ValueError):
        SymbolicBackend.matmul(arr((2, 3), "a"), arr((4, 2), "b"))
