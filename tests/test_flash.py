"""Blocked (flash) attention, attention/flash.py: the tiled online-softmax forward and
the backward recomputed from the row logsumexp, against the plain fused kernels
(kernels.py), finite differences, SymPy, and its own promises (tiles skipped, no NaN).

Online softmax: Milakov & Gimelshein 2018; FlashAttention: Dao et al. 2022, Alg. 1 and
Appendix B.4 (backward from L = logsumexp, D = rowsum(g * O)); FlashAttention-2: Dao
2023 (causal tiles above the diagonal skipped).  Block sizes here are tiny (2 or 3) so
that every test exercises several query and key blocks, partial last blocks included.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import tinygrad_attn as ta
from tinygrad_attn import attention as A
from tinygrad_attn.attention import flash, fused, tiling, workers
from tinygrad_attn.attention import kernels
from tinygrad_attn.engine.backend import numeric, symbolic


def arr(*shape: int, seed: int = 0, dtype: type = np.float64) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def rand_mask(*shape: int, seed: int, p: float = 0.6) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < p


CASES = {   # name: (q shape, k shape, v shape, mask, causal)
    "plain_7x7": ((7, 4), (7, 4), (7, 3), None, False),
    "rect_5x9": ((5, 4), (9, 4), (9, 2), None, False),
    "batch_broadcast": ((2, 3, 7, 4), (1, 3, 9, 4), (2, 1, 9, 5), None, False),
    "mask_empty_row": ((2, 7, 3), (2, 8, 3), (2, 8, 3), rand_mask(2, 7, 8, seed=1), False),
    "key_padding_mask": ((2, 6, 3), (2, 7, 3), (2, 7, 2), A.padding_mask([7, 2], 7), False),
    "causal_7x7": ((7, 4), (7, 4), (7, 3), None, True),
    "causal_rect_9x5": ((9, 3), (5, 3), (5, 2), None, True),
    "causal_and_mask": ((2, 7, 3), (2, 7, 3), (2, 7, 3), rand_mask(7, 7, seed=2), True),
}
CASES["mask_empty_row"][3][0, 3] = False          # query 3 of batch 0 attends nothing
BLOCKS = [(2, 3, 1), (3, 2, 2), (1, 1, 1), (5, 4, 3), (64, 64, 64)]  # q, k, diagonal


def _case(name: str, seed: int = 0, dtype: type = np.float64):
    sq, sk, sv, mask, causal = CASES[name]
    q, k, v = arr(*sq, seed=seed, dtype=dtype), arr(*sk, seed=seed + 1, dtype=dtype), \
        arr(*sv, seed=seed + 2, dtype=dtype)
    return q, k, v, mask, causal


def _plain(q, k, v, mask, causal, g):
    o, p = kernels.sdpa_forward(numeric, q, k, v, mask, causal)
    return o, p, kernels.sdpa_backward(numeric, q, k, v, o, p, g, mask, causal)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"bq{b}_bk{c}_bd{e}" for b, c, e in BLOCKS])
@pytest.mark.parametrize("name", list(CASES))
def test_blocked_forward_and_backward_equal_plain_fused_kernels_to_1e12(name, block):
    """O, dQ, dK, dV of the tiled kernels equal the plain fused op's (f64, 1e-12)."""
    q, k, v, mask, causal = _case(name)
    o, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=block[0],
                                 block_k=block[1], block_diag=block[2], threads=1)
    g = arr(*o.shape, seed=9)
    o_ref, _, grads_ref = _plain(q, k, v, mask, causal, g)
    np.testing.assert_allclose(o, o_ref, rtol=1e-12, atol=1e-12)
    grads = flash.flash_backward(numeric, q, k, v, o, lse, g, mask, causal,
                                 block_q=block[1], block_k=block[0], block_diag=block[2],
                                 threads=1)
    for got, want, x in zip(grads, grads_ref, (q, k, v)):
        assert got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["rect_5x9", "mask_empty_row", "causal_and_mask"])
def test_lse_is_logsumexp_of_the_attended_scores(name):
    """L_i = log sum_j exp(S_ij) over the keys row i attends (0 for a row with none)."""
    q, k, v, mask, causal = _case(name, seed=4)
    _, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=3)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    allowed = kernels.allowed(mask, causal, q.shape[-2], k.shape[-2])
    allowed = np.ones(scores.shape, bool) if allowed is None else \
        np.broadcast_to(allowed, scores.shape)
    total = np.sum(np.where(allowed, np.exp(scores), 0.0), axis=-1)
    want = np.log(np.where(total == 0, 1.0, total))
    np.testing.assert_allclose(lse, want, rtol=1e-12, atol=1e-12)


