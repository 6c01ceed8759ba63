"""Unit tests of the index-notation normaliser: each rewrite rule, where it must fire and
where it must NOT (soundness), plus a numeric cross-check of what it proves."""

import numpy as np
import pytest
import sympy as sp

from tinygrad_attn.verify.indexcalc import evaluate, normal_form, prove_equal
from tinygrad_attn.verify.proof import Proof

n, m, d = sp.symbols("n m d", positive=True, integer=True)
i, j, k, a, b = sp.symbols("i j k a b", integer=True)
x, y = sp.symbols("x y", integer=True)
A, B, C = sp.IndexedBase("A"), sp.IndexedBase("B"), sp.IndexedBase("C")
N, M = (0, n - 1), (0, m - 1)


def S(body, *limits):
    return sp.Sum(body, *[(v, 0, size - 1) for v, size in limits])


def numeric_close(lhs, rhs, sizes, free, seed=0) -> bool:
    """Evaluate both sides at concrete sizes with random tensors; True if they agree."""
    rng = np.random.default_rng(seed)
    values = dict(sizes)
    values.update(free)
    for base in (A, B, C):
        values[base] = rng.normal(size=(4, 4))
    return abs(evaluate(lhs, values) - evaluate(rhs, values)) < 1e-9


# --- delta collapse: sum_i delta(i, v) f(i) = f(v), only within one range -------------

def test_delta_collapse_with_free_index_of_same_range():
    assert prove_equal(S(sp.KroneckerDelta(i, x) * A[i, y], (i, n)), A[x, y], {x: N, y: M})


def test_delta_collapse_does_not_fire_across_ranges():
    # x ranges over m, i over n: sum_i delta(i, x) A_i is A_x only if x < n. Not provable.
    pr = prove_equal(S(sp.KroneckerDelta(i, x) * A[i, 0], (i, n)), A[x, 0], {x: M})
    assert not pr and pr.residual


def test_delta_collapse_does_not_fire_for_an_index_of_unknown_range():
    assert not prove_equal(S(sp.KroneckerDelta(i, x) * A[i, 0], (i, n)), A[x, 0], {})


def test_delta_collapse_with_both_indices_bound_in_the_same_range():
    lhs = S(sp.KroneckerDelta(i, j) * A[i, j], (i, n), (j, n))
    assert prove_equal(lhs, S(A[i, i], (i, n)), {})


def test_delta_with_both_indices_bound_in_different_ranges_is_kept():
    lhs = S(sp.KroneckerDelta(i, j) * A[i, j], (i, n), (j, m))
    assert not prove_equal(lhs, S(A[i, i], (i, n)), {})
    assert not prove_equal(lhs, S(A[j, j], (j, m)), {})


def test_delta_of_two_free_indices_is_a_factor_not_a_collapse():
    assert not prove_equal(sp.KroneckerDelta(x, y) * A[x, 0], A[y, 0], {x: N, y: N})


def test_delta_with_a_compound_index_is_never_collapsed():
    lhs = S(sp.KroneckerDelta(i + 1, x) * A[i, 0], (i, n))
    assert not prove_equal(lhs, A[x - 1, 0], {x: N})


# --- distribution and prenex form --------------------------------------------------------

def test_sum_distributes_over_addition():
    assert prove_equal(S(A[i, 0] + B[i, 0], (i, n)), S(A[i, 0], (i, n)) + S(B[j, 0], (j, n)),
                       {})


def test_product_of_sums_is_a_double_sum():
    assert prove_equal(S(A[i, 0], (i, n)) * S(B[j, 0], (j, m)),
                       S(A[i, 0] * B[j, 0], (i, n), (j, m)), {})


def test_product_of_sums_with_the_same_bound_name_is_not_captured():
    # (sum_i A_i)(sum_i B_i) != sum_i A_i B_i
    lhs = S(A[i, 0], (i, n)) * S(B[i, 0], (i, n))
    assert not prove_equal(lhs, S(A[i, 0] * B[i, 0], (i, n)), {})
    assert not numeric_close(lhs, S(A[i, 0] * B[i, 0], (i, n)), {n: 3}, {})


def test_square_of_a_sum_expands_with_separate_indices():
    assert prove_equal(S(A[i, 0], (i, n)) ** 2, S(A[i, 0] * A[j, 0], (i, n), (j, n)), {})


def test_factor_free_of_the_bound_index_is_pulled_out():
    assert prove_equal(S(A[i, 0] * B[x, 0] / sp.sqrt(d), (i, n)),
                       B[x, 0] * S(A[i, 0], (i, n)) / sp.sqrt(d), {x: M})


def test_sum_over_an_unused_index_is_the_range_size():
    assert prove_equal(S(B[x, 0], (i, n)), n * B[x, 0], {x: M})
    assert not prove_equal(S(B[x, 0], (i, n)), m * B[x, 0], {x: M})


