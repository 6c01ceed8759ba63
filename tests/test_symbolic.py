"""SymPy checks the engine: every op's VJP proven exact, three-way gradcheck, errors.

The op-table test is parametrised over ``tinygrad_attn.engine.ops.OPS`` (through
``tests/op_cases.py``): an op added to the table without a case fails here.  Proofs run the
engine's own backward on symbolic Tensors and compare it with ``sympy.diff`` of
:math:`L = \\sum \\bar O \\odot O` for every input element (see
``tinygrad_attn/verify/symbolic.py``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_attn as ta
from tinygrad_attn.engine import ops
from tinygrad_attn.engine.symbolic_backend import SymbolicUnsupported, exact_constant
from tinygrad_attn.verify.symbolic import MAX_SYMBOLS, Derivation, derive, equivalent, symbols
from tinygrad_attn.engine import toposort

from op_cases import CASES, all_cases

NAMES = "abcdefgh"

# Kinks: relu, abs and max are not differentiable where an input is 0 or two inputs tie.
# Their symbolic forms use Heaviside / sign / a product of Heaviside(x_i - x_j) (the
# indicator of the maximum, valid when there are no ties), and the proofs evaluate at
# random points, where zeros and ties have probability 0.  No op is excluded.
KINKED = {ops.Relu, ops.Abs, ops.Max}


def _derive_case(case) -> Derivation:
    shapes = {NAMES[i]: s for i, s in enumerate(case.shapes)}
    return derive(case.fn, shapes, positive=case.positive)


# ----------------------------------------------------------------------------- the op table

@pytest.mark.parametrize("op", ops.OPS, ids=lambda op: op.__name__)
def test_every_op_in_the_table_has_a_symbolic_proof_case(op):
    """An op in ``OPS`` without a case in op_cases.py would go unproven: fail instead."""
    assert CASES.get(op), f"{op.__name__} has no case in tests/op_cases.py to prove it with"


@pytest.mark.parametrize("op,case", all_cases(), ids=[c.name for _, c in all_cases()])
def test_op_vjp_equals_sympy_derivative(op, case):
    """Engine backward (run symbolically) == sympy.diff for every element, with a symbolic
    upstream gradient, so the whole Jacobian is covered."""
    der = _derive_case(case)
    # the op under test really is in the recorded graph
    nodes = toposort(list(der.output_tensors))
    assert any(isinstance(t._ctx, op) for t in nodes), f"{case.name} does not use {op.__name__}"
    proof = der.prove_engine()
    assert proof.ok, str(proof)
    assert proof.checked == sum(int(np.prod(s)) for s in case.shapes)
    if op in KINKED:
        assert proof.method == "evaluation" or proof.max_residual == 0.0


def test_symbolic_softmax_is_the_plain_form_without_max_shift():
    """Symbolic runs take softmax as exp(x_i) / sum_j exp(x_j): no Max, no shift."""
    x = symbols("x", (3,))
    y = x.softmax(-1).data
    x0, x1, x2 = x.data
    assert not y[0].has(sp.Max)
    assert sp.simplify(y[0] - sp.exp(x0) / (sp.exp(x0) + sp.exp(x1) + sp.exp(x2))) == 0


def test_masked_score_contributes_exactly_zero_weight_and_gradient():
    """A -inf score gives exp(-oo) = 0 exactly; its gradient is exactly 0, not small."""
    mask = np.array([False, True, False])
    der = derive(lambda s: s.masked_fill(mask, -np.inf).softmax(-1), {"s": (3,)})
    assert der.outputs[0][1] == 0
    assert der.gradients["s"][1] == 0
    assert all(e == 0 for e in der.engine_gradients()["s"][[1]])
    assert der.prove_engine().ok


def test_float_constants_become_the_exact_numbers_they_stand_for():
    """1/np.sqrt(3) is sqrt(3)/3 (within 4 ulp), 0.1 is 1/10, others their binary value."""
    assert exact_constant(float(1 / np.sqrt(3))) == sp.sqrt(3) / 3
    assert exact_constant(0.1) == sp.Rational(1, 10)
    assert exact_constant(-np.inf) == -sp.oo
    v = 0.37454011884736254
    assert exact_constant(v) == sp.Rational(v)  # no simple form: the exact binary value
    x = symbols("x", (2,))
    assert (x * (1 / math.sqrt(2))).data[0] == sp.sqrt(2) * x.data[0] / 2


def test_symbols_are_named_after_tensor_and_index():
    q = symbols("Q", (2, 3))
    assert q.data[0, 1].name == "Q_0_1" and q.name == "Q" and q.requires_grad
    assert symbols("b", ()).data[()].name == "b"
    der = derive(lambda Q: (Q * Q).sum(), {"Q": (2, 2)})
    assert der.gradients["Q"][1, 0] == 2 * sp.Symbol("dO", real=True) * q.data[1, 0]


# ----------------------------------------------------------------------------- proofs fail

class _ExpOffByOne(ta.Function):
    """exp with a backward that is wrong by a factor (1 + 1e-7): a deliberately bad VJP."""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.exp(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.xp.exp(ctx.parents[0].data) * ctx.xp.constant(1 + 1e-7, g)


def test_prove_engine_rejects_a_wrong_vjp():
    """Negative control: a 1e-7 relative error in a user VJP is found by the proof."""
    der = derive(lambda x: _ExpOffByOne.apply(x), {"x": (2,)})
    proof = der.prove_engine()
    assert not proof.ok and proof.verdict == "FAILED"
    assert {f[0] for f in proof.failures} == {"x"}
    assert "FAILED: 2 of 2 elements of x differ" in str(proof)
    for method in ("exact", "identity", "evaluation"):
        assert not der.prove_engine(method=method).ok, method


def test_equivalent_rejects_a_wrong_closed_form_both_ways():
    """Negative control for both zero-equivalence methods: softmax Jacobian missing p p^T."""
    x = symbols("x", (3,))
    der = derive(lambda x: x.softmax(-1), {"x": (3,)}, cotangent="symbolic")
    p = der.outputs[0]
    g = der.cotangents[0]
    right = p * (g - np.sum(g * p))
    wrong = p * g
    assert der.prove({"x": right}).ok
    assert not der.prove({"x": wrong}).ok
    y = symbols("y", (2,)).data
    assert equivalent({"a": np.array([(y[0] + y[1]) ** 2])},
                      {"a": np.array([y[0] ** 2 + 2 * y[0] * y[1] + y[1] ** 2])}).ok
    for method in ("auto", "exact", "identity", "evaluation"):
        bad = equivalent({"a": np.array([(y[0] + y[1]) ** 2])},
                         {"a": np.array([y[0] ** 2 + y[1] ** 2])}, method=method)
        assert not bad.ok and bad.verdict == "FAILED", method
        assert bad.failures and bad.failures[0][:2] == ("a", (0,))
    del x


def test_proof_says_which_method_decided_it():
    """The three verdicts, each from the decider that reached it (and "simplification",
    the old name of exact cancellation, still accepted)."""
    der = derive(lambda x: x.tanh().sum(), {"x": (2,)})
    ev = der.prove_engine(method="evaluation", points=4, digits=60)
    assert ev.ok and not ev.proven and ev.verdict == "agrees numerically (not a proof)"
    assert "4 random points with 60 significant digits" in str(ev)
    for method in ("exact", "simplification"):
        ex = der.prove_engine(method=method)
        assert ex.proven and ex.verdict == "proven (exact)" and ex.method == "exact"
        assert "by exact cancellation" in str(ex)
    pit = der.prove_engine(method="identity", trials=3)
    assert pit.proven and pit.method == "identity testing" and pit.trials == 3
    assert pit.verdict == f"proven with probability >= 1 - 2^-{pit.k} (identity testing)"
    assert pit.k > 100 and pit.verdict in str(pit)
    with pytest.raises(ValueError, match="method must be one of"):
        der.prove_engine(method="simplify")


# ----------------------------------------------------------------------------- three-way

def _sdpa(q, k, v):
    return ((q @ k.T) * (1 / np.sqrt(q.shape[-1]))).softmax(-1) @ v


def test_three_way_gradcheck_agrees_on_attention():
    """Engine, finite differences and SymPy agree on scaled dot-product attention."""
    rng = np.random.default_rng(1)
    q, k, v = (ta.Tensor(rng.standard_normal((2, 3)), requires_grad=True, name=n)
               for n in "QKV")
    report = ta.gradcheck(_sdpa, q, k, v, symbolic=True)
    assert report.ok, str(report)
    assert all(r.sym_ok and r.sym_max_abs_err < 1e-14 for r in report.inputs)
    assert "sympy" in str(report) and "|engine-sympy|" in str(report)


def test_three_way_gradcheck_catches_a_vjp_error_hidden_in_finite_difference_noise():
    """Negative control (DESIGN.md): an error of 1e-7 relative in a user op's VJP passes
    the finite-difference comparison (it is below its noise at this point: the output
    carries an offset of 1e5, so each difference loses ~11 digits) and is caught by the
    comparison with SymPy's exact gradient alone."""
    x = ta.Tensor(np.array([2.1, 2.6, 3.2]), requires_grad=True, name="x")
    fn = lambda x: _ExpOffByOne.apply(x) + 1e5  # noqa: E731
    fd_only = ta.gradcheck(fn, x, rtol=1e-5)
    assert fd_only.ok  # finite differences cannot see it
    report = ta.gradcheck(fn, x, symbolic=True, rtol=1e-5)
    (row,) = report.inputs
    assert row.ok and row.sym_ok is False and not report.ok
    # at the element the report shows: the engine is off by the injected 1e-7 relative,
    # while the finite differences themselves are off by more than that
    engine_err_rel = abs(row.analytical - row.symbolic) / abs(row.symbolic)
    fd_noise_rel = abs(row.numerical - row.symbolic) / abs(row.symbolic)
    assert engine_err_rel == pytest.approx(1e-7, rel=1e-3)
    assert fd_noise_rel > engine_err_rel
    assert "hidden in the finite-difference noise" in str(report)