def test_two_threads_give_the_result_of_one():
    q, k, v, mask, causal = _case("causal_and_mask", seed=5)
    one = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=2, threads=1)
    two = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=2, threads=2)
    np.testing.assert_array_equal(one[0], two[0])      # each row block: the same arithmetic
    g = arr(*one[0].shape, seed=6)
    grads1 = flash.flash_backward(numeric, q, k, v, *one, g, mask, causal, block_q=2,
                              block_k=2, threads=1)
    grads2 = flash.flash_backward(numeric, q, k, v, *one, g, mask, causal, block_q=2,
                              block_k=2, threads=2)
    for a, b in zip(grads1, grads2):   # dQ partial sums are added in another order: rounding only
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_a_wrong_lse_is_caught_by_the_1e12_comparison():
    """Negative control: the comparison above can fail (lse off by 1e-9 relative)."""
    q, k, v, mask, causal = _case("rect_5x9", seed=7)
    o, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=3)
    g = arr(*o.shape, seed=8)
    _, _, want = _plain(q, k, v, mask, causal, g)
    bad = flash.flash_backward(numeric, q, k, v, o, lse + 1e-9, g, mask, causal,
                               block_q=2, block_k=3)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(bad[0], want[0], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- the op

@pytest.mark.parametrize("name", ["batch_broadcast", "mask_empty_row", "causal_and_mask"])
def test_blocked_op_passes_gradcheck(name, monkeypatch):
    monkeypatch.setattr(tiling, "BLOCK_Q", 2)
    monkeypatch.setattr(tiling, "BLOCK_K", 3)
    q, k, v, mask, causal = _case(name, seed=10)
    Q, K, V = (ta.Tensor(a, requires_grad=True, name=n) for a, n in zip((q, k, v), "qkv"))

    def fn(q, k, v):
        return A.scaled_dot_product(q, k, v, mask=mask, causal=causal, impl="blocked",
                                    need_weights=False)[0]

    assert fn(Q, K, V)._ctx.weights is None              # no (m, n) weights were kept
    report = ta.gradcheck(fn, Q, K, V)
    assert report.ok, str(report)


def test_blocked_op_equals_plain_op_through_the_public_api_with_weights(monkeypatch):
    monkeypatch.setattr(tiling, "BLOCK_Q", 3)
    monkeypatch.setattr(tiling, "BLOCK_K", 2)
    q, k, v, mask, causal = _case("causal_and_mask", seed=11)
    res = []
    for impl in ("plain", "blocked"):
        Q, K, V = (ta.Tensor(a, requires_grad=True) for a in (q, k, v))
        c, w = A.scaled_dot_product(Q, K, V, mask=mask, causal=causal, impl=impl)
        grads = ta.grad([c, w], [Q, K, V], grad_outputs=[arr(*c.shape, seed=12),
                                                          arr(*w.shape, seed=13)])
        res.append([c.data, w.data] + [got.data for got in grads])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_blocked_op_second_derivative_passes_gradcheck(monkeypatch):
    """create_graph=True: the op's backward falls back to Tensor ops, differentiable."""
    monkeypatch.setattr(tiling, "BLOCK_Q", 2)
    monkeypatch.setattr(tiling, "BLOCK_K", 2)
    q, k, v, mask, causal = _case("causal_7x7", seed=14)
    Q, K, V = (ta.Tensor(a[:4], requires_grad=True) for a in (q, k, v))
    g = arr(4, 3, seed=15)

    def vjp(q, k, v):
        c, _ = A.scaled_dot_product(q, k, v, causal=True, impl="blocked", need_weights=False)
        return ta.grad(c, [q, k, v], grad_outputs=g, create_graph=True)

    report = ta.gradcheck(vjp, Q, K, V, atol=1e-7, rtol=1e-5)
    assert report.ok, str(report)


def test_auto_picks_blocked_only_above_the_threshold_and_without_weights(monkeypatch):
    q = ta.Tensor(arr(8, 4, seed=16), requires_grad=True)
    k, v = ta.Tensor(arr(8, 4, seed=17)), ta.Tensor(arr(8, 3, seed=18))

    def kept_weights(**kw):   # the plain op keeps P; the blocked one only the logsumexp
        c, _ = A.scaled_dot_product(q, k, v, **kw)
        return c._ctx.weights is not None

    monkeypatch.setattr(fused, "AUTO_MIN_SCORES", 64)
    assert not kept_weights(need_weights=False, impl="auto")
    assert kept_weights(need_weights=True, impl="auto")
    monkeypatch.setattr(fused, "AUTO_MIN_SCORES", 65)
    assert kept_weights(need_weights=False, impl="auto")
    assert kept_weights(need_weights=False, impl="plain")
    assert not kept_weights(need_weights=True, impl="blocked")


def test_choose_impl_is_the_one_place_the_implementation_is_picked():
    """composed without fused (blocked refused), plain or blocked as asked, and auto:
    blocked only numerically, without weights, from AUTO_MIN_SCORES scores on."""
    choose, big = fused.choose_impl, fused.AUTO_MIN_SCORES
    assert choose("auto", 8, 8, fused=False) == choose("plain", 8, 8, fused=False) == "composed"
    with pytest.raises(ValueError, match="needs fused=True"):
        choose("blocked", 8, 8, fused=False)
    with pytest.raises(ValueError, match="impl must be one of"):
        choose("flash", 8, 8)
    assert choose("blocked", 2, 2) == "blocked" and choose("plain", big, 2) == "plain"
    assert choose("auto", big, 1, need_weights=False) == "blocked"
    assert choose("auto", big - 1, 1, need_weights=False) == "plain"
    assert choose("auto", big, 1, need_weights=True) == "plain"
    assert choose("auto", big, 1, need_weights=False, symbolic=True) == "plain"


# ----------------------------------------------------------------------------- symbolic

def _sym(prefix: str, *shape: int) -> np.ndarray:
    n = int(np.prod(shape))
    return np.array(sp.symbols(f"{prefix}0:{n}", real=True), dtype=object).reshape(shape)


def test_blocked_kernels_run_on_sympy_and_equal_the_plain_form_exactly():
    """The same kernel code on SymPy symbols: stability_shift is 0 there, every rescale
    factor is 1, so O is the plain sum exp(S) V / sum exp(S) -- proven equal to the
    plain fused kernel's expressions, forward and backward, with a masked key and a
    causal diagonal across several 2 x 2 tiles."""
    q, k, v, g = _sym("q", 3, 2), _sym("k", 5, 2), _sym("v", 5, 1), _sym("g", 3, 1)
    mask = np.array([True, False, True, True, True])[None, :].repeat(3, 0)
    o, lse = flash.flash_forward(symbolic, q, k, v, mask, True, block_q=2, block_k=2)
    o_ref, p_ref = kernels.sdpa_forward(symbolic, q, k, v, mask, True)
    grads = flash.flash_backward(symbolic, q, k, v, o, lse, g, mask, True,
                                 block_q=2, block_k=2)
    grads_ref = kernels.sdpa_backward(symbolic, q, k, v, o_ref, p_ref, g, mask, True)
    assert not any(e.has(sp.Max) for e in o.ravel())   # no running max symbolically
    proof = ta.symbolic.equivalent(
        {"O": o, "dQ": grads[0], "dK": grads[1], "dV": grads[2]},
        {"O": o_ref, "dQ": grads_ref[0], "dK": grads_ref[1], "dV": grads_ref[2]},
        subject="blocked == plain fused")
    assert proof.ok, str(proof)
    assert grads[1][1, 0] == 0 and grads[2][1, 0] == 0     # the masked key: exactly 0
    assert grads[1][4, 0] == 0                              # key 4: after every query


def test_blocked_op_backward_equals_sympy_diff(monkeypatch):
    """gradcheck(symbolic=True): the blocked op, run on symbols, against sympy.diff."""
    monkeypatch.setattr(tiling, "BLOCK_Q", 2)
    monkeypatch.setattr(tiling, "BLOCK_K", 2)
    Q, K, V = (ta.Tensor(arr(*s, seed=20 + i), requires_grad=True, name=n)
               for i, (s, n) in enumerate((((3, 2), "q"), ((4, 2), "k"), ((4, 1), "v"))))

    def fn(q, k, v):
        return A.scaled_dot_product(q, k, v, causal=True, impl="blocked",
                                    need_weights=False)[0]

    report = ta.gradcheck(fn, Q, K, V, symbolic=True)
    assert report.ok, str(report)


def test_symbolic_negative_control_a_missing_rescale_is_not_proven():
    """The proof can fail: dropping a key tile's contribution changes O."""
    q, k, v = _sym("q", 2, 1), _sym("k", 3, 1), _sym("v", 3, 1)
    o, _ = flash.flash_forward(symbolic, q, k, v, None, False, block_q=2, block_k=2)
    o_ref, _ = kernels.sdpa_forward(symbolic, q, k[:2], v[:2])
    proof = ta.symbolic.equivalent({"O": o}, {"O": o_ref}, subject="control")
    assert not proof.ok


# ----------------------------------------------------------------------------- numerics

def test_fully_masked_row_gives_zero_output_zero_gradients_never_nan():
    q, k, v = arr(5, 3, seed=30), arr(7, 3, seed=31), arr(7, 2, seed=32)
    mask = rand_mask(5, 7, seed=33)
    mask[2] = False
    o, lse = flash.flash_forward(numeric, q, k, v, mask, False, block_q=2, block_k=3)
    dq, dk, dv = flash.flash_backward(numeric, q, k, v, o, lse, np.ones_like(o), mask,
                                      False, block_q=2, block_k=3)
    for a in (o, lse, dq, dk, dv):
        assert np.all(np.isfinite(a))
    assert np.all(o[2] == 0) and lse[2] == 0 and np.all(dq[2] == 0)
    dk_masked = flash.flash_backward(numeric, q, k, v, o, lse, np.eye(5)[2][:, None]
                                     * np.ones_like(o), mask, False, block_q=2, block_k=3)
    assert all(np.all(got == 0) for got in dk_masked)  # only the empty row's g: all 0


def test_huge_and_hugely_negative_logits_neither_overflow_nor_underflow():
    """Scores of +-1e4, and a row whose first key tile is masked while its later scores
    are all near -1e4: the running max must be the real one, not 0."""
    q = arr(6, 4, seed=34) * 1e3
    k, v = arr(9, 4, seed=35) * 10, arr(9, 3, seed=36)
    mask = np.ones((6, 9), bool)
    mask[:, :3] = False
    for qq in (q, -np.abs(q), np.abs(q)):
        kk = np.abs(k)
        o, lse = flash.flash_forward(numeric, qq, kk, v, mask, False, block_q=2, block_k=3)
        g = arr(*o.shape, seed=37)
        o_ref, _, grads_ref = _plain(qq, kk, v, mask, False, g)
        np.testing.assert_allclose(o, o_ref, rtol=1e-12, atol=1e-12)
        grads = flash.flash_backward(numeric, qq, kk, v, o, lse, g, mask, False,
                                     block_q=2, block_k=3)
        for got, want in zip(grads, grads_ref):
            assert np.all(np.isfinite(got))
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("jump,v_scale,redone", [(25.0, 1.0, 0), (25.0, 1e30, 1),
                                                  (200.0, 1.0, 0)])
def test_lazy_reference_forward_rebases_redoes_or_goes_wide(monkeypatch, jump, v_scale,
                                                             redone):
    """The numeric forward starts a row's reference mu at 0 when the scores are bounded
    (flash.wide_scores false) and takes 2^{S - mu} at once, no max.  Later tiles scoring
    ``jump`` higher: 25 passes REBASE
    (e^25 > 2^32: mu += log2 ell); with values of size 1e30 the product P V overflows
    float32 (e^25 * 1e30), so the tile is redone the classic way (one more score product;
    the next tile is lazy again); 200 makes the call *wide* (scores may leave exp2's fast
    range, flash.wide_scores): every tile is taken the classic way, none redone.  All must equal
    the float64 reference."""
    calls = []
    real = workers.product

    def counting(xp, a, b, scratch, slot="tile"):
        calls.append(slot)
        return real(xp, a, b, scratch, slot)

    monkeypatch.setattr(workers, "product", counting)
    q, k, v = arr(4, 2, seed=50), arr(9, 2, seed=51), arr(9, 3, seed=52) * v_scale
    q[:, 0], q[:, 1], k[:, 0] = 1.0, q[:, 1] * 0.3, 0.0
    k[3:, 0] = jump * np.sqrt(2)                 # keys 3.. score ``jump`` more (s = 1/sqrt 2)
    q32, k32, v32 = (a.astype(np.float32) for a in (q, k, v))
    assert flash.wide_scores(numeric, q32, k32, 2 ** -0.5) == (jump > 88)
    o, lse = flash.flash_forward(numeric, q32, k32, v32, None, False, block_q=4, block_k=3)
    o_ref, _ = kernels.sdpa_forward(numeric, q, k, v)
    assert o.dtype == np.float32 and np.all(np.isfinite(o)) and np.all(np.isfinite(lse))
    np.testing.assert_allclose(o / v_scale, o_ref / v_scale, rtol=1e-5, atol=1e-5)
    scores = q @ k.T / np.sqrt(2)
    lse_ref = scores.max(-1) + np.log(np.exp(scores - scores.max(-1, keepdims=True)).sum(-1))
    np.testing.assert_allclose(lse, lse_ref, rtol=1e-5)
    assert calls.count("tile") - 3 == redone          # 3 key tiles; more = redone tiles


def test_wide_scores_are_clipped_before_exp(monkeypatch):
    """Scores spread far beyond exp's range: the kernels see it (flash.wide_scores) and clip,
    so exp2 never gets an input below its fast range (NumPy's slow path), forward or
    backward: each tile's weights are exactly exp2 of its clipped scores or 0."""
    seen = []
    real = flash.exp_masked

    def watching(xp, s, blocked, shift=None, clip=False):
        x = s - (0 if shift is None else shift)       # what exp2 would be given
        if blocked is not None:
            x = x[~blocked]
        seen.append(np.any(x < flash.exp2_floor(s.dtype)) and not clip)
        return real(xp, s, blocked, shift, clip)

    monkeypatch.setattr(flash, "exp_masked", watching)
    q, k, v = arr(6, 3, seed=65), arr(10, 3, seed=66), arr(10, 2, seed=67)
    q, k = q * 30, k * 30                             # scores of size ~1000
    for dtype in (np.float32, np.float64):
        qd, kd, vd = (a.astype(dtype) for a in (q, k, v))
        o, lse = flash.flash_forward(numeric, qd, kd, vd, None, True, block_q=2, block_k=3)
        flash.flash_backward(numeric, qd, kd, vd, o, lse, np.ones_like(o), None, True,
                             block_q=2, block_k=3)
    assert len(seen) > 10 and not any(seen)


def test_rebasing_at_every_tile_changes_nothing(monkeypatch):
    """REBASE = 1: every tile moves the reference (mu += log ell, A /= ell); the softmax
    is invariant to it, so O and the logsumexp still equal the plain kernels to 1e-12."""
    monkeypatch.setattr(flash, "REBASE", 1.0)
    q, k, v, mask, causal = _case("causal_and_mask", seed=53)
    o, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=2)
    o_ref, _ = kernels.sdpa_forward(numeric, q, k, v, mask, causal)
    np.testing.assert_allclose(o, o_ref, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(flash, "REBASE", 2.0 ** 32)
    _, lse_ref = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=2)
    np.testing.assert_allclose(lse, lse_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tile_exp_never_makes_a_subnormal_and_blocks_exactly(dtype):
    """exp2 of a base-2 score far below its row's max is subnormal or 0, and NumPy takes a
    much slower path for those (benchmarks/bench_exp.py): clipping, the tiles' exp sends
    nothing below its floor (just above log2 of the smallest normal) into exp2; weights
    above the floor are exactly exp2's, those below and blocked ones (whatever they
    scored, -inf and 500 here) are exactly 0: no weight is subnormal."""
    tiny = np.finfo(dtype).smallest_normal
    rng = np.random.default_rng(60)
    s = np.concatenate([rng.uniform(-2000, 0, (6, 40)), np.full((6, 2), -np.inf),
                        np.full((6, 2), 500.0)], axis=1).astype(dtype)
    blocked = np.zeros(s.shape, bool)
    blocked[:, -3:] = True                            # one -inf and two huge: blocked
    blocked[::2, :5] = True
    p = flash.exp_masked(numeric, s.copy(), blocked, clip=True)
    assert p.dtype == dtype and np.all(p[blocked] == 0)
    floor = flash.exp2_floor(np.dtype(dtype))
    assert np.log2(tiny) < floor < np.log2(tiny) + 2
    above = ~blocked & (s >= floor)
    assert np.all(p[above] >= tiny) and np.all(p[~above] == 0)
    np.testing.assert_array_equal(p[above], np.exp2(s[above]))


@pytest.mark.parametrize("dtype,gap", [(np.float32, 150.0), (np.float64, 1000.0)])
def test_peaked_scores_agree_with_the_plain_kernels(dtype, gap):
    """Scores that differ by more than exp's range (weights below the smallest normal):
    the blocked kernels still agree with the plain fused ones, forward and backward."""
    q, k, v = arr(6, 3, seed=61), arr(10, 3, seed=62), arr(10, 2, seed=63)
    k[:, 0] = np.linspace(0.0, gap, 10) * np.sqrt(3)  # s = 1/sqrt 3: scores span ``gap``
    q[:, 0] = np.linspace(0.2, 1.0, 6)
    g = arr(6, 2, seed=64)
    q, k, v, g = (a.astype(dtype) for a in (q, k, v, g))
    mask = np.ones((6, 10), bool)
    mask[1, 7:] = False
    with np.errstate(under="ignore"):
        o_ref, _, grads_ref = _plain(*(a.astype(np.float64) for a in (q, k, v)), mask, True,
                                 g.astype(np.float64))
    o, lse = flash.flash_forward(numeric, q, k, v, mask, True, block_q=2, block_k=3)
    grads = flash.flash_backward(numeric, q, k, v, o, lse, g, mask, True, block_q=2,
                                 block_k=3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(o, o_ref, rtol=tol, atol=tol)
    for got, want in zip(grads, grads_ref):
        np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * 10)


def test_float32_stays_float32_and_agrees_with_float64():
    q, k, v, mask, causal = _case("causal_and_mask", seed=38, dtype=np.float32)
    o, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=3)
    grads = flash.flash_backward(numeric, q, k, v, o, lse, np.ones_like(o), mask, causal,
                                 block_q=2, block_k=3)
    assert o.dtype == lse.dtype == np.float32
    assert all(got.dtype == np.float32 for got in grads)
    # and so does the work in between (a float64 constant must not promote the products)
    assert {buf.dtype for buf in workers.work.buffers.values()} == {np.dtype(np.float32)}
    o64, _, grads64 = _plain(*(a.astype(np.float64) for a in (q, k, v)), mask, causal,
                         np.ones(o.shape))
    np.testing.assert_allclose(o, o64, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, grads64):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_causal_tiles_above_the_diagonal_are_skipped_not_computed(monkeypatch):
    """n = 8 in 2 x 2 tiles: 10 of the 16 tiles touch the lower triangle; only those are
    multiplied, in the forward and in the backward."""
    calls = []
    real = workers.product

    def counting(xp, a, b, scratch, slot="tile"):
        if slot == "tile":                               # the score tile S = Q K^T
            calls.append(a.shape[0] * b.shape[1])
        return real(xp, a, b, scratch, slot)

    monkeypatch.setattr(workers, "product", counting)
    q, k, v = arr(8, 3, seed=40), arr(8, 3, seed=41), arr(8, 2, seed=42)
    assert len(list(tiling.tiles(8, 8, causal=True, block_q=2, block_k=2))) == 10
    o, lse = flash.flash_forward(numeric, q, k, v, None, True, block_q=2, block_k=2)
    assert len(calls) == 10
    flash.flash_backward(numeric, q, k, v, o, lse, np.ones_like(o), None, True,
                         block_q=2, block_k=2)
    assert len(calls) == 20
    calls.clear()
    flash.flash_forward(numeric, q, k, v, None, False, block_q=2, block_k=2)
    assert len(calls) == 16                              # control: non-causal does all


