"""The engine's own code at symbolic sizes (tinygrad_attn.engine.indexbackend and
tinygrad_attn.verify.ownbackward): every case proven, the index arrays agree with the
NumPy engine at concrete sizes, deliberately wrong VJPs swapped into the op table are
rejected with a residual at the wrong term, and what cannot run says why."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import tinygrad_attn as ta
from tinygrad_attn.attention import kernels
from tinygrad_attn.attention import mechanisms as mech
from tinygrad_attn.engine import ops
from tinygrad_attn.engine.backend import SymbolicUnsupported
from tinygrad_attn.engine.indexbackend import (IndexUnsupported, index, index_input,
                                               parse_size, size_symbol, stand_in)
from tinygrad_attn.verify import ownbackward as ob
from tinygrad_attn.verify.indexcalc import evaluate, prove_equal
from tinygrad_attn.verify.proof import Proof


@pytest.mark.parametrize("case", ob.CASES, ids=lambda c: c.name)
def test_every_case_is_proven_from_the_engines_code(case: ob.Case) -> None:
    run = ob.proven(case)
    claims = {p.claim.split(": ", 1)[1]: p for p in run.proofs}
    assert {f"bar {name}" for name, _ in case.inputs} <= set(claims)
    assert ("forward = closed form" in claims) == (case.closed_form is not None)
    for claim, proof in claims.items():
        assert proof.ok, (claim, proof.reason, proof.residual)


# ----------------------------------------------------------------------------- semantics

_SIZES = {"m": 2, "n": 3, "d_k": 2, "d_v": 2, "d_q": 3, "h": 2, "H": 2, "d_h": 2,
          "d_model": 2}


def _concrete(size: str) -> int:
    return int(parse_size(size).subs({size_symbol(k): v for k, v in _SIZES.items()}))


def _numeric_gradients(case: ob.Case, data: dict[str, np.ndarray], mask: np.ndarray | None
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The NumPy engine's output and gradients of sum(Obar * O)."""
    tensors = {k: ta.Tensor(v, requires_grad=True) for k, v in data.items()}
    run = case.run
    if case.mechanism == "multi_head":  # the number of heads, H, as a number
        run = lambda t, m: mech.multi_head(t["X"], t["X"], t["W_q"], t["W_k"], t["W_v"],  # noqa
                                           t["W_o"], _SIZES["H"])[0]
    out = run(tensors, None if mask is None else mask.astype(bool))
    obar = np.random.default_rng(1).normal(size=out.shape)
    grads = ta.grad(out, list(tensors.values()), grad_outputs=obar)
    return obar, {k: g.data for k, g in zip(tensors, grads)}


@pytest.mark.parametrize("name", ["scaled_dot_product composed, mask M (m, n)",
                                  "scaled_dot_product fused, padding mask M (1, n)",
                                  "multi_head fused"])
