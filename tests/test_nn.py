"""The training layers, loss and optimisers of nn.py: every gradient gradient-checked in
float64 (central differences), forwards against NumPy references of the published
formulas, optimisers against their update rules, and a negative control showing the
gradient check catches a wrong gradient."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn import nn


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def T(a: np.ndarray, grad: bool = True, name: str | None = None) -> ta.Tensor:
    return ta.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, name=name)


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------- layers

def test_linear_gradient_of_x_W_plus_b_passes_gradcheck():
    lin = nn.Linear(4, 3, rng=1)
    x = T(rng().standard_normal((2, 5, 4)), name="x")
    report = ta.gradcheck(lambda x, W, b: lin(x), x, lin.W, lin.b)
    assert report.ok, str(report)
    np.testing.assert_allclose(lin(x).data, x.data @ lin.W.data + lin.b.data)


def test_linear_wrong_input_width_names_the_shapes():
    with pytest.raises(ValueError, match=r"last axis 5 .* expects 4"):
        nn.Linear(4, 3)(T(np.zeros((2, 5))))


def test_embedding_gradient_accumulates_repeated_ids():
    # dL/dE_v = sum of the upstream gradients at the positions where id = v
    emb = nn.Embedding(5, 3, rng=2, dtype=np.float64)
    ids = np.array([[1, 3, 1], [1, 0, 3]])
    r = rng(3).standard_normal((2, 3, 3))
    (emb(ids) * ta.Tensor(r)).sum().backward()
    expected = np.zeros((5, 3))
    np.add.at(expected, ids, r)
    np.testing.assert_allclose(emb.E.grad, expected, rtol=0, atol=1e-15)
    assert np.all(emb.E.grad[[2, 4]] == 0)       # unused rows get exactly zero
    report = ta.gradcheck(lambda E: emb(ids), emb.E)
    assert report.ok, str(report)


def test_embedding_rejects_float_and_out_of_range_ids():
    emb = nn.Embedding(5, 3)
    with pytest.raises(TypeError, match="integer array"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[0, 5\).*from 0 to 5"):
        emb(np.array([0, 5]))


def test_layernorm_normalises_rows_and_passes_gradcheck():
    # Ba et al. 2016, eq. 4: y = gamma (x - mu) / sqrt(var + eps) + beta
    ln = nn.LayerNorm(6)
    ln.gamma.data = rng(4).standard_normal(6) + 1.0
    ln.beta.data = rng(5).standard_normal(6)
    x = T(rng(6).standard_normal((3, 6)) * 3.0 + 1.0, name="x")
    mu, var = x.data.mean(-1, keepdims=True), x.data.var(-1, keepdims=True)
    expected = (x.data - mu) / np.sqrt(var + ln.eps) * ln.gamma.data + ln.beta.data
    np.testing.assert_allclose(ln(x).data, expected, rtol=1e-12, atol=1e-12)
    z = nn.LayerNorm(6)(x).data
    np.testing.assert_allclose(z.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.var(-1), 1.0 - 1e-5 / (x.data.var(-1) + 1e-5), rtol=1e-10)
    report = ta.gradcheck(lambda x, g, b: ln(x), x, ln.gamma, ln.beta)
    assert report.ok, str(report)


def test_gradcheck_catches_a_layernorm_whose_variance_is_wrongly_held_constant():
    # negative control: treat the variance as a constant (a classic hand-derivation bug)
    def wrong_layernorm(x: ta.Tensor) -> ta.Tensor:
        xc = x - x.mean(axis=-1, keepdims=True)
        var = ((xc * xc).mean(axis=-1, keepdims=True)).detach()
        return xc / (var + 1e-5).sqrt()

    x = T(rng(7).standard_normal((2, 5)), name="x")
    report = ta.gradcheck(wrong_layernorm, x)
    assert not report.ok
    assert "FAIL" in str(report)


def test_gru_cell_matches_the_pytorch_formulas_and_passes_gradcheck():
    # Cho et al. 2014 / torch.nn.GRUCell: r, z gates, candidate n, h' = (1-z) n + z h
    cell = nn.GRUCell(3, 4, rng=8)
    x, h = T(rng(9).standard_normal((2, 3)), name="x"), T(rng(10).standard_normal((2, 4)),
                                                            name="h")
    Wx, Wh, bx, bh = (p.data for p in (cell.W_x, cell.W_h, cell.b_x, cell.b_h))
    gx, gh = x.data @ Wx + bx, h.data @ Wh + bh
    r = np_sigmoid(gx[:, :4] + gh[:, :4])
    z = np_sigmoid(gx[:, 4:8] + gh[:, 4:8])
    n = np.tanh(gx[:, 8:] + r * gh[:, 8:])
    np.testing.assert_allclose(cell(x, h).data, (1 - z) * n + z * h.data, rtol=1e-12)
    report = ta.gradcheck(lambda x, h, *_: cell(x, h), x, h, cell.W_x, cell.W_h, cell.b_x,
                          cell.b_h)
    assert report.ok, str(report)


def test_gru_cell_checks_state_width():
    cell = nn.GRUCell(3, 4)
    with pytest.raises(ValueError, match="state must end in 4"):
        cell(T(np.zeros((2, 3))), T(np.zeros((2, 5))))


# ----------------------------------------------------------------------------- loss

def test_cross_entropy_equals_mean_negative_log_softmax_over_kept_positions():
    logits = T(rng(11).standard_normal((2, 3, 5)), name="logits")
    targets = np.array([[1, 4, 0], [2, 0, 0]])            # 0 = padding below
    z = logits.data - logits.data.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    keep = targets != 0
    picked = np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    expected = -picked[keep].mean()
    loss = nn.cross_entropy(logits, targets, ignore_index=0)
    np.testing.assert_allclose(loss.data, expected, rtol=1e-13)
    # gradient (softmax - onehot) / N at kept positions, exactly zero at ignored ones
    loss.backward()
    p = np.exp(logp)
    onehot = np.eye(5)[targets]
    np.testing.assert_allclose(logits.grad, (p - onehot) * keep[..., None] / keep.sum(),
                               atol=1e-15)
    report = ta.gradcheck(lambda x: nn.cross_entropy(x, targets, ignore_index=0), logits)
    assert report.ok, str(report)


def test_cross_entropy_of_huge_logits_is_finite():
    logits = T(np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]]))
    loss = nn.cross_entropy(logits, np.array([1, 1]))
    assert np.isfinite(loss.data)
    np.testing.assert_allclose(loss.data, 1e4 / 2)        # row 0 pays 1e4, row 1 pays 0
    loss.backward()
    assert np.all(np.isfinite(logits.grad))


def test_cross_entropy_errors_name_the_problem():
    logits = T(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="integer"):
        nn.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets of shape \(3,\) do not match"):
        nn.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        nn.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="every target equals ignore_index"):
        nn.cross_entropy(logits, np.array([0, 0]), ignore_index=0)


# ----------------------------------------------------------------------------- optimisers

def test_clip_grad_norm_scales_to_the_global_norm():
    # Pascanu et al. 2013: g <- g * c / ||g|| when ||g|| > c, the norm over all parameters
    a, b = T(np.zeros(2)), T(np.zeros(3))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([0.0, 4.0, 0.0])
    assert nn.clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.sqrt((a.grad ** 2).sum() + (b.grad ** 2).sum()), 1.0,
                               rtol=1e-6)
    np.testing.assert_allclose(a.grad[0] / b.grad[1], 3.0 / 4.0)   # direction kept
    a.grad = np.array([0.3, 0.4])
    assert nn.clip_grad_norm([a], 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(a.grad, [0.3, 0.4])           # below the cap: untouched
    with pytest.raises(ValueError, match="max_norm"):
        nn.clip_grad_norm([a], 0.0)


def test_sgd_with_momentum_follows_the_heavy_ball_rule():
    # torch.optim.SGD: v <- mu v + g, p <- p - lr v
    p = T(np.array([1.0, -2.0]))
    opt = nn.SGD([p], lr=0.1, momentum=0.9)
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    p.grad = g1
    opt.step()
    np.testing.assert_allclose(p.data, [1.0, -2.0] - 0.1 * g1)
    p.grad = g2
    opt.step()
    np.testing.assert_allclose(p.data, [1.0, -2.0] - 0.1 * g1 - 0.1 * (0.9 * g1 + g2))


def test_adam_matches_its_update_rule_over_several_steps():
    # Kingma & Ba 2015, Algorithm 1, written out independently in NumPy
    p = T(rng(12).standard_normal(4))
    opt = nn.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-8)
    ref, m, v = p.data.copy(), np.zeros(4), np.zeros(4)
    for t in range(1, 6):
        g = rng(100 + t).standard_normal(4)
        p.grad = g.copy()
        opt.step()
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        ref = ref - 0.01 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.9 ** t)) + 1e-8)
        np.testing.assert_allclose(p.data, ref, rtol=1e-12)


def test_adam_first_step_moves_each_parameter_by_lr_against_its_gradient_sign():
    # with bias correction m_hat / sqrt(v_hat) = g / |g| at t = 1
    p = T(np.zeros(3))
    p.grad = np.array([1e-3, -50.0, 2.0])
    nn.Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [-0.1, 0.1, -0.1], rtol=1e-4)


def test_adam_minimises_a_quadratic_and_keeps_float32():
    p = ta.Tensor(np.array([3.0, -2.0], np.float32), requires_grad=True)
    opt = nn.Adam([p], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        ((p - 1.0) * (p - 1.0)).sum().backward()
        opt.step()
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.data, [1.0, 1.0], atol=1e-2)


def test_optimisers_reject_bad_settings():
    p = T(np.zeros(2))
    with pytest.raises(ValueError, match="lr must be positive"):
        nn.Adam([p], lr=0.0)
    with pytest.raises(ValueError, match="no parameters"):
        nn.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        nn.Adam([p], betas=(1.0, 0.9))


def test_module_state_round_trips_through_npz_exactly(tmp_path):
    a, b = nn.GRUCell(3, 4, rng=1, dtype=np.float32), nn.GRUCell(3, 4, rng=2,
                                                                 dtype=np.float32)
    a.save(str(tmp_path / "gru.npz"))
    b.load(str(tmp_path / "gru.npz"))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and pb.dtype == np.float32
        np.testing.assert_array_equal(pa.data, pb.data)
