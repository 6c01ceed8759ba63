"""The transformer's key/value cache: greedy decoding with it equals decoding that
re-reads the whole prefix at every step (same tokens, logits and cross-attention weights
to 1e-12 in float64, sources padded to different lengths), and
``attention.multi_head_projected`` equals ``multi_head`` on projected keys and values."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn.study.data import PAD
from tinygrad_attn.study.models import KeyValueCache, Transformer


def _model(seed: int, layers: int = 2) -> Transformer:
    return Transformer(12, 13, d=16, heads=4, layers=layers, ff=32, max_len=20, rng=seed,
                       dtype=np.float64)


def _sources(seed: int) -> np.ndarray:
    src = np.random.default_rng(seed).integers(3, 12, (4, 9))
    src[1, 6:] = PAD                                       # lengths 9, 6, 3, 9
    src[2, 3:] = PAD
    return src


def _decode(model: Transformer, src: np.ndarray, kv_cache: bool, steps: int = 11):
    """ids, weights and the logits of every position, recorded at the output layer."""
    seen = []
    out = model.out

    def recording(x):
        logits = out(x)
        seen.append(logits.data)
        return logits
    model.out = recording
    try:
        ids, weights = model.greedy(src, steps, kv_cache=kv_cache)
    finally:
        model.out = out
    # cached: one (B, 1, V) a step; re-reading: the last call holds every position
    logits = np.concatenate(seen, axis=1) if kv_cache else seen[-1]
    return ids, weights, logits


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_decoding_with_the_cache_equals_rereading_the_prefix(seed):
    model, src = _model(seed, layers=1 + seed % 2), _sources(seed)
    ids, weights, logits = _decode(model, src, kv_cache=True)
    ref_ids, ref_weights, ref_logits = _decode(model, src, kv_cache=False)
    np.testing.assert_array_equal(ids, ref_ids)
    assert weights.shape == ref_weights.shape == (4, model.config["layers"], 4, 11, 9)
    assert logits.shape == ref_logits.shape == (4, 11, 13)
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights, ref_weights, rtol=0, atol=1e-12)
    assert np.all(weights[2, ..., 3:] == 0)                # padding gets no weight


def test_a_cache_that_loses_the_prefix_is_caught(monkeypatch):
    """Negative control: keys and values of the newest position only."""
    model, src = _model(0), _sources(0)
    real = KeyValueCache.append

    def newest_only(self, layer, t, k, v):
        K, V = real(self, layer, t, k, v)
        return K[:, -1:], V[:, -1:]
    monkeypatch.setattr(KeyValueCache, "append", newest_only)
    _, _, logits = _decode(model, src, kv_cache=True)
    monkeypatch.undo()
    _, _, ref_logits = _decode(model, src, kv_cache=False)
    assert np.abs(logits - ref_logits).max() > 1e-6


def test_the_cache_refuses_more_steps_than_positions():
    with pytest.raises(ValueError, match="target length 21 exceeds max_len=20"):
        _model(0).greedy(_sources(0), 21)


def test_multi_head_projected_equals_multi_head_on_projected_keys_and_values():
    rng = np.random.default_rng(0)
    x_q, x_kv = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 5, 8))
    W_q, W_k, W_v, W_o = (rng.standard_normal((8, 8)) for _ in range(4))
    mask = ta.attention.padding_mask([5, 2], 5)[:, None]            # (2, 1, 1, 5)
    ref, ref_w = ta.attention.multi_head(x_q, x_kv, W_q, W_k, W_v, W_o, 2, mask=mask)
    out, w = ta.attention.multi_head_projected(x_q, x_kv @ W_k, x_kv @ W_v, W_q, W_o, 2,
                                               mask=mask)
    np.testing.assert_allclose(out.data, ref.data, atol=1e-12)
    np.testing.assert_allclose(w.data, ref_w.data, atol=1e-12)


def test_multi_head_projected_gradients_pass_the_check():
    rng = np.random.default_rng(1)
    args = [ta.Tensor(rng.standard_normal(s), requires_grad=True, name=n) for n, s in
            (("x_q", (2, 4)), ("K", (3, 4)), ("V", (3, 4)), ("W_q", (4, 4)), ("W_o", (4, 4)))]
    assert ta.gradcheck(lambda *a: ta.attention.multi_head_projected(*a, 2), *args).ok


@pytest.mark.parametrize("shapes, heads, message", [
    (((2, 4), (3, 4), (2, 4), (4, 4), (4, 4)), 2, "keys and values must have the same"),
    (((2, 4), (3, 6), (3, 4), (4, 4), (4, 4)), 2, "W_q and K do not match"),
    (((2, 4), (3, 4), (3, 4), (4, 4), (4, 4)), 3, "num_heads must be a positive int"),
    (((4,), (3, 4), (3, 4), (4, 4), (4, 4)), 2, "x_q must have shape"),
])
def test_multi_head_projected_names_a_wrong_argument(shapes, heads, message):
    args = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError, match=message):
        ta.attention.multi_head_projected(*args, heads)