@pytest.mark.parametrize("m,n", [(8, 8), (11, 7), (5, 9)])
def test_causal_strips_of_width_one_compute_exactly_the_lower_triangle(monkeypatch, m, n):
    """With diagonal strips one key wide the forward multiplies exactly the entries
    j <= i (top-left aligned): nothing above the diagonal; the backward likewise."""
    area = []
    real = workers.product

    def counting(xp, a, b, scratch, slot="tile"):
        if slot == "tile":
            area.append(a.shape[0] * b.shape[1])
        return real(xp, a, b, scratch, slot)

    monkeypatch.setattr(workers, "product", counting)
    q, k, v = arr(m, 3, seed=46), arr(n, 3, seed=47), arr(n, 2, seed=48)
    want = int(np.sum(kernels.causal_mask(m, n)))
    o, lse = flash.flash_forward(numeric, q, k, v, None, True, block_q=4, block_k=3,
                                 block_diag=1)
    assert sum(area) == want
    area.clear()
    flash.flash_backward(numeric, q, k, v, o, lse, np.ones_like(o), None, True, block_q=4,
                         block_k=3, block_diag=1)
    assert sum(area) == want
    area.clear()
    flash.flash_forward(numeric, q, k, v, None, False, block_q=4, block_k=3)
    assert sum(area) == m * n                             # control: non-causal does all