def test_range_size_respects_lower_and_upper_bound():
    assert prove_equal(sp.Sum(B[x, 0], (i, 2, n)), (n - 1) * B[x, 0], {x: M})


# --- canonical renaming of bound indices --------------------------------------------------

def test_renaming_bound_indices_of_the_same_range():
    assert prove_equal(S(A[i, j] * B[j, 0], (i, n), (j, n)),
                       S(A[j, i] * B[i, 0], (j, n), (i, n)), {})


def test_swapping_indices_of_different_ranges_is_not_a_renaming():
    # sum_{i<n, j<m} A_ij  vs  sum_{i<n, j<m} A_ji: different sums when n != m
    lhs, rhs = S(A[i, j], (i, n), (j, m)), S(A[j, i], (i, n), (j, m))
    assert not prove_equal(lhs, rhs, {})
    assert not numeric_close(lhs, rhs, {n: 2, m: 3}, {})


def test_exchanging_two_sums_of_the_same_range_is_proven():
    assert prove_equal(S(A[i, j], (i, n), (j, n)), S(A[j, i], (i, n), (j, n)), {})


# --- opaque units -------------------------------------------------------------------------

def test_opaque_argument_is_normalised_with_its_own_bound_index():
    assert prove_equal(sp.exp(S(A[x, a], (a, d))), sp.exp(S(A[x, b], (b, d))), {x: N})


def test_delta_inside_an_opaque_argument_collapses():
    lhs = sp.exp(S(sp.KroneckerDelta(i, x) * A[i, 0], (i, n)))
    assert prove_equal(lhs, sp.exp(A[x, 0]), {x: N})
    assert not prove_equal(lhs, sp.exp(A[x, 0]), {x: M})


def test_product_of_exponentials_is_the_exponential_of_the_sum():
    assert prove_equal(sp.exp(A[x, 0]) * sp.exp(B[x, 0]), sp.exp(A[x, 0] + B[x, 0]), {x: N})


def test_tanh_is_not_additive():
    lhs, rhs = sp.tanh(A[x, 0] + B[x, 0]), sp.tanh(A[x, 0]) + sp.tanh(B[x, 0])
    assert not prove_equal(lhs, rhs, {x: N})


def test_reciprocal_of_a_sum_squared_combines_powers():
    Z = S(sp.exp(A[x, k]), (k, m))
    assert prove_equal(1 / Z * (1 / Z), Z ** -2, {x: N})
    assert not prove_equal(1 / Z, Z ** -2, {x: N})


def test_reciprocal_of_a_sum_is_not_split():
    # 1 / (a + b) != 1/a + 1/b
    assert not prove_equal(1 / (A[x, 0] + B[x, 0]), 1 / A[x, 0] + 1 / B[x, 0], {x: N})


def test_fractional_power_of_a_product_is_not_split():
    # sqrt(ab) = sqrt(a) sqrt(b) fails for a, b < 0
    assert not prove_equal(sp.sqrt(A[x, 0] * B[x, 0]), sp.sqrt(A[x, 0]) * sp.sqrt(B[x, 0]),
                           {x: N})


def test_opaque_sum_with_inner_binder_named_like_a_free_index_is_not_captured():
    # sum_i delta(i, a) exp(sum_a B_{i a}) with free a: = exp(sum_b B_{a b}), not B_{b b}
    a_free = sp.Symbol("a", integer=True)
    lhs = S(sp.KroneckerDelta(i, a_free) * sp.exp(S(B[i, a], (a, n))), (i, n))
    assert prove_equal(lhs, sp.exp(S(B[a_free, b], (b, n))), {a_free: N})
    assert not prove_equal(lhs, sp.exp(S(B[b, b], (b, n))), {a_free: N})


# --- coefficients --------------------------------------------------------------------------

def test_size_coefficients_are_compared_exactly():
    assert prove_equal(S(A[i, 0], (i, n)) / sp.sqrt(d) * sp.sqrt(d), S(A[i, 0], (i, n)), {})
    assert not prove_equal(S(A[i, 0], (i, n)) / sp.sqrt(d), S(A[i, 0], (i, n)), {})


def test_terms_cancel_to_zero():
    assert prove_equal(S(A[i, 0], (i, n)) - S(A[j, 0], (j, n)), 0, {})


# --- the prover's result object and its refusals -----------------------------------------

