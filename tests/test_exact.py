"""The exact decision procedure (verify/atoms.py, field.py, bounds.py, identity.py, dag.py,
equivalence.py): it proves what is true, says so with the right verdict, and never proves
what is false -- negative controls at full size included.

No test here measures time (``benchmarks/bench_symbolic.py`` does).
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import sympy as sp

import tinygrad_attn as ta
from tinygrad_attn.verify import symbolic
from tinygrad_attn.verify.atoms import AtomTable, monomials
from tinygrad_attn.verify.bounds import BoundAlgebra
from tinygrad_attn.verify.dag import DagEvaluator, SympyAlgebra, reverse_gradients
from tinygrad_attn.verify.equivalence import equivalent
from tinygrad_attn.verify.field import is_prime, random_prime
from tinygrad_attn.verify.identity import LOG2_PRIMES, Expressions, identity_test
from tinygrad_attn.verify.proof import VERDICTS
from tinygrad_attn.verify.symbolic import derive, estimate, symbols

x, y, z = sp.symbols("x y z", real=True)
u = sp.Symbol("u", positive=True)


def verdict(lhs: sp.Expr, rhs: sp.Expr, **kw) -> str:
    return equivalent({"a": np.array([lhs])}, {"a": np.array([rhs])}, **kw).verdict


# ----------------------------------------------------------------------------- verdicts

def test_the_verdicts_are_the_three_words_of_the_issue_and_failed():
    assert VERDICTS == ("proven (exact)",
                        "proven with probability >= 1 - 2^-{k} (identity testing)",
                        "agrees numerically (not a proof)", "FAILED")


@pytest.mark.parametrize("lhs,rhs", [
    (sp.exp(x) * sp.exp(-x), 1),                                  # e^a e^b = e^(a+b)
    (sp.exp(2 * x + y), sp.exp(x) ** 2 * sp.exp(y)),              # e^(kx) = (e^x)^k
    (sp.exp(x / 2) ** 2, sp.exp(x)),                              # gcd of the coefficients
    (sp.tanh(x), (sp.exp(2 * x) - 1) / (sp.exp(2 * x) + 1)),      # tanh through exp
    (sp.cosh(x) + sp.sinh(x), sp.exp(x)),
    (1 / (1 + sp.exp(-x)), sp.exp(x) / (sp.exp(x) + 1)),          # sigmoid
    (sp.sqrt(u + 1) ** 2, u + 1),                                 # (sqrt w)^2 = w, w whole
    (u ** sp.Rational(3, 2) / sp.sqrt(u), u),
    (sp.sqrt(2) * sp.sqrt(6), 2 * sp.sqrt(3)),                    # roots of constants exact
    (sp.Abs(x), sp.sign(x) * x),                                  # away from the kink
    (sp.Max(x, y) + sp.Min(x, y), x + y),
    (sp.exp(z * sp.log(u)), u ** z),                              # e^(z log u) = u^z
])
def test_normalised_atoms_prove_true_identities(lhs, rhs):
    assert verdict(lhs, rhs).startswith("proven"), (lhs, rhs)
    assert verdict(lhs, rhs, method="identity").startswith("proven with probability")


def test_a_relation_the_lifting_forgets_is_reported_as_numbers_not_as_a_proof():
    """sin^2 + cos^2 = 1 is true, but sin and cos are independent atoms: not proven, and
    said so -- the evaluation agrees and is labelled "not a proof"."""
    assert verdict(sp.sin(x) ** 2 + sp.cos(x) ** 2, 1) == "agrees numerically (not a proof)"
    assert verdict(sp.Abs(x) * sp.sign(x), x) == "agrees numerically (not a proof)"  # s^2 = 1


@pytest.mark.parametrize("lhs,rhs", [
    (sp.exp(x + y), sp.exp(x) + sp.exp(y)),
    (sp.tanh(x), (sp.exp(x) - 1) / (sp.exp(x) + 1)),
    (sp.sqrt(2) * sp.sqrt(3), sp.sqrt(5)),
    (x + sp.Rational(1, 10 ** 30), x),
    (x * (1 + sp.Rational(1, 10 ** 45)), x),          # below the evaluation's tolerance
    (sp.Max(x, y), x),
])
def test_false_identities_are_never_proven(lhs, rhs):
    for method in ("auto", "exact", "identity"):
        assert not verdict(lhs, rhs, method=method).startswith("proven"), (lhs, rhs, method)


def test_a_difference_below_the_evaluation_tolerance_is_caught_by_exact_arithmetic():
    """1e-45 relative is below the numerical tolerance of 1e-40: evaluation alone agrees,
    identity testing finds the lifts differ, so the verdict is never "proven"."""
    lhs, rhs = np.array([x * (1 + sp.Rational(1, 10 ** 45))]), np.array([x])
    assert equivalent({"a": lhs}, {"a": rhs}, method="evaluation").ok
    pit = equivalent({"a": lhs}, {"a": rhs}, method="identity")
    assert not pit.proven and pit.tested == 0 and pit.numeric == 1


# ----------------------------------------------------------------------------- identity testing

def test_primes_are_prime_and_drawn_from_the_range():
    for n in list(range(2000)) + [561, 1105, 2 ** 61 - 1, 2 ** 61 + 1, 3215031751]:
        assert is_prime(n) == sp.isprime(n), n
    rng = random.Random(3)
    for _ in range(5):
        p = random_prime(rng)
        assert 2 ** 61 <= p < 2 ** 62 and sp.isprime(p)
    assert 55 < LOG2_PRIMES < 56


def test_a_large_integer_coefficient_is_counted_against_the_bound():
    """lhs - rhs = c x with c a product of 62-bit primes: zero modulo those primes only
    (bad primes).  Rejected, and the height bound reflects c."""
    c = 1
    rng = random.Random(7)
    for _ in range(6):
        c *= random_prime(rng)
    res = identity_test(Expressions([(c + 1) * x]), Expressions([x]))
    assert res.nonzero == [0]
    assert res.height >= math.log2(c)


def test_the_probability_bound_follows_degree_height_and_trials():
    lhs, rhs = Expressions([(x + y) ** 3]), Expressions([sp.expand((x + y) ** 3)])
    one, three = identity_test(lhs, rhs, trials=1), identity_test(lhs, rhs, trials=3)
    assert one.nonzero == three.nonzero == [] and one.trials == 1 and three.trials == 3
    assert one.degree == 3 and 50 < one.k < three.k
    assert identity_test(Expressions([x - x]), Expressions([0])).k is None  # exactly 0


def test_degree_and_height_bounds_hold_for_polynomials():
    rng = np.random.default_rng(0)
    for _ in range(20):
        terms = [int(rng.integers(-9, 10)) * x ** int(rng.integers(0, 4))
                 * y ** int(rng.integers(0, 3)) for _ in range(4)]
        expr = sp.Mul(sp.Add(*terms[:2]), sp.Add(*terms[2:]) + 3, evaluate=False)
        alg = BoundAlgebra(AtomTable([expr]))
        b = DagEvaluator(alg).value(expr)
        poly = sp.Poly(sp.expand(expr), x, y)
        if poly.is_zero:
            continue
        assert b.deg >= poly.total_degree()
        assert b.h >= math.log2(sum(abs(int(c)) for c in poly.coeffs())) - 1e-9


def test_bounds_share_a_common_denominator():
    """sum_j e_j / Z over one Z: the denominator is Z once, not Z^n."""
    es = [sp.exp(v) for v in sp.symbols("s0:6", real=True)]
    zsum = sp.Add(*es)
    expr = sp.Add(*[e / zsum for e in es])
    alg = BoundAlgebra(AtomTable([expr]))
    b = DagEvaluator(alg).value(expr)
    assert len(b.den) == 1 and list(b.den.values()) == [1] and b.deg <= 2 * 6


def test_exp_exponents_are_expanded_into_monomials():
    cache: dict = {}
    mono = monomials(sp.sqrt(2) * (x * y + 2 * z) / 4, cache)
    assert sorted(mono.values()) == [sp.Rational(1, 4), sp.Rational(1, 2)]


# ----------------------------------------------------------------------------- the reference

def test_reverse_mode_reference_is_sympy_diff():
    """The reference derivative (reverse mode over the DAG) equals sympy.diff exactly."""
    def fn(q, k, w):
        return ((q @ k.T).tanh() * w).softmax(-1).log() + (q * q).sqrt()

    der = derive(fn, {"q": (2, 2), "k": (2, 2), "w": (1, 2)}, positive=["q"])
    diff = {}
    for name, t in der.inputs.items():
        diff[name] = np.array([sp.diff(der.objective, s) for s in t.data.reshape(-1)],
                              dtype=object).reshape(t.shape)
    proof = equivalent(der.gradients, diff, subject="reverse mode == sympy.diff")
    assert proof.proven, str(proof)


def test_reverse_mode_never_reads_the_engine_op_table():
    """The reference of a function with a deliberately wrong op VJP is still right: it
    comes from the SymPy expressions, not from the ops' backward."""
    x_ = symbols("x", (3,))
    out = (x_ * x_).exp().data
    g = symbols("g", (3,)).data
    grads = reverse_gradients(DagEvaluator(SympyAlgebra()), list(zip(out, g)),
                              list(x_.data))
    for i in range(3):
        assert sp.simplify(grads[i] - 2 * x_.data[i] * g[i] * sp.exp(x_.data[i] ** 2)) == 0