def test_wholly_masked_tiles_are_skipped(monkeypatch):
    calls = []
    real = workers.product
    def counting(xp, a, b, scratch, slot="tile"):
        calls.extend([1] if slot == "tile" else [])      # score tiles only
        return real(xp, a, b, scratch, slot)

    monkeypatch.setattr(workers, "product", counting)
    q, k, v = arr(4, 3, seed=43), arr(6, 3, seed=44), arr(6, 2, seed=45)
    mask = np.ones((4, 6), bool)
    mask[:, 3:] = False                                   # padding: keys 3..5
    o, _ = flash.flash_forward(numeric, q, k, v, mask, False, block_q=2, block_k=3)
    assert len(calls) == 2
    np.testing.assert_allclose(o, _plain(q, k, v, mask, False, np.ones((4, 2)))[0],
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args,kwargs,error,words", [
    (((3, 4), (5, 3), (5, 2)), {}, ValueError, "feature size"),
    (((3, 4), (5, 4), (6, 2)), {}, ValueError, "same number of rows"),
    (((2, 3, 4), (3, 5, 4), (3, 5, 2)), {}, ValueError, "do not broadcast"),
    (((4,), (5, 4), (5, 2)), {}, ValueError, "at least 2 dimensions"),
    (((3, 4), (5, 4), (5, 2)), {"mask": np.ones((3, 4), bool)}, ValueError, "mask of shape"),
    (((3, 4), (5, 4), (5, 2)), {"mask": np.ones((3, 5))}, TypeError, "boolean"),
    (((3, 4), (5, 4), (5, 2)), {"block_q": 0}, ValueError, "block_q"),
    (((3, 4), (5, 4), (5, 2)), {"block_k": 2.5}, ValueError, "block_k"),
    (((3, 4), (5, 4), (5, 2)), {"threads": 0}, ValueError, "threads"),
])
def test_bad_input_gets_a_clear_error_naming_the_argument(args, kwargs, error, words):
    q, k, v = (arr(*s) for s in args)
    with pytest.raises(error, match=words):
        flash.flash_forward(numeric, q, k, v, **kwargs)