def test_proof_reports_status_reason_and_residual():
    pr = prove_equal(S(A[i, 0], (i, n)), S(B[i, 0], (i, n)), {}, claim="A = B")
    assert isinstance(pr, Proof) and not pr and pr.claim == "A = B"
    assert pr.method == "normal form" and pr.lhs_terms == pr.rhs_terms == 1
    assert "do not cancel" in pr.reason and len(pr.residual) == 2
    assert str(pr).startswith("A = B: FAILED: not proven for every size")
    assert pr.verdict == "FAILED"
    assert any("sizes are integers" in s for s in pr.assumptions)


def test_other_binders_are_refused_not_guessed():
    pr = prove_equal(sp.Product(A[i, 0], (i, 0, n - 1)), sp.Product(A[i, 0], (i, 0, n - 1)),
                     {})
    assert not pr and pr.reason.startswith("unsupported")


def test_range_depending_on_an_index_is_refused():
    lhs = S(sp.Sum(A[i, j], (j, 0, i)), (i, n))
    assert not prove_equal(lhs, lhs, {})


def test_reserved_canonical_names_are_rejected():
    with pytest.raises(ValueError):
        normal_form(sp.Symbol("_b0_0"), {})


def test_derivative_of_a_row_sum_is_its_delta_collapse():
    # d/dA_xy sum_ij A_ij B_j = B_y
    lhs = sp.diff(S(A[i, j] * B[j, 0], (i, n), (j, m)), A[x, y])
    assert prove_equal(lhs, B[y, 0], {x: N, y: M})


def test_evaluate_loops_over_sums():
    vals = {n: 3, A: np.arange(16.0).reshape(4, 4)}
    assert evaluate(S(A[i, 1], (i, n)), vals) == 1 + 5 + 9


def test_both_provers_return_the_one_proof_type():
    # verify/proof.py: explicit sizes (symbolic.equivalent) and every size (prove_equal)
    from tinygrad_attn.verify.symbolic import Proof as SymbolicProof
    from tinygrad_attn.verify.symbolic import equivalent, symbols

    u = symbols("u", (2,)).data
    explicit = equivalent({"a": u * 2}, {"a": u + u}, subject="2u = u + u")
    every = prove_equal(S(A[i, 0], (i, n)), S(A[j, 0], (j, n)), {}, claim="rename")
    assert SymbolicProof is Proof and type(explicit) is type(every) is Proof
    assert explicit.ok and explicit.method == "exact" and explicit.subject == "2u = u + u"
    assert every.ok and every.method == "normal form" and every.lhs_terms == 1
    assert explicit.verdict == every.verdict == "proven (exact)"
    assert str(every).startswith("rename: proven (exact) for every size by normal form")
    with pytest.raises(ValueError, match="method"):
        Proof("x", True, "guess")


# --- Z times 1/Z: sum_j f(j) Z^e = Z^(e+1) when Z = sum_k f(k) ---------------------------

def _row(f):
    """Z = sum_k f(k) over the keys (range n)."""
    return S(f(k), (k, n))


def test_a_softmax_row_sums_to_one():
    e = lambda q: sp.exp(A[x, q])  # noqa: E731
    assert prove_equal(S(e(j) / _row(e), (j, n)), 1, {x: M})
    # a power of 1/Z keeps the rest: sum_j f(j) / Z^2 = 1 / Z
    assert prove_equal(S(e(j) / _row(e) ** 2, (j, n)), 1 / _row(e), {x: M})
    # the body may be any product the normal form recognises: a mask times exp
    f = lambda q: B[x, q] * sp.exp(A[x, q])  # noqa: E731
    assert prove_equal(S(f(j) / _row(f), (j, n)), 1, {x: M})


def test_z_over_z_needs_every_factor_of_the_summand():
    """Negative controls: an extra factor of j, another range, another row, another body."""
    e = lambda q: sp.exp(A[x, q])  # noqa: E731
    assert not prove_equal(S(e(j) * C[j, 0] / _row(e), (j, n)), 1, {x: M})
    assert not prove_equal(S(e(j) / _row(e), (j, m)), 1, {x: M})          # j over m
    other = S(sp.exp(A[y, k]), (k, n))                                    # row y, not x
    assert not prove_equal(S(e(j) / other, (j, n)), 1, {x: M, y: M})
    assert not prove_equal(S(e(j) ** 2 / _row(e), (j, n)), 1, {x: M})    # f^2, not f
    # and what it refuses is really false
    sizes = {n: 3, m: 2}
    assert not numeric_close(S(e(j) * C[j, 0] / _row(e), (j, n)), 1, sizes, {x: 1})
    assert not numeric_close(S(e(j) ** 2 / _row(e), (j, n)), 1, sizes, {x: 1})


def test_z_over_z_is_numerically_true_where_proven():
    e = lambda q: sp.exp(A[x, q])  # noqa: E731
    assert numeric_close(S(e(j) / _row(e) ** 2, (j, n)), 1 / _row(e), {n: 3, m: 2}, {x: 1})