# ----------------------------------------------------------------------------- negative control

class _UserAttention(ta.Function):
    """Scaled dot-product attention as one user op with a hand-written backward, through
    ``ctx.xp`` so that it runs on symbols; ``WRONG`` perturbs one element of dQ by 1e-7
    relative."""

    WRONG = False

    @staticmethod
    def forward(ctx, q, k, v):
        xp = ctx.xp
        e = xp.exp(xp.matmul(q, k.T) * xp.constant(1 / math.sqrt(q.shape[-1]), q))
        p = e / np.sum(e, axis=-1, keepdims=True)
        ctx.save_for_backward(p)
        return xp.matmul(p, v)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        q, k, v = (t.data for t in ctx.parents)
        (p,) = ctx.saved_tensors
        scale = xp.constant(1 / math.sqrt(q.shape[-1]), q)
        dp = xp.matmul(g, v.T)
        ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
        dq = xp.matmul(ds, k) * scale
        if type(ctx).WRONG:
            dq = dq.copy()
            dq[1, 2] = dq[1, 2] * xp.constant(1 + 1e-7, dq)[()]
        return dq, xp.matmul(ds.T, q) * scale, xp.matmul(p.T, g)


class _WrongUserAttention(_UserAttention):
    WRONG = True


SHAPES = {"Q": (8, 8), "K": (8, 8), "V": (8, 8)}