def test_unknown_impl_and_blocked_without_fused_are_refused():
    q = ta.Tensor(arr(3, 4))
    with pytest.raises(ValueError, match="impl must be one of"):
        A.scaled_dot_product(q, q, q, impl="flash")
    with pytest.raises(ValueError, match="needs fused=True"):
        A.scaled_dot_product(q, q, q, fused=False, impl="blocked")


def test_worker_pool_is_made_anew_in_a_forked_child(monkeypatch):
    """A forked child inherits the pool object but not its threads: it must not wait on
    them forever."""
    pool = workers.executor(2)
    monkeypatch.setattr(workers.os, "getpid", lambda: -1)      # as seen from a child
    child_pool = workers.executor(2)
    assert child_pool is not pool
    q = arr(6, 3, seed=50)
    o, _ = flash.flash_forward(numeric, q, q, q, block_q=2, threads=2)
    np.testing.assert_allclose(o, kernels.sdpa_forward(numeric, q, q, q)[0], rtol=1e-12)
    child_pool.shutdown()


def test_mixed_precision_promotes_as_the_plain_kernels_do():
    q, k, v = arr(5, 3, seed=51, dtype=np.float32), arr(7, 3, seed=52), arr(7, 2, seed=53)
    o, lse = flash.flash_forward(numeric, q, k, v, block_q=2, block_k=3)
    o_ref, _ = kernels.sdpa_forward(numeric, q, k, v)
    assert o.dtype == o_ref.dtype == np.float64
    # the plain kernel rounds the scale and the scaled queries to q's float32 first
    np.testing.assert_allclose(o, o_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [1000, 1024, 1536, 2048, 3000, 700])