def test_evaluate_with_cse_matches_engine_numeric_backward():
    """lambdify(cse=True) evaluation of the exact gradients == engine backward at a point."""
    der = derive(_sdpa, {"Q": (2, 2), "K": (3, 2), "V": (3, 2)})
    rng = np.random.default_rng(2)
    vals = {n: rng.standard_normal(t.shape) for n, t in der.inputs.items()}
    g = rng.standard_normal((2, 2))
    fast = der.evaluate(vals, [g])
    exact = der.evaluate(vals, [g], digits=50)
    ts = {n: ta.Tensor(v, requires_grad=True) for n, v in vals.items()}
    _sdpa(ts["Q"], ts["K"], ts["V"]).backward(g)
    for n in vals:
        np.testing.assert_allclose(fast[n], exact[n], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ts[n].grad, exact[n], rtol=1e-12, atol=1e-14)


def test_derivation_latex_uses_indexed_names_and_bars():
    der = derive(lambda Q: (Q * Q).sum(), {"Q": (1, 2)})
    tex = der.latex("Q", (0, 1))
    assert "Q_{0,1}" in tex and r"\bar{O}" in tex
    assert r"\left[" in der.latex("Q")


# ----------------------------------------------------------------------------- bad input

def test_too_many_symbols_is_refused_with_the_limit_and_the_estimate():
    with pytest.raises(ValueError, match=f"limit of {MAX_SYMBOLS}") as err:
        derive(lambda q: q.sum(), {"q": (70, 70)})
    msg = str(err.value)
    assert "4900" in msg and "q (70, 70)" in msg and "max_symbols=4900" in msg
    assert "scalar operations" in msg and "takes about" in msg
    with pytest.raises(ValueError, match="limit of 8"):
        derive(lambda q: q.sum(), {"q": (3, 3)}, max_symbols=8)
    assert derive(lambda q: q.sum(), {"q": (3, 3)}, max_symbols=9).prove_engine().ok
    w = ta.Tensor(np.ones((3, 4)), requires_grad=True, name="W")
    with pytest.raises(ValueError, match="limit of 10"):
        ta.gradcheck(lambda w: w.exp(), w, symbolic=True, max_symbols=10)
    assert ta.gradcheck(lambda w: w.exp(), w, symbolic=True, max_symbols=12).ok