def test_index_gradients_equal_the_numpy_engines_at_concrete_sizes(name: str) -> None:
    """An independent check of the index arrays' meaning (heads split and merged by
    reshape included): the index expressions, evaluated by looping over every Sum, give
    the NumPy engine's numbers."""
    case = next(c for c in ob.CASES if c.name == name)
    rng = np.random.default_rng(0)
    data = {k: rng.normal(size=tuple(map(_concrete, sizes))) for k, sizes in case.inputs}
    mask = None
    if case.mask is not None:
        mask = (rng.random(tuple(map(_concrete, case.mask))) < 0.6).astype(float)
        mask[..., 0] = 1.0                                   # no fully masked row
    obar, want = _numeric_gradients(case, data, mask)
    run = ob.run_case(case)
    values = {size_symbol(k): v for k, v in _SIZES.items()}
    values.update({sp.IndexedBase(k): v for k, v in data.items()})
    values.update({sp.IndexedBase("M"): mask, sp.IndexedBase("Obar"): obar})
    for k, g in run.grads.items():
        got = np.array([[evaluate(g.at(i, j), values) for j in range(want[k].shape[1])]
                        for i in range(want[k].shape[0])])
        np.testing.assert_allclose(got, want[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_the_mixed_radix_delta_collapses_only_over_exactly_its_ranges() -> None:
    """sum_{t<A} sum_{c<B} delta(t B + c, q) F[t, c] = F[q // B, q % B] for q in [0, AB):
    the prover's rule for a merged axis; with any range off by one it is not proven."""
    A, B = size_symbol("H"), size_symbol("d_h")
    t, c, q = sp.symbols("t c q", integer=True)
    F = sp.IndexedBase("F")
    want = F[sp.floor(q / B), sp.Mod(q, B)]

    def lhs(t_hi: sp.Expr, c_hi: sp.Expr) -> sp.Expr:
        return sp.Sum(sp.KroneckerDelta(t * B + c, q) * F[t, c], (t, 0, t_hi), (c, 0, c_hi))
    assert prove_equal(lhs(A - 1, B - 1), want, {q: (0, A * B - 1)}).ok
    assert not prove_equal(lhs(A - 1, B - 1), want, {q: (0, A * B)}).ok
    assert not prove_equal(lhs(A, B - 1), want, {q: (0, A * B - 1)}).ok
    assert not prove_equal(lhs(A - 1, B), want, {q: (0, A * B - 1)}).ok
    assert not prove_equal(lhs(A - 1, B - 1), F[sp.Mod(q, B), sp.floor(q / B)],
                           {q: (0, A * B - 1)}).ok


def test_reshape_splits_an_axis_into_heads_as_index_h_d_plus_c() -> None:
    x = index_input("X", ("n", "H*d_h"))
    H, d_h = size_symbol("H"), size_symbol("d_h")
    split = np.reshape(x, (x.shape[0], stand_in(H), stand_in(d_h)))
    assert split.sizes == (size_symbol("n"), H, d_h)
    i, t, c = sp.symbols("i t c", integer=True)
    assert split.at(i, t, c) == sp.IndexedBase("X")[i, t * d_h + c]


def test_what_the_index_arrays_cannot_represent_raises_naming_it() -> None:
    q = index_input("Q", ("m", "d_k"))
    with pytest.raises(IndexUnsupported, match="concatenate"):
        np.concatenate([q, q], axis=0)
    with pytest.raises(IndexUnsupported, match="amax"):
        index.amax(q, axis=-1, keepdims=True)
    with pytest.raises(IndexUnsupported, match="setting items"):
        q[0] = 1
    with pytest.raises(IndexUnsupported, match="concrete boolean mask"):
        index.where(kernels.causal_mask(*q.shape), q, q)
    (multi_head,) = ob.OUT_OF_REACH                 # heads one by one: slices at offsets
    reason = ob.out_of_reach_reason(multi_head)
    assert "GetItem.forward" in reason and "indexing with slice(0, " in reason
    with pytest.raises(SymbolicUnsupported, match="GetItem.forward"):
        ob.run_case(multi_head)


# ----------------------------------------------------------------------------- negative controls

_SQUARE = ob.Case("square scaled dot-product", "scaled_dot_product",
                  (("Q", ("n", "n")), ("K", ("n", "n")), ("V", ("n", "n"))),
                  lambda t, mask: mech.scaled_dot_product(t["Q"], t["K"], t["V"],
                                                          fused=False)[0])


@pytest.fixture
def swap(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):  # noqa: ANN201
    """``swap(name, wrong)`` puts ``wrong`` in the op table in place of ``ops.<name>``
    (the table's entry and the name the Tensor methods call), for this test only."""
    def put(name: str, wrong: type) -> None:
        right = getattr(ops, name)
        at = ops.OPS.index(right)
        ops.OPS[at] = wrong
        request.addfinalizer(lambda: ops.OPS.__setitem__(at, right))
        monkeypatch.setattr(ops, name, wrong)
    return put


def _verdicts(case: ob.Case) -> dict[str, Proof]:
    return {p.claim.split(": ", 1)[1]: p for p in ob.prove_case(case).proofs}


class _MatMulNoTranspose(ops.MatMul):
    """B-bar = A G instead of A^T G (a missing transpose; square sizes keep the shapes)."""

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.parents
        return g @ b.mT, a @ g


class _DivWrongScale(ops.Div):
    """a-bar = g b instead of g / b (sqrt(d_k) where 1/sqrt(d_k) belongs)."""

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.parents
        return g * b, -(g * a) / (b * b)


class _SoftmaxDroppedTerm(ops.Softmax):
    """a-bar = y g: the rowsum term of the softmax VJP dropped."""

    @staticmethod
    def backward(ctx, g):
        return (ctx.output * g,)


def test_a_missing_transpose_in_the_matmul_vjp_is_rejected(swap) -> None:
    swap("MatMul", _MatMulNoTranspose)
    verdicts = _verdicts(_SQUARE)
    assert verdicts["bar Q"].ok                     # uses A-bar = G B^T only: still right
    for name in ("bar K", "bar V"):                 # both go through B-bar
        assert not verdicts[name].ok and verdicts[name].residual, name
    # bar V = P G instead of P^T G: the residual holds both, the query index of P moved
    assert any("Obar" in r for r in verdicts["bar V"].residual)


def test_a_wrong_scale_in_the_div_vjp_is_rejected_with_sqrt_d_k_in_the_residual(
        swap) -> None:
    swap("Div", _DivWrongScale)
    verdicts = _verdicts(next(c for c in ob.CASES
                              if c.name == "scaled_dot_product composed"))
    assert verdicts["bar V"].ok and verdicts["forward = closed form"].ok
    for name in ("bar Q", "bar K"):
        proof = verdicts[name]
        assert not proof.ok
        # the coefficient left over is sqrt(d_k) - 1/sqrt(d_k): the scale is the wrong term
        assert all("d_k" in r.split(" * ", 1)[0] for r in proof.residual), proof.residual


def test_a_dropped_term_in_the_softmax_vjp_is_rejected(swap) -> None:
    swap("Softmax", _SoftmaxDroppedTerm)
    verdicts = _verdicts(next(c for c in ob.CASES if c.name == "dot_product"))
    assert verdicts["bar V"].ok
    for name in ("bar Q", "bar K"):
        proof = verdicts[name]
        assert not proof.ok
        # exactly the rowsum term is left over: one normal-form term, with a 1/Z^2
        assert len(proof.residual) == 1 and "-2" in proof.residual[0], proof.residual


def test_a_missing_transpose_in_the_fused_ops_backward_is_rejected(monkeypatch) -> None:
    right = kernels.sdpa_backward

    def wrong(xp, q, k, v, o, p, g, *args, **kwargs):
        dq, dk, dv = right(xp, q, k, v, o, p, g, *args, **kwargs)
        return dq, dk, xp.matmul(p, g)                            # P G, not P^T G
    monkeypatch.setattr(kernels, "sdpa_backward", wrong)
    fused = ob.Case("square fused", "scaled_dot_product", _SQUARE.inputs,
                    lambda t, mask: mech.scaled_dot_product(t["Q"], t["K"], t["V"])[0])
    verdicts = _verdicts(fused)
    assert verdicts["bar Q"].ok and verdicts["bar K"].ok
    assert not verdicts["bar V"].ok and verdicts["bar V"].residual
