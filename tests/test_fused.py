"""The fused scaled dot-product attention op (fused.ScaledDotProductAttention, kernels.py):
its hand-derived backward against the composed engine ops, finite differences, a NumPy
transcription of the formulas, second derivatives and SymPy's exact derivative.

Backward formulas (Dao et al. 2022, FlashAttention, Appendix B.2), with g the upstream
gradient of O: dV = P^T g; D = rowsum(g * O); dS = P * (g V^T - D); dQ = dS K / sqrt(d_k);
dK = dS^T Q / sqrt(d_k).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn import attention as A
from tinygrad_attn.attention import fused as fused_op
from tinygrad_attn.attention import kernels



def arr(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def T(a: np.ndarray, name: str | None = None) -> ta.Tensor:
    return ta.Tensor(np.array(a), requires_grad=True, name=name)


CASES = {   # name: (q shape, k shape, v shape, mask, causal)
    "plain": ((5, 4), (7, 4), (7, 3), None, False),
    "batched_broadcast": ((2, 3, 5, 4), (3, 6, 4), (1, 6, 2), None, False),
    "masked_with_empty_row": ((2, 4, 3), (2, 5, 3), (2, 5, 3),
                              np.random.default_rng(1).random((2, 4, 5)) > 0.4, False),
    "causal": ((6, 4), (6, 4), (6, 3), None, True),
    "causal_and_padding": ((2, 5, 3), (2, 7, 3), (2, 7, 2),
                           A.padding_mask([7, 3], 7), True),
}
CASES["masked_with_empty_row"][3][0, 2] = False


def _inputs(name: str, seed: int = 0) -> tuple[list[ta.Tensor], np.ndarray | None, bool]:
    sq, sk, sv, mask, causal = CASES[name]
    return [T(arr(*sq, seed=seed), "q"), T(arr(*sk, seed=seed + 1), "k"),
            T(arr(*sv, seed=seed + 2), "v")], mask, causal


@pytest.mark.parametrize("name", list(CASES))
def test_fused_equals_composed_to_1e12_in_float64_forward_and_backward(name):
    (q, k, v), mask, causal = _inputs(name)
    results = []
    for fused in (True, False):
        c, w = A.scaled_dot_product(q, k, v, mask=mask, causal=causal, fused=fused)
        g_c, g_w = arr(*c.shape, seed=7), arr(*w.shape, seed=8)
        grads = ta.grad([c, w], [q, k, v], grad_outputs=[g_c, g_w])
        results.append([c.data, w.data] + [grad.data for grad in grads])
    for got, want in zip(*results):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_fused_op_passes_gradcheck_for_q_k_v(name):
    (q, k, v), mask, causal = _inputs(name, seed=3)
    report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, v, mask=mask,
                                                                causal=causal), q, k, v)
    assert report.ok, str(report)


def test_backward_kernel_equals_numpy_transcription_of_the_formulas():
    q, k, v, g = arr(2, 5, 4, seed=1), arr(2, 6, 4, seed=2), arr(2, 6, 3, seed=3), \
        arr(2, 5, 3, seed=4)
    mask = np.random.default_rng(5).random((2, 5, 6)) > 0.3
    # forward: S = Q K^T / sqrt(d_k), masked -inf, P = softmax(S), O = P V
    S = np.where(mask, q @ k.transpose(0, 2, 1) / 2.0, -np.inf)
    P = np.exp(S - S.max(-1, keepdims=True))
    P /= P.sum(-1, keepdims=True)
    O = P @ v
    dV = P.transpose(0, 2, 1) @ g
    Drow = (g * O).sum(-1, keepdims=True)
    dS = P * (g @ v.transpose(0, 2, 1) - Drow)
    dQ, dK = dS @ k / 2.0, dS.transpose(0, 2, 1) @ q / 2.0
    from tinygrad_attn.engine.backend import numeric

    o, p = kernels.sdpa_forward(numeric, q, k, v, mask)
    np.testing.assert_allclose(o, O, rtol=1e-13, atol=1e-15)
    got = kernels.sdpa_backward(numeric, q, k, v, o, p, g, mask)
    for grad, want in zip(got, (dQ, dK, dV)):
        np.testing.assert_allclose(grad, want, rtol=1e-12, atol=1e-14)


def test_a_wrong_backward_is_caught_by_gradcheck(monkeypatch):
    """Negative control: drop the D term of dS and gradcheck must fail on q and k."""
    right = kernels.sdpa_backward

    def wrong(xp, q, k, v, o, p, g, mask=None, causal=False, scale=None, needs=None):
        dq, dk, dv = right(xp, q, k, v, o, p, g, mask, causal, scale)
        dp = g @ np.swapaxes(v, -1, -2)
        ds = p * dp                                            # D forgotten
        s = 1 / np.sqrt(q.shape[-1])
        return ds @ k * s, np.swapaxes(ds, -1, -2) @ q * s, dv

    monkeypatch.setattr(fused_op.kernels, "sdpa_backward", wrong)
    (q, k, v), mask, causal = _inputs("plain")
    report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, v)[0], q, k, v)
    assert not report.ok
    assert [r.ok for r in report.inputs] == [False, False, True]


@pytest.mark.parametrize("name", ["masked_with_empty_row", "causal"])
def test_second_derivative_through_fused_equals_composed(name):
    """create_graph=True: the fused VJP runs as Tensor ops and is differentiated again."""
    (q, k, v), mask, causal = _inputs(name, seed=11)
    out = []
    for fused in (True, False):
        c, _ = A.scaled_dot_product(q, k, v, mask=mask, causal=causal, fused=fused)
        gq, gk, gv = ta.grad(c, [q, k, v], grad_outputs=arr(*c.shape, seed=12),
                             create_graph=True)
        hvp = ta.grad((gq * gq).sum() + (gk * gv.sum()).sum(), [q, k, v])
        out.append([grad.data for grad in (gq, gk, gv) + hvp])
    for got, want in zip(*out):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_second_derivative_of_fused_passes_gradcheck():
    (q, k, v), mask, causal = _inputs("causal", seed=13)
    g = arr(6, 3, seed=14)

    def vjp(q, k, v):
        c, _ = A.scaled_dot_product(q, k, v, mask=mask, causal=causal)
        return ta.grad(c, [q, k, v], grad_outputs=g, create_graph=True)

    report = ta.gradcheck(vjp, q, k, v, atol=1e-7, rtol=1e-5)
    assert report.ok, str(report)


def test_fused_backward_equals_sympy_exact_derivative():
    """The hand-derived kernel, run on SymPy symbols, equals sympy.diff of the forward."""
    import sympy as sp

    def sym(prefix, *shape):
        return np.array(sp.symbols(f"{prefix}0:{int(np.prod(shape))}", real=True),
                        dtype=object).reshape(shape)

    q, k, v = sym("q", 2, 2), sym("k", 3, 2), sym("v", 3, 1)
    mask = np.array([[True, False, True], [True, False, True]])   # key 1 masked
    Q, K, V = (ta.Tensor(a, requires_grad=True) for a in (q, k, v))
    c, _ = A.scaled_dot_product(Q, K, V, mask=mask, causal=False)
    assert c._ctx.name == "sdpa"
    loss = c.data[0, 0] + 2 * c.data[1, 0]
    engine = ta.grad(c, [Q, K, V], grad_outputs=np.array([[sp.Integer(1)], [sp.Integer(2)]],
                                                         dtype=object))
    point = {s: sp.Rational(int(x * 100), 97) for s, x in zip(
        list(q.ravel()) + list(k.ravel()) + list(v.ravel()),
        np.random.default_rng(0).standard_normal(13))}
    for grad, x in zip(engine, (q, k, v)):
        for got, var in zip(grad.data.ravel(), x.ravel()):
            diff = (got - sp.diff(loss, var)).subs(point)
            assert abs(sp.N(diff, 50)) < sp.Float("1e-45")
    assert all(e == 0 for e in engine[1].data[1]) and engine[2].data[1, 0] == 0
    assert all(e != 0 for e in engine[1].data[0])   # control: an attended key's is not


def test_fused_fully_masked_row_large_logits_and_float32():
    q = T(arr(3, 4, seed=1) * 1e4 / 2, "q")
    k, v = T(arr(5, 4, seed=2), "k"), T(arr(5, 2, seed=3), "v")
    mask = np.ones((3, 5), bool)
    mask[1] = False
    c, w = A.scaled_dot_product(q, k, v, mask=mask)
    gq, gk, gv = ta.grad(c.sum() + (w * arr(3, 5, seed=4)).sum(), [q, k, v])
    for t in (c, w, gq, gk, gv):
        assert np.all(np.isfinite(t.data))
    assert np.all(w.data[1] == 0) and np.all(c.data[1] == 0) and np.all(gq.data[1] == 0)
    q32, k32, v32 = (ta.Tensor(t.data.astype(np.float32), requires_grad=True)
                     for t in (q, k, v))
    c, w = A.scaled_dot_product(q32, k32, v32, mask=mask, causal=True)
    grads = ta.grad(c.sum() + w.sum(), [q32, k32, v32])
    assert c.dtype == w.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in grads)


def test_fused_weights_are_differentiable_and_equal_the_weights_op():
    (q, k, v), mask, causal = _inputs("causal_and_padding", seed=21)
    report = ta.gradcheck(lambda q, k: A.scaled_dot_product(q, k, v, mask=mask,
                                                             causal=causal)[1], q, k)
    assert report.ok, str(report)
    _, w = A.scaled_dot_product(q, k, v, mask=mask, causal=causal)
    alone = fused_op.SDPAWeights.apply(q, k, mask=mask, causal=causal)
    np.testing.assert_array_equal(w.data, alone.data)
    assert "weights_out" not in w._ctx.attrs and "precomputed" not in w._ctx.attrs


def test_kernels_sum_broadcast_batch_axes_back_to_input_shapes():
    from tinygrad_attn.engine.backend import numeric

    q, k, v = arr(2, 3, 5, 4, seed=1), arr(5, 4, seed=2), arr(1, 5, 2, seed=3)
    o, p = kernels.sdpa_forward(numeric, q, k, v, causal=True)
    dq, dk, dv = kernels.sdpa_backward(numeric, q, k, v, o, p, np.ones_like(o), causal=True)
    assert (dq.shape, dk.shape, dv.shape) == (q.shape, k.shape, v.shape)


@pytest.mark.parametrize("requires_grad", [True, False])
def test_fused_weights_come_from_the_forward_not_a_second_softmax(monkeypatch, requires_grad):
    """The plain forward's P reaches the weights node through its ctx
    (Function.apply_with_ctx), recorded or not: the softmax runs once per call, and the
    weights equal the weights op computed alone."""
    from tinygrad_attn.engine import numeric

    calls = []
    real = kernels.sdpa_weights

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels, "sdpa_weights", counting)
    q, k, v = (ta.Tensor(arr(4, 3, seed=s), requires_grad=requires_grad) for s in (30, 31, 32))
    _, w = A.scaled_dot_product(q, k, v, causal=True, impl="plain")
    assert len(calls) == 1
    assert w.requires_grad is requires_grad
    np.testing.assert_array_equal(w.data, real(numeric, q.data, k.data, None, True))