def test_missing_symbolic_operation_is_named():
    class Erf(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return ctx.xp.erf(x)

    with pytest.raises(SymbolicUnsupported, match="Erf.forward.*'erf'"):
        derive(lambda x: Erf.apply(x), {"x": (2,)})


def test_user_function_calling_numpy_on_symbols_is_named():
    class NumpyExp(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return np.exp(x)

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match="NumpyExp.forward.*ctx.xp"):
        derive(lambda x: NumpyExp.apply(x), {"x": (2,)})
    x = ta.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="NumpyExp"):
        ta.gradcheck(lambda x: NumpyExp.apply(x), x, symbolic=True)


def test_symbol_names_that_would_clash_are_refused():
    """``Q`` (2, 2) has ``Q_0_0``; an input ``Q_0`` of shape (2,) would have it too."""
    with pytest.raises(ValueError, match="Q_0_0"):
        derive(lambda a, b: a.sum() + b.sum(), {"Q": (2, 2), "Q_0": (2,)})
    with pytest.raises(ValueError, match="cotangent of O"):
        derive(lambda a: a * 2.0, {"dO": (2,)})


@pytest.mark.parametrize("shapes,match", [
    ({}, "non-empty dict"),
    ({"x": "ab"}, "tuple of ints"),
    ({"x": (-1,)}, "negative size"),
    ({"x": np.ones(2)}, "give at least one shape"),
])
def test_bad_shapes_are_refused(shapes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        derive(lambda x: x, shapes)


def test_constant_inputs_stay_exact_and_get_no_gradient():
    w = np.array([0.5, 0.25])
    der = derive(lambda x, w: (x * w).sum(), {"x": (2,), "w": w})
    assert list(der.gradients) == ["x"]
    assert der.gradients["x"][1] == sp.Symbol("dO", real=True) / 4


# ----------------------------------------------------------------------------- compositions

_UNARY = {
    "tanh": lambda t: t.tanh(), "sigmoid": lambda t: t.sigmoid(), "exp": lambda t: t.exp(),
    "square": lambda t: t * t, "softmax": lambda t: t.softmax(-1),
    "log_softmax": lambda t: t.log_softmax(-1), "transpose": lambda t: t.T,
    "scale": lambda t: t * 0.5 - 1.0, "rowsum": lambda t: t.sum(axis=-1, keepdims=True) + t,
}


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(sorted(_UNARY)), min_size=1, max_size=4),
       st.sampled_from([(2, 2), (1, 3), (3, 1)]))