def test_a_correct_user_function_is_proven_at_size_8():
    der = derive(lambda q, k, v: _UserAttention.apply(q, k, v), SHAPES)
    proof = der.prove_engine()
    assert proof.proven and proof.checked == 192, str(proof)
    assert proof.method == "identity testing" and proof.k >= 64


def test_a_user_backward_wrong_by_1e_7_in_one_element_is_rejected_at_size_8():
    der = derive(lambda q, k, v: _WrongUserAttention.apply(q, k, v), SHAPES)
    proof = der.prove_engine()
    assert not proof.ok and proof.verdict == "FAILED"
    assert [(n, i) for n, i, _ in proof.failures] == [("Q", (1, 2))]
    assert 1e-12 < proof.failures[0][2] <= 1.01e-7  # relative to max(1, |exact|)
    # the other 191 elements are still proven by identity testing
    assert proof.tested == 191 and proof.numeric == 1
    # and the same wrong element is found with a numeric engine (the float64 point)
    rng = np.random.default_rng(0)
    ts = [ta.Tensor(rng.standard_normal(s), requires_grad=True, name=n)
          for n, s in SHAPES.items()]
    report = ta.gradcheck(lambda q, k, v: _WrongUserAttention.apply(q, k, v), *ts,
                          symbolic=True)
    assert not report.ok and report.inputs[0].sym_ok is False


def test_the_sdpa_backward_is_proven_at_size_8_fused_and_composed():
    for fused in (False, True):
        der = derive(lambda q, k, v: ta.attention.scaled_dot_product(q, k, v,
                                                                     fused=fused)[0], SHAPES)
        proof = der.prove_engine()
        assert proof.proven and proof.checked == 192, str(proof)


# ----------------------------------------------------------------------------- sample, estimate

def test_sample_checks_k_random_elements_and_says_so():
    der = derive(lambda q, k, v: _WrongUserAttention.apply(q, k, v),
                 {"Q": (3, 4), "K": (3, 4), "V": (3, 4)})
    some = der.prove_engine(sample=5, seed=1)
    assert some.checked == 5 and some.population == 36
    assert "a random sample of 5 of 36" in str(some)
    assert der.prove_engine(sample=100).checked == 36
    with pytest.raises(ValueError, match="positive"):
        der.prove_engine(sample=0)
    # the wrong element Q[1, 2] is caught whenever it is drawn, never otherwise
    for seed in range(6):
        proof = der.prove_engine(sample=6, seed=seed)
        drawn = proof.ok is False
        assert drawn == any(f[:2] == ("Q", (1, 2)) for f in proof.failures)


def test_gradcheck_sample_proves_k_elements_of_the_engine_backward():
    rng = np.random.default_rng(2)
    ts = [ta.Tensor(rng.standard_normal((3, 3)), requires_grad=True, name=n) for n in "QKV"]
    fn = lambda q, k, v: ta.attention.scaled_dot_product(q, k, v)[0]  # noqa: E731
    exact = symbolic.exact_gradients(fn, ts, [rng.standard_normal((3, 3))], sample=4)
    assert len(exact) == 3 and exact.proof.proven and exact.proof.checked == 4
    assert ta.gradcheck(fn, *ts, symbolic=True, sample=4).ok


def test_estimate_before_the_run_grows_with_the_size():
    fn = lambda q, k, v: ta.attention.scaled_dot_product(q, k, v)[0]  # noqa: E731
    small = estimate(fn, {"Q": (4, 4), "K": (4, 4), "V": (4, 4)})
    large = estimate(fn, {"Q": (16, 16), "K": (16, 16), "V": (16, 16)})
    assert small.symbols == 64 and large.symbols == 1024
    assert large.operations > 30 * small.operations and large.seconds > small.seconds
    assert "scalar operations" in str(large) and "takes about" in str(large)