def test_default_blocks_share_out_evenly_over_two_threads(size):
    """Non-causal blocks all cost the same, so with few of them their number should be a
    multiple of the threads (3 blocks on 2 threads take as long as 4): the defaults are
    shrunk to that (forward query blocks and backward key blocks), never grown."""
    rows = tiling.rows_block(tiling.BLOCK_Q, size, 1, 2, False)
    keys = tiling.even(tiling.BLOCK_K, size, 1, 2)
    for block, default in ((rows, tiling.BLOCK_Q * tiling.FORWARD_ROWS), (keys, tiling.BLOCK_K)):
        count = -(-size // block)
        assert block <= default and (count % 2 == 0 or count >= 8)
    assert tiling.even(tiling.BLOCK_K, size, 1, 1) == tiling.BLOCK_K   # one thread: as is
    assert tiling.even(tiling.BLOCK_K, 400, 1, 2) == tiling.BLOCK_K     # none under 256
    assert tiling.rows_block(tiling.BLOCK_Q, 1024, 1, 2, True) == tiling.BLOCK_Q  # causal:
    #                                                       two blocks per thread, 4 x 256


def test_work_arrays_are_reused_between_calls_and_never_alias_the_results():
    """The O(n d) work arrays (see workers.Workspace) are kept between calls, so a second
    call of the same size allocates none of them; the returned arrays are the caller's:
    a later call (which rewrites the work arrays) leaves them unchanged."""
    q, k, v, mask, causal = _case("batch_broadcast")
    g = arr(2, 3, 7, 5, seed=9)
    flash.free_workspace()
    o, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=3)
    grads = flash.flash_backward(numeric, q, k, v, o, lse, g, mask, causal, block_q=2,
                                 block_k=3)
    kept = {name: buf.__array_interface__["data"][0]
            for name, buf in workers.work.buffers.items()}
    assert {"qa", "ka", "ga", "va", "dq0"} <= set(kept)
    saved = [a.copy() for a in (o, lse, *grads)]
    q2, k2, v2 = q * 3, k - 1, v + 2                   # same shapes, other values
    o2, lse2 = flash.flash_forward(numeric, q2, k2, v2, mask, causal, block_q=2, block_k=3)
    flash.flash_backward(numeric, q2, k2, v2, o2, lse2, g, mask, causal, block_q=2,
                         block_k=3)
    assert {name: buf.__array_interface__["data"][0]
            for name, buf in workers.work.buffers.items()} == kept
    for before, after in zip(saved, (o, lse, *grads)):
        np.testing.assert_array_equal(before, after)
    for result in (o, lse, *grads):
        for buf in workers.work.buffers.values():
            assert not np.shares_memory(result, buf)
    flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=3, threads=2)
    assert workers.running_pool() is not None
    flash.free_workspace()
    assert workers.work.buffers == {} and workers.running_pool() is None
    again = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=3,
                                threads=2)                 # made anew, same result
    np.testing.assert_array_equal(again[0], o)


def test_calls_from_two_user_threads_at_once_each_get_their_own_result():
    """Work arrays belong to the calling thread: two user threads running the blocked
    kernels at the same time (sharing the worker pool) get the results of one alone."""
    import threading
    cases = [_case("plain_7x7", seed=s) for s in (0, 10)]
    gs = [arr(7, 3, seed=20 + s) for s in range(2)]
    expect = []
    for (q, k, v, mask, causal), g in zip(cases, gs):
        o, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2, block_k=2)
        expect.append((o, *flash.flash_backward(numeric, q, k, v, o, lse, g, mask, causal,
                                                block_q=2, block_k=2)))
    runs, errors = [0, 0], []

    def run(i: int) -> None:
        (q, k, v, mask, causal), g = cases[i], gs[i]
        try:
            for _ in range(30):
                o, lse = flash.flash_forward(numeric, q, k, v, mask, causal, block_q=2,
                                             block_k=2, threads=2)
                got = (o, *flash.flash_backward(numeric, q, k, v, o, lse, g, mask,
                                                causal, block_q=2, block_k=2, threads=2))
                for a, b in zip(got, expect[i]):
                    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
                runs[i] += 1
        except Exception as exc:      # a thread's failure is reported here, not lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and runs == [30, 30]