def test_engine_backward_of_random_compositions_equals_sympy_derivative(chain, shape):
    """The chain rule as the engine walks it (reverse topological order, accumulation
    into reused nodes) matches sympy.diff for random compositions of ops, with the
    input used twice so that accumulation is exercised."""
    def fn(x, w):
        y = x
        for name in chain:
            y = _UNARY[name](y)
        return y * w + x.sum()

    der = derive(fn, {"x": shape, "w": (1,)})
    proof = der.prove_engine()
    assert proof.ok, f"{chain}: {proof}"


def test_random_rational_cotangent_proves_a_projection_and_evaluates_without_one():
    """cotangent="random": small random rationals instead of symbols (one projection of
    the Jacobian); evaluate() then needs no cotangent and still matches the engine."""
    der = derive(_sdpa, {"Q": (2, 2), "K": (2, 2), "V": (2, 1)}, cotangent="random", seed=3)
    assert all(isinstance(e, sp.Rational) and e != 0 for e in der.cotangents[0].ravel())
    assert der.prove_engine().ok
    rng = np.random.default_rng(4)
    vals = {n: rng.standard_normal(t.shape) for n, t in der.inputs.items()}
    exact = der.evaluate(vals, digits=50)
    ts = {n: ta.Tensor(v, requires_grad=True) for n, v in vals.items()}
    _sdpa(ts["Q"], ts["K"], ts["V"]).backward(der.cotangents[0].astype(np.float64))
    for n in vals:
        np.testing.assert_allclose(ts[n].grad, exact[n], rtol=1e-12, atol=1e-14)
