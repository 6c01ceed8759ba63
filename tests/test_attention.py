"""The classic attention mechanisms (tinygrad_attn.attention): forward against plain NumPy
transcriptions of their papers' formulas, gradients against finite differences, the
identities that relate them, masks, and the errors bad input gets.

Papers: Graves et al. 2014 (NTM, eq. 5, content), Bahdanau et al. 2014 (eq. 6, A.1.2,
additive), Luong et al. 2015 (eq. 7-8: dot, general, concat, location), Vaswani et al.
2017 (eq. 1, sec. 3.2.2: scaled dot-product, multi-head).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn import attention as A
from tinygrad_attn import nn

RNG = np.random.default_rng(0)
B, M, N, D, DV, H = 2, 3, 4, 3, 2, 5   # batch, queries, keys, feature, value, hidden


def arr(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def T(a: np.ndarray, name: str | None = None) -> ta.Tensor:
    return ta.Tensor(a.copy(), requires_grad=True, name=name)


# A mask with a key masked for every query (key 3 of batch 1), a fully masked query row
# (query 1 of batch 0) and scattered holes.
MASK = np.ones((B, M, N), dtype=bool)
MASK[0, 0, 2] = MASK[0, 1, :] = MASK[1, :, 3] = MASK[1, 2, 0] = False


# ----------------------------------------------------------------------------- NumPy formulas

def np_softmax(e: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """alpha_j = exp(e_j) / sum_{allowed j'} exp(e_j'), 0 where masked or nothing allowed."""
    ok = np.ones(e.shape, bool) if mask is None else np.broadcast_to(mask, e.shape)
    top = np.where(ok, e, -np.inf).max(-1, keepdims=True)
    w = np.where(ok, np.exp(e - np.where(np.isfinite(top), top, 0.0)), 0.0)
    z = w.sum(-1, keepdims=True)
    return w / np.where(z == 0, 1.0, z)


def np_cosine(q, k):
    return np.einsum("...id,...jd->...ij", q, k) / (
        np.linalg.norm(q, axis=-1)[..., :, None] * np.linalg.norm(k, axis=-1)[..., None, :])


NUMPY_SCORES = {
    # Graves et al. 2014, eq. 5: beta * K[k, M(i)], K the cosine similarity
    "content": lambda q, k, p: p["beta"] * np_cosine(q, k),
    # Bahdanau et al. 2014, A.1.2: e_ij = v^T tanh(W_a s_{i-1} + U_a h_j)
    "additive": lambda q, k, p: np.einsum(
        "...ijh,h->...ij", np.tanh((q @ p["W_q"])[..., :, None, :]
                                   + (k @ p["W_k"])[..., None, :, :]), p["v"]),
    # Luong et al. 2015, eq. 8: score = h_t^T W_a h_s ; h_t^T h_s ; eq. 9: a_t = softmax(W_a h_t)
    "general": lambda q, k, p: np.einsum("...id,de,...je->...ij", q, p["W"], k),
    "dot_product": lambda q, k, p: np.einsum("...id,...jd->...ij", q, k),
    "location": lambda q, k, p: q @ p["W"],
    # Vaswani et al. 2017, eq. 1
    "scaled_dot_product": lambda q, k, p: np.einsum("...id,...jd->...ij", q, k) / np.sqrt(
        q.shape[-1]),
}


def params_for(name: str, seed: int = 5) -> dict[str, np.ndarray]:
    return {"content": {"beta": 1.7},
            "additive": {"W_q": arr(D, H, seed=seed), "W_k": arr(D, H, seed=seed + 1),
                         "v": arr(H, seed=seed + 2)},
            "general": {"W": arr(D, D, seed=seed)},
            "dot_product": {}, "location": {"W": arr(D, N, seed=seed)},
            "scaled_dot_product": {}}[name]


def call(name: str, q, k, v, p, mask=None, **kw):
    """Call the mechanism ``name`` with query, keys, values and its parameters."""
    if name == "location":
        return A.location(q, v, p["W"], mask=mask)
    if name == "additive":
        return A.additive(q, k, v, p["W_q"], p["W_k"], p["v"], mask=mask)
    if name == "general":
        return A.general(q, k, v, p["W"], mask=mask)
    if name == "content":
        return A.content(q, k, v, beta=p["beta"], mask=mask)
    if name == "scaled_dot_product":
        return A.scaled_dot_product(q, k, v, mask=mask, **kw)
    return A.dot_product(q, k, v, mask=mask)


MECHANISMS = list(NUMPY_SCORES)


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("name", MECHANISMS)
def test_forward_equals_numpy_transcription_of_the_papers_formula(name, masked):
    q, k, v = arr(B, M, D, seed=1), arr(B, N, D, seed=2), arr(B, N, DV, seed=3)
    p, mask = params_for(name), MASK if masked else None
    want_w = np_softmax(NUMPY_SCORES[name](q, k, p), mask)
    want_c = np.einsum("...ij,...jd->...id", want_w, v)     # c_i = sum_j alpha_ij v_j
    context, weights = call(name, ta.Tensor(q), ta.Tensor(k), ta.Tensor(v), p, mask)
    np.testing.assert_allclose(weights.data, want_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(context.data, want_c, rtol=1e-12, atol=1e-14)


def test_additive_concat_forward_equals_luong_concat_score():
    # Luong et al. 2015, eq. 8 "concat": score = v_a^T tanh(W_a [h_t; h_s])
    q, k, v = arr(B, M, D, seed=1), arr(B, N, 2, seed=2), arr(B, N, DV, seed=3)
    W, va = arr(D + 2, H, seed=4), arr(H, seed=5)
    e = np.empty((B, M, N))
    for b in range(B):
        for i in range(M):
            for j in range(N):
                e[b, i, j] = va @ np.tanh(np.concatenate([q[b, i], k[b, j]]) @ W)
    context, weights = A.additive_concat(q, k, v, W, va, mask=MASK)
    np.testing.assert_allclose(weights.data, np_softmax(e, MASK), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- gradcheck

def _grad_inputs(name: str, seed: int) -> tuple[list[ta.Tensor], list[str]]:
    q, k = T(arr(B, M, D, seed=seed), "query"), T(arr(B, N, D, seed=seed + 1), "keys")
    vals = T(arr(B, N, DV, seed=seed + 2), "values")
    p = {key: T(np.asarray(val, float), key) for key, val in params_for(name, seed + 3).items()}
    return [q, k, vals] + list(p.values()), list(p)


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("name", MECHANISMS + ["additive_concat"])
def test_gradcheck_every_input_and_parameter_batched(name, masked):
    mask = MASK if masked else None
    if name == "additive_concat":
        inputs = [T(arr(B, M, D, seed=1), "query"), T(arr(B, N, D, seed=2), "keys"),
                  T(arr(B, N, DV, seed=3), "values"), T(arr(2 * D, H, seed=4), "W"),
                  T(arr(H, seed=5), "v")]

        def fn(*xs):
            return A.additive_concat(*xs, mask=mask)
    else:
        inputs, keys = _grad_inputs(name, 7)

        def fn(q, k, v, *ps):
            return call(name, q, k, v, dict(zip(keys, ps)), mask)
    report = ta.gradcheck(fn, *inputs)       # both outputs: context and weights
    assert report.ok, str(report)
    assert len(report.inputs) == len(inputs)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_gradcheck_self_cross_and_multi_head_with_masks(fused):
    x, y = T(arr(B, M, 4, seed=1), "x"), T(arr(B, N, 4, seed=2), "x_enc")
    Wq, Wk, Wv = (T(arr(4, 4, seed=s), n) for s, n in ((3, "W_q"), (4, "W_k"), (5, "W_v")))
    Wo = T(arr(4, 3, seed=6), "W_o")
    head_mask = MASK[:, None]                                   # (B, 1, M, N)
    for fn, inputs in [
        (lambda x, a, b, c: A.self_attention(x, a, b, c, causal=True, fused=fused),
         [x, Wq, Wk, Wv]),
        (lambda x, y, a, b, c: A.cross_attention(x, y, a, b, c, MASK, fused=fused),
         [x, y, Wq, Wk, Wv]),
        (lambda x, y, a, b, c, o: A.multi_head(x, y, a, b, c, o, 2, mask=head_mask,
                                               fused=fused), [x, y, Wq, Wk, Wv, Wo]),
    ]:
        report = ta.gradcheck(fn, *inputs)
        assert report.ok, str(report)


@pytest.mark.parametrize("name,how", [(n, "") for n in MECHANISMS + ["additive_concat"]
                                      if n != "scaled_dot_product"]
                         + [("scaled_dot_product", "fused"), ("scaled_dot_product", "composed")])
def test_a_mask_over_the_values_batch_axes_is_accepted_when_q_and_k_have_none(name, how):
    """q (m, d) and k (n, d) without batch axes, values (5, n, d_v): the weights are
    (5, m, n), so a mask (5, m, n) is broadcastable to them; every mechanism accepts it,
    composed and fused alike, and agrees with the NumPy formula batch by batch."""
    q, k, v = arr(M, D, seed=1), arr(N, D, seed=2), arr(5, N, DV, seed=3)
    mask = np.random.default_rng(4).random((5, M, N)) > 0.4
    mask[0, 1] = False                                       # a fully masked row
    if name == "additive_concat":
        W, va = arr(2 * D, H, seed=4), arr(H, seed=5)
        context, weights = A.additive_concat(q, k, v, W, va, mask=mask)
        scores = np.tanh(np.concatenate([np.broadcast_to(q[:, None], (M, N, D)),
                                         np.broadcast_to(k[None], (M, N, D))], -1) @ W) @ va
    else:
        p = params_for(name)
        context, weights = call(name, q, k, v, p, mask,
                                **({"fused": how == "fused"} if name == "scaled_dot_product"
                                   else {}))
        scores = NUMPY_SCORES[name](q, k, p)
    want = np_softmax(np.broadcast_to(scores, (5, M, N)), mask)
    assert weights.shape == (5, M, N) and context.shape == (5, M, DV)
    np.testing.assert_allclose(weights.data, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(context.data, want @ v, rtol=1e-12, atol=1e-14)


def _no_keys(name: str, how: str, m: int = M) -> tuple[list[ta.Tensor], object]:
    """A mechanism called with n = 0 keys (and m queries): its inputs and the call."""
    q, k, v = T(arr(m, D, seed=1)), T(np.zeros((0, D))), T(np.zeros((0, DV)))
    if name == "additive_concat":
        ps = [T(arr(2 * D, H, seed=4)), T(arr(H, seed=5))]
        return [q, k, v, *ps], lambda: A.additive_concat(q, k, v, *ps)
    p = {key: T(np.asarray(val, float)) for key, val in params_for(name).items()}
    if name == "location":
        p["W"] = T(arr(D, 0))
    kw = {"fused": how != "composed", "impl": how} if how else {}
    kw = {"fused": False} if how == "composed" else kw
    return [q, k, v, *p.values()], lambda: call(name, q, k, v, p, **kw)


@pytest.mark.parametrize("name,how", [(n, "") for n in MECHANISMS + ["additive_concat"]
                                      if n != "scaled_dot_product"]
                         + [("scaled_dot_product", h) for h in ("plain", "blocked", "composed")])
@pytest.mark.parametrize("m", [M, 0])
def test_zero_keys_give_empty_weights_a_zero_context_and_zero_gradients(name, how, m):
    inputs, run = _no_keys(name, how, m)
    context, weights = run()
    assert context.shape == (m, DV) and not np.any(context.data)
    if weights is not None:
        assert weights.shape == (m, 0)
    grads = ta.grad(context, inputs, grad_outputs=np.ones(context.shape), allow_unused=True)
    for x, g in zip(inputs, grads):
        assert g is None or (g.shape == x.shape and not np.any(g.data))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_multi_head_with_zero_keys_gives_a_zero_output_and_zero_gradients(fused):
    x, kv = T(arr(B, M, 4, seed=1)), T(np.zeros((B, 0, 4)))
    Ws = [T(arr(4, 4, seed=s)) for s in (3, 4, 5)] + [T(arr(4, 3, seed=6))]
    out, weights = A.multi_head(x, kv, *Ws, 2, fused=fused)
    assert out.shape == (B, M, 3) and weights.shape == (B, 2, M, 0) and not np.any(out.data)
    grads = ta.grad(out, [x, kv, *Ws], grad_outputs=np.ones(out.shape))
    for t, g in zip([x, kv, *Ws], grads):
        assert g.shape == t.shape and not np.any(g.data)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_zero_width_queries_and_keys_are_refused_naming_d_k(fused):
    with pytest.raises(ValueError, match=r"scaled_dot_product: q \(2, 0\) and k \(3, 0\) have "
                                         r"width d_k = 0"):
        A.scaled_dot_product(np.ones((2, 0)), np.ones((3, 0)), np.ones((3, 2)), fused=fused)


def test_bahdanau_decoder_step_gradcheck_and_numpy_transcription():
    """Bahdanau et al. 2014, A.2.2 with a tanh RNN: c_i from s_{i-1}, s_i from [y; c]."""
    dec = nn.BahdanauDecoderCell(2, 3, 4, d_attn=3, cell="tanh", rng=3)
    enc, y, s = arr(B, N, 3, seed=1), arr(B, 2, seed=2), arr(B, 4, seed=3)
    lengths = np.array([N, 2])
    key_mask = A.padding_mask(lengths, N)[:, 0]                  # (B, N)
    s_new, c, w = dec(ta.Tensor(y), ta.Tensor(s), ta.Tensor(enc), key_mask)
    a = dec.attention
    e = np.einsum("bjh,h->bj", np.tanh((s @ a.W_q.data)[:, None, :] + enc @ a.W_k.data),
                  a.v.data)                                    # e_j = v^T tanh(W s + U h_j)
    alpha = np_softmax(e, key_mask)
    ctx = np.einsum("bj,bjd->bd", alpha, enc)
    want = np.tanh(np.concatenate([y, ctx], -1) @ dec.W_x.data + s @ dec.W_s.data + dec.b.data)
    np.testing.assert_allclose(w.data, alpha, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s_new.data, want, rtol=1e-12)
    assert np.all(w.data[1, 2:] == 0)
    for cell in ("gru", "tanh"):
        dec = nn.BahdanauDecoderCell(2, 3, 4, cell=cell, rng=1)
        ys, s0, E = T(arr(B, 2, 2, seed=4), "ys"), T(arr(B, 4, seed=5), "s0"), T(enc, "enc")
        params = dec.parameters()
        report = ta.gradcheck(lambda ys, s0, E, *ps: dec.decode(ys, s0, E, key_mask),
                              ys, s0, E, *params)
        assert report.ok, str(report)


# ----------------------------------------------------------------------------- identities

def test_general_with_identity_W_equals_dot_product():
    q, k, v = arr(B, M, D, seed=1), arr(B, N, D, seed=2), arr(B, N, DV, seed=3)
    c1, w1 = A.general(q, k, v, np.eye(D), mask=MASK)
    c2, w2 = A.dot_product(q, k, v, mask=MASK)
    np.testing.assert_array_equal(w1.data, w2.data)
    np.testing.assert_array_equal(c1.data, c2.data)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_scaled_dot_product_equals_dot_product_on_q_over_sqrt_d(fused):
    q, k, v = arr(B, M, 5, seed=1), arr(B, N, 5, seed=2), arr(B, N, DV, seed=3)
    c1, w1 = A.scaled_dot_product(q, k, v, mask=MASK, fused=fused)
    c2, w2 = A.dot_product(q / np.sqrt(5), k, v, mask=MASK)
    np.testing.assert_allclose(w1.data, w2.data, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c1.data, c2.data, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_multi_head_with_one_head_and_identity_W_o_equals_self_attention(fused):
    x, Wq, Wk, Wv = arr(B, N, 4, seed=1), arr(4, 4, seed=2), arr(4, 4, seed=3), arr(4, 3,
                                                                                   seed=4)
    out, w = A.multi_head(x, x, Wq, Wk, Wv, np.eye(3), 1, causal=True, fused=fused)
    c, w_self = A.self_attention(x, Wq, Wk, Wv, causal=True, fused=fused)
    np.testing.assert_allclose(out.data, c.data, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(w.data[:, 0], w_self.data, rtol=1e-13, atol=1e-15)


def test_multi_head_equals_numpy_transcription_of_vaswani_3_2_2():
    x_q, x_kv = arr(B, M, 6, seed=1), arr(B, N, 6, seed=2)
    Wq, Wk, Wv, Wo = arr(6, 6, seed=3), arr(6, 6, seed=4), arr(6, 9, seed=5), arr(9, 2, seed=6)
    heads, ws = [], []
    for i in range(3):   # head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V): PyTorch columns
        q = x_q @ Wq[:, 2 * i:2 * i + 2]
        k, v = x_kv @ Wk[:, 2 * i:2 * i + 2], x_kv @ Wv[:, 3 * i:3 * i + 3]
        w = np_softmax(q @ k.transpose(0, 2, 1) / np.sqrt(2), MASK)
        heads.append(w @ v)
        ws.append(w)
    want = np.concatenate(heads, -1) @ Wo
    for fused in (True, False):
        out, w = A.multi_head(x_q, x_kv, Wq, Wk, Wv, Wo, 3, mask=MASK[:, None], fused=fused)
        assert w.shape == (B, 3, M, N)
        np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(w.data, np.stack(ws, 1), rtol=1e-12, atol=1e-14)


def test_cross_attention_of_a_sequence_with_itself_equals_self_attention():
    x, Wq, Wk, Wv = arr(B, N, 4, seed=1), arr(4, 3, seed=2), arr(4, 3, seed=3), arr(4, 2,
                                                                                   seed=4)
    c1, w1 = A.cross_attention(x, x.copy(), Wq, Wk, Wv, mask=A.causal_mask(N))
    c2, w2 = A.self_attention(x, Wq, Wk, Wv, causal=True)
    np.testing.assert_array_equal(c1.data, c2.data)
    np.testing.assert_array_equal(w1.data, w2.data)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_causal_flag_equals_explicit_lower_triangular_mask(fused):
    q, k, v = arr(B, 4, D, seed=1), arr(B, 6, D, seed=2), arr(B, 6, DV, seed=3)
    tril = np.tril(np.ones((4, 6), dtype=bool))                 # j <= i, top-left aligned
    c1, w1 = A.scaled_dot_product(q, k, v, causal=True, fused=fused)
    c2, w2 = A.scaled_dot_product(q, k, v, mask=tril, fused=fused)
    np.testing.assert_array_equal(A.causal_mask(4, 6), tril)
    np.testing.assert_array_equal(w1.data, w2.data)
    np.testing.assert_array_equal(c1.data, c2.data)
    assert np.all(w1.data[..., ~tril] == 0) and np.all(w1.data[..., tril] > 0)


def test_additive_and_its_concatenation_form_agree_with_W_stacked():
    # v^T tanh(W [q; k]) = v^T tanh(W_q q + W_k k) when W = [W_q; W_k] (rows stacked)
    q, k, v = arr(B, M, D, seed=1), arr(B, N, 2, seed=2), arr(B, N, DV, seed=3)
    Wq, Wk, va = arr(D, H, seed=4), arr(2, H, seed=5), arr(H, seed=6)
    c1, w1 = A.additive(q, k, v, Wq, Wk, va, mask=MASK)
    c2, w2 = A.additive_concat(q, k, v, np.concatenate([Wq, Wk]), va, mask=MASK)
    np.testing.assert_allclose(w1.data, w2.data, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c1.data, c2.data, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", MECHANISMS)
def test_weights_are_a_distribution_and_context_is_the_expectation_of_values(name):
    q, k, v = arr(B, M, D, seed=1), arr(B, N, D, seed=2), arr(B, N, DV, seed=3)
    context, weights = call(name, q, k, v, params_for(name), MASK)
    w = weights.data
    assert np.all(w >= 0)
    sums = w.sum(-1)
    has_any = MASK.any(-1)
    np.testing.assert_allclose(sums[has_any], 1.0, rtol=1e-14)
    assert np.all(sums[~has_any] == 0)
    # c_i = E_{j ~ alpha_i}[v_j], computed one expectation at a time
    for b, i in np.ndindex(B, M):
        expect = sum(w[b, i, j] * v[b, j] for j in range(N))
        np.testing.assert_allclose(context.data[b, i], expect, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- masks

@pytest.mark.parametrize("name", MECHANISMS + ["multi_head"])
def test_masked_positions_get_exactly_zero_weight_and_zero_gradient(name):
    q, k, v = T(arr(B, M, D, seed=1)), T(arr(B, N, D, seed=2)), T(arr(B, N, DV, seed=3))
    if name == "multi_head":
        Ws = [T(arr(D, 4, seed=s)) for s in (4, 5, 6)] + [T(arr(4, 2, seed=7))]
        out, w = A.multi_head(q, k, *Ws, num_heads=2, mask=MASK[:, None])
        masked = np.broadcast_to(~MASK[:, None], w.shape)
    else:
        out, w = call(name, q, k, v, params_for(name), MASK)
        masked = ~MASK
    assert np.all(w.data[masked] == 0.0)
    (out * arr(*out.shape, seed=9)).sum().backward()
    keys_or_values = [k, v] if name != "multi_head" else [k]
    for t in keys_or_values:
        if t.grad is not None:      # key 3 of batch 1 is masked for every query
            assert np.all(t.grad[1, 3] == 0.0)
            assert np.any(t.grad[0, 3] != 0.0)   # ... and not in batch 0 (control)
    assert np.all(q.grad[0, 1] == 0.0)           # the fully masked query row


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_fully_masked_row_gives_zero_weights_context_and_gradients_not_nan(fused):
    q, k, v = T(arr(2, D, seed=1)), T(arr(N, D, seed=2)), T(arr(N, DV, seed=3))
    mask = np.array([[True, False, True, False], [False] * N])
    c, w = A.scaled_dot_product(q, k, v, mask=mask, fused=fused)
    assert np.all(w.data[1] == 0) and np.all(c.data[1] == 0)
    loss = (c * c).sum() + (w * arr(2, N, seed=4)).sum()
    gq, gk, gv = ta.grad(loss, [q, k, v])
    for g in (gq, gk, gv):
        assert np.all(np.isfinite(g.data))
    assert np.all(gq.data[1] == 0) and np.all(gk.data[[1, 3]] == 0)
    assert np.all(gv.data[[1, 3]] == 0)


@pytest.mark.parametrize("name", MECHANISMS + ["scaled_dot_product_composed"])
def test_logits_of_magnitude_1e4_give_finite_weights_and_gradients(name):
    big = 1e4 / np.sqrt(D)
    q, k, v = T(arr(M, D, seed=1) * big), T(arr(N, D, seed=2) * big), T(arr(N, DV, seed=3))
    kw = {"fused": False} if name.endswith("composed") else {}
    mech = name.replace("_composed", "")
    p = {key: np.asarray(val) * (1e4 if key == "beta" else 1.0)
         for key, val in params_for(mech).items()}
    c, w = call(mech, q, k, v, p, **kw)
    assert np.all(np.isfinite(w.data)) and np.all(np.isfinite(c.data))
    (c.sum() + (w * arr(M, N, seed=4)).sum()).backward()
    for t in (q, k, v):
        assert t.grad is None or np.all(np.isfinite(t.grad))


def test_padding_mask_from_lengths_and_single_query_shapes():
    mask = A.padding_mask([3, 1], 4)
    np.testing.assert_array_equal(mask[:, 0], [[1, 1, 1, 0], [1, 0, 0, 0]])
    assert mask.shape == (2, 1, 4)
    k, v = arr(2, 4, D, seed=1), arr(2, 4, DV, seed=2)
    c, w = A.dot_product(arr(2, 5, D, seed=3), k, v, mask=mask)      # broadcast over queries
    assert np.all(w.data[1, :, 1:] == 0)
    c1, w1 = A.dot_product(arr(D, seed=4), k[0], v[0])                # single query
    assert w1.shape == (4,) and c1.shape == (DV,)
    c2, w2 = A.additive(arr(D, seed=4), k, v, arr(D, H), arr(D, H, seed=1), arr(H),
                        mask=mask[:, 0])                               # batch of one query
    assert w2.shape == (2, 4) and c2.shape == (2, DV) and np.all(w2.data[1, 1:] == 0)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_float32_stays_float32_in_every_mechanism(fused):
    def f32(*s, seed=0):
        return ta.Tensor(arr(*s, seed=seed).astype(np.float32), requires_grad=True)
    q, k, v = f32(B, M, D, seed=1), f32(B, N, D, seed=2), f32(B, N, DV, seed=3)
    results = []
    for n in MECHANISMS:
        p = {key: val if np.ndim(val) == 0 else np.asarray(val, np.float32)
             for key, val in params_for(n).items()}
        kw = {"fused": fused} if n == "scaled_dot_product" else {}
        results.append(call(n, q, k, v, p, MASK, **kw))
    W = [f32(D, 4, seed=s) for s in (4, 5, 6)] + [f32(4, 2, seed=7)]
    results.append(A.multi_head(q, k, *W, num_heads=2, mask=MASK[:, None], fused=fused))
    for c, w in results:
        assert c.dtype == np.float32 and w.dtype == np.float32
        gs = ta.grad(c.sum() + w.sum(), [q], allow_unused=True)
        assert all(g is None or g.dtype == np.float32 for g in gs)


# ----------------------------------------------------------------------------- bad input

def test_query_dimension_not_matching_the_keys_names_the_arguments_and_shapes():
    for fn in (A.dot_product, A.content):
        with pytest.raises(ValueError, match=r"query and keys.*\(2, 3, 5\).*\(2, 4, 3\)"):
            fn(arr(2, 3, 5), arr(2, 4, 3), arr(2, 4, 2))
    with pytest.raises(ValueError, match=r"q and k.*\(3, 5\).*\(4, 3\)"):
        A.scaled_dot_product(arr(3, 5), arr(4, 3), arr(4, 2))
    with pytest.raises(ValueError, match=r"query and W_q.*\(3, 5\).*\(3, 4\)"):
        A.additive(arr(3, 5), arr(4, 3), arr(4, 2), arr(3, 4), arr(3, 4), arr(4))
    with pytest.raises(ValueError, match=r"keys and values.*\(4, 3\).*\(5, 2\)"):
        A.dot_product(arr(3, 3), arr(4, 3), arr(5, 2))
    with pytest.raises(ValueError, match=r"W and keys"):
        A.general(arr(3, 3), arr(4, 3), arr(4, 2), arr(3, 2))
    with pytest.raises(ValueError, match=r"W and values"):
        A.location(arr(3, 3), arr(4, 2), arr(3, 5))


def test_mask_of_the_wrong_shape_names_the_mask_and_the_weights_shape():
    for fused in (True, False):
        with pytest.raises(ValueError, match=r"mask of shape \(3, 5\).*weights' shape "
                                             r"\(2, 3, 4\)"):
            A.scaled_dot_product(arr(2, 3, 3), arr(2, 4, 3), arr(2, 4, 2),
                                 mask=np.ones((3, 5), bool), fused=fused)
    with pytest.raises(ValueError, match=r"multi_head: mask of shape \(3, 3\).*\(2, 2, 3, 4\)"):
        A.multi_head(arr(2, 3, 4), arr(2, 4, 4), arr(4, 4), arr(4, 4), arr(4, 4), arr(4, 4),
                     2, mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        A.dot_product(arr(3, 3), arr(4, 3), arr(4, 2), mask=np.ones((3, 4)))


def test_head_count_that_does_not_divide_the_model_dimension_names_both():
    with pytest.raises(ValueError, match=r"num_heads=3 does not divide the model dimension "
                                         r"4 of W_q \(4, 4\)"):
        A.multi_head(arr(3, 4), arr(3, 4), arr(4, 4), arr(4, 4), arr(4, 4), arr(4, 4), 3)
    with pytest.raises(ValueError, match="num_heads=3 does not divide d_model=4"):
        nn.MultiHeadAttention(4, 3)


# ----------------------------------------------------------------------------- scopes, symbolic

def _scopes(out: ta.Tensor) -> set[str]:
    from tinygrad_attn.engine import toposort

    return {s for t in toposort([out]) if t._ctx is not None for s in t._ctx.scope}


def test_ops_are_recorded_in_textbook_scopes():
    x = T(arr(N, 4, seed=1))
    W = [T(arr(4, 4, seed=s)) for s in (2, 3, 4, 5)]
    out, _ = A.multi_head(x, x, *W, num_heads=2, fused=False)
    assert {"projection", "head 0", "head 1", "score", "softmax", "context",
            "output projection"} <= _scopes(out)
    c, _ = A.additive(x, x, x, W[0], W[1], T(arr(4, seed=6)))
    assert {"score", "softmax", "context"} <= _scopes(c)


@pytest.mark.parametrize("name", ["dot_product", "additive", "scaled_dot_product"])
def test_symbolic_masked_score_contributes_exactly_zero(name):
    import sympy as sp

    def sym(prefix: str, *shape: int) -> ta.Tensor:
        syms = sp.symbols(f"{prefix}0:{int(np.prod(shape))}", real=True)
        return ta.Tensor(np.array(syms, dtype=object).reshape(shape), requires_grad=True)

    q, k, v = sym("q", 2, 2), sym("k", 3, 2), sym("v", 3, 1)
    mask = np.array([[True, False, True], [False, False, False]])
    p = {"W_q": sym("a", 2, 2), "W_k": sym("b", 2, 2), "v": sym("c", 2)}
    context, weights = call(name, q, k, v, p, mask)
    assert weights.data[0, 1] == 0 and all(e == 0 for e in weights.data[1])
    assert context.data[1, 0] == 0
    e0, e2 = weights.data[0, 0], weights.data[0, 2]
    assert not e0.has(k[1].data[0]) and not e2.has(k[1].data[0])
    assert sp.simplify(e0 + e2 - 1) == 0                  # the two allowed keys share it all
    grads = ta.grad(context.sum(), [k, v])
    assert all(e == 0 for e in grads[0].data[1]) and grads[1].data[1, 0] == 0


def test_content_attention_of_a_zero_key_scores_zero_not_nan():
    # cosine(q, 0) is 0/0; like torch.cosine_similarity the norm is clamped at eps
    q, k, v = T(arr(M, D, seed=1)), T(arr(N, D, seed=2)), T(arr(N, DV, seed=3))
    k.data[2] = 0.0
    c, w = A.content(q, k, v, beta=3.0)
    scores = A.cosine_similarity(q, k).data
    assert np.all(scores[:, 2] == 0) and np.all(np.abs(scores) <= 1 + 1e-15)
    c.sum().backward()
    assert all(np.all(np.isfinite(t.grad)) for t in (q, k, v))
