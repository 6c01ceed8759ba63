"""What attention is: each claim of tinygrad_attn/study/claims.py as a test that could
fail, with negative controls showing the checks catch the wrong thing
(derivations/claim_*.md prove the same claims symbolically)."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import tinygrad_attn as ta
from tinygrad_attn.study import claim_pictures
from tinygrad_attn.study import claims as C
from tinygrad_attn.attention.mechanisms import attend, causal_mask, cross_attention, self_attention
from tinygrad_attn.engine.tensor import Tensor, grad


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------- 1. expectation
# derivations/claim_expectation.md

def test_attend_context_equals_sympy_stats_expectation_of_values():
    s = ta.symbolic.symbols("s", (3,)).data
    V = ta.symbolic.symbols("V", (3, 2)).data
    c, p = attend(Tensor(s), Tensor(V))
    exact = C.expectation(list(p.data), V)
    assert all(sp.simplify(a - b) == 0 for a, b in zip(c.data, exact))
    wrong = C.expectation([sp.Rational(1, 3)] * 3, V)           # uniform p is not the softmax
    assert sp.simplify(c.data[0] - wrong[0]) != 0


def test_monte_carlo_context_error_falls_as_one_over_sqrt_samples(rng):
    _, p = attend(rng.normal(size=6), rng.normal(size=(6, 2)))
    values = rng.normal(size=(6, 3))
    Ns = [2 ** k for k in range(11)]
    err = C.monte_carlo_error(p.data, values, Ns, trials=300, seed=0)
    c = p.data @ values
    theory = np.sqrt(np.sum(p.data[:, None] * (values - c) ** 2) / np.array(Ns))
    assert -0.6 < C.log_log_slope(Ns, err) < -0.4
    np.testing.assert_allclose(err, theory, rtol=0.25)


def test_a_biased_monte_carlo_sampler_is_caught_its_error_plateaus(rng):
    """Negative control: sampling positions uniformly instead of from p does not converge."""
    _, p = attend(3 * rng.normal(size=6), rng.normal(size=(6, 2)))
    values = rng.normal(size=(6, 3))

    def uniform(p, v, N, rng, trials):
        return C.monte_carlo_context(np.full(len(p), 1 / len(p)), v, N, rng, trials)

    Ns = [2 ** k for k in range(4, 11)]
    err = C.monte_carlo_error(p.data, values, Ns, trials=200, sampler=uniform)
    assert C.log_log_slope(Ns, err) > -0.2


def test_monte_carlo_refuses_weights_that_are_not_a_distribution():
    with pytest.raises(ValueError, match="summing to 1"):
        C.monte_carlo_context(np.array([0.5, 0.6]), np.ones((2, 1)), 10)
    with pytest.raises(ValueError, match="samples"):
        C.monte_carlo_context(np.array([0.5, 0.5]), np.ones((2, 1)), 0)


# ----------------------------------------------------------------------------- 2. convolution
# derivations/claim_convolution.md

KERNELS = [np.array([0.25, 0.5, 0.25]), np.array([0.1, 0.7, 0.3]),
           np.array([0.2, 0.1, 0.4, 0.2, 0.6]), np.array([2.0])]


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: f"k{len(k)}")
def test_conv1d_equals_np_convolve_the_toeplitz_product_and_attend(rng, kernel):
    x = rng.normal(size=(9, 2))
    ref = np.stack([np.convolve(x[:, c], kernel, "same") for c in range(2)], axis=1)
    np.testing.assert_allclose(C.conv1d(x, kernel).data, ref, atol=1e-14)
    np.testing.assert_allclose(C.toeplitz(kernel, 9) @ x, ref, atol=1e-14)
    y, w = C.conv1d_as_attention(x, kernel)
    np.testing.assert_allclose(y.data, ref, atol=1e-13)
    np.testing.assert_allclose(C.conv1d_as_attention(x[:, 0], kernel)[0].data, ref[:, 0],
                               atol=1e-13)
    r = len(kernel) // 2                                        # weights: k / sum(k), banded
    np.testing.assert_allclose(w.data[:, r:9 + r], C.toeplitz(kernel / kernel.sum(), 9),
                               atol=1e-15)


def test_conv1d_with_a_signed_kernel_equals_np_convolve(rng):
    x, k = rng.normal(size=7), np.array([-1.0, 2.0, 0.5])
    np.testing.assert_allclose(C.conv1d(x, k).data, np.convolve(x, k, "same"), atol=1e-14)
    with pytest.raises(ValueError, match="positive"):
        C.conv1d_as_attention(x, k)                             # softmax weights are > 0
    with pytest.raises(ValueError, match="odd length"):
        C.conv1d(x, np.ones(2))


def test_conv_as_attention_has_the_gradients_of_the_convolution(rng):
    x = Tensor(rng.normal(size=(6, 2)), requires_grad=True, name="x")
    k = Tensor(np.array([0.3, 0.5, 0.2]), requires_grad=True, name="kernel")
    dy = rng.normal(size=(6, 2))
    g1 = grad(C.conv1d(x, k), [x, k], grad_outputs=dy)
    g2 = grad(C.conv1d_as_attention(x, k)[0], [x, k], grad_outputs=dy)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a.data, b.data, atol=1e-13)
    np.testing.assert_allclose(g1[0].data, C.toeplitz(k.data, 6).T @ dy, atol=1e-14)
    assert ta.gradcheck(lambda x, k: C.conv1d_as_attention(x, k)[0], x, k).ok


def _assert_fixed_weights(weights_fn, inputs):
    """The convolution claim: the weight matrix is the same for every input."""
    changes = [C.weights_change(weights_fn, inputs[0], other) for other in inputs[1:]]
    assert max(changes) == 0.0, f"the weights depend on the input (change {max(changes)})"


def test_convolution_weights_are_fixed_self_attention_weights_come_from_the_data(rng):
    n, d = 8, 3
    xs = [rng.normal(size=(n, d)) for _ in range(4)]
    W_q, W_k, W_v = (rng.normal(size=(d, d)) for _ in range(3))
    kernel = np.array([0.2, 0.5, 0.3])
    _assert_fixed_weights(lambda x: C.conv1d_as_attention(x, kernel)[1], xs)
    with pytest.raises(AssertionError, match="depend on the input"):
        _assert_fixed_weights(lambda x: self_attention(x, W_q, W_k, W_v)[1], xs)


def test_a_kernel_computed_from_the_data_fails_the_convolution_check(rng):
    """Negative control: a 'dynamic convolution' whose kernel is a softmax of the input's
    mean is caught by the same check the convolution passes."""
    xs = [rng.normal(size=(8, 3)) for _ in range(3)]

    def dynamic(x):
        kernel = Tensor(x).mean(axis=0).softmax(axis=-1)        # (3,): from the data
        return C.conv1d_as_attention(x, kernel)[1]

    with pytest.raises(AssertionError, match="depend on the input"):
        _assert_fixed_weights(dynamic, xs)


def test_receptive_field_is_the_kernel_for_conv_and_everything_for_attention(rng):
    n, d = 9, 2
    x = rng.normal(size=(n, d))
    W = [rng.normal(size=(d, d)) for _ in range(3)]
    kernel = np.array([0.1, 0.2, 0.4, 0.2, 0.1])                 # r = 2
    for i in range(n):
        field = C.receptive_field(lambda t: C.conv1d(t, kernel), x, i)
        expected = np.abs(np.arange(n) - i) <= 2
        np.testing.assert_array_equal(field, expected)
        np.testing.assert_array_equal(C.receptive_field(
            lambda t: C.conv1d_as_attention(t, kernel), x, i), expected)
        assert C.receptive_field(lambda t: self_attention(t, *W), x, i).all()


# ----------------------------------------------------------------------------- 3. cross
# derivations/claim_cross_as_self.md

def _cross_inputs(rng, m=3, n=5, d_dec=2, d_enc=4, d_k=3, d_v=2):
    shapes = {"x_dec": (m, d_dec), "x_enc": (n, d_enc), "W_q": (d_dec, d_k),
              "W_k": (d_enc, d_k), "W_v": (d_enc, d_v)}
    return [Tensor(rng.normal(size=s), requires_grad=True, name=k) for k, s in shapes.items()]


@pytest.mark.parametrize("fused", [False, True])
def test_cross_attention_equals_masked_self_attention_outputs_and_gradients(rng, fused):
    inputs = _cross_inputs(rng)
    c1, w1 = cross_attention(*inputs, fused=fused)
    c2, w2 = C.cross_as_masked_self(*inputs, fused=fused)
    np.testing.assert_allclose(c2.data, c1.data, atol=1e-13)
    np.testing.assert_allclose(w2.data, w1.data, atol=1e-14)
    dc, dw = rng.normal(size=c1.shape), rng.normal(size=w1.shape)
    g1 = grad([c1, w1], inputs, grad_outputs=[dc, dw])
    g2 = grad([c2, w2], inputs, grad_outputs=[dc, dw])
    for t, a, b in zip(inputs, g1, g2):
        np.testing.assert_allclose(b.data, a.data, atol=1e-12, err_msg=t.name)


def test_cross_as_masked_self_with_equal_widths_and_a_single_decoder_position(rng):
    inputs = _cross_inputs(rng, m=1, n=4, d_dec=3, d_enc=3)
    np.testing.assert_allclose(C.cross_as_masked_self(*inputs)[0].data,
                               cross_attention(*inputs)[0].data, atol=1e-13)
    assert ta.gradcheck(lambda *a: C.cross_as_masked_self(*a)[0], *inputs).ok


def test_a_leaking_mask_breaks_the_equality(rng):
    """Negative control: decoder rows that may also see the decoder (or that miss an
    encoder position) no longer give cross attention, and the comparison says so."""
    m, n = 3, 5
    inputs = _cross_inputs(rng, m=m, n=n)
    reference = cross_attention(*inputs)[0].data
    leaky = C.cross_mask(m, n)
    leaky[n:, n:] = np.tri(m, dtype=bool)                        # decoder sees the decoder
    short = C.cross_mask(m, n)
    short[n:, n - 1] = False                                     # misses the last encoder
    for mask in (leaky, short):
        out = C.cross_as_masked_self(*inputs, mask=mask)[0].data
        assert np.max(np.abs(out - reference)) > 1e-3
        with pytest.raises(AssertionError):
            np.testing.assert_allclose(out, reference, atol=1e-13)


def test_cross_as_masked_self_names_the_bad_argument(rng):
    x_dec, x_enc, W_q, W_k, W_v = _cross_inputs(rng)
    with pytest.raises(ValueError, match="W_k"):
        C.cross_as_masked_self(x_dec, x_enc, W_q, W_q, W_v)
    with pytest.raises(ValueError, match="x_enc"):
        C.cross_as_masked_self(x_dec, x_enc.data[0], W_q, W_k, W_v)


# ----------------------------------------------------------------------------- 4. causal
# derivations/claim_causal.md, derivations/causal_masking.md

def _sequence(rng, n=7, d=3):
    return rng.normal(size=(n, d)), [rng.normal(size=(d, d)) for _ in range(3)]


@pytest.mark.parametrize("fused", [False, True])
def test_causal_output_at_t_does_not_change_when_later_inputs_change(rng, fused):
    x, W = _sequence(rng)
    fn = lambda t: self_attention(t, *W, causal=True, fused=fused)  # noqa: E731
    for t in range(x.shape[0] - 1):
        assert C.future_change(fn, x, t, rng=t) == 0.0
        g = C.future_gradient(fn, x, t)
        assert np.all(g[t + 1:] == 0.0) and np.any(g[:t + 1] != 0.0)


def test_causal_masked_weights_and_their_gradients_are_exactly_zero(rng):
    n = 6
    scores = Tensor(rng.normal(size=(n, n)), requires_grad=True)
    values = Tensor(rng.normal(size=(n, 2)), requires_grad=True)
    context, weights = attend(scores, values, causal_mask(n))
    above = ~causal_mask(n)
    assert np.all(weights.data[above] == 0.0)
    (ds,) = grad(context, [scores], grad_outputs=rng.normal(size=context.shape))
    assert np.all(ds.data[above] == 0.0)
    assert np.all(ds.data[1:][~above[1:]] != 0.0)   # row 0 sees one key: its weight is 1


def test_leaking_causal_masks_are_detected(rng):
    """Negative controls: masking after the softmax (the normaliser still sums the future)
    and an off-by-one mask (j <= i + 1) both let later inputs change earlier outputs."""
    x, W = _sequence(rng)
    n, t = x.shape[0], 2
    after = lambda z: C.mask_after_softmax(z, *W)  # noqa: E731
    off_by_one = lambda z: self_attention(z, *W, mask=np.tri(n, k=1, dtype=bool))  # noqa: E731
    for fn in (after, off_by_one):
        assert C.future_change(fn, x, t) > 1e-6
        assert np.any(np.abs(C.future_gradient(fn, x, t)[t + 1:]) > 1e-9)
    assert np.all(after(Tensor(x))[1].data[~causal_mask(n)] == 0.0)  # looks masked, is not


# ----------------------------------------------------------------------------- 5. images
# derivations/claim_image.md

def test_patchify_layout_and_unpatchify_round_trip(rng):
    img = rng.normal(size=(6, 8, 3))
    X = C.patchify(img, 2).data
    assert X.shape == (12, 12)
    for a, b in [(0, 0), (1, 3), (2, 2)]:                       # patch (a, b) is its block
        np.testing.assert_array_equal(X[a * 4 + b].reshape(2, 2, 3),
                                      img[2 * a:2 * a + 2, 2 * b:2 * b + 2])
    np.testing.assert_array_equal(C.unpatchify(X, img.shape, 2).data, img)
    with pytest.raises(ValueError, match="p=4"):
        C.patchify(img, 4)
    with pytest.raises(ValueError, match="unpatchify"):
        C.unpatchify(X, (6, 8, 1), 2)


def test_image_self_attention_passes_the_three_way_gradient_check(rng):
    img = Tensor(rng.random((2, 4, 1)), requires_grad=True, name="image")
    W = [Tensor(rng.normal(size=s), requires_grad=True, name=nm) for nm, s in
         (("W_q", (4, 2)), ("W_k", (4, 2)), ("W_v", (4, 1)), ("W_o", (1, 4)))]
    report = ta.gradcheck(lambda i, *w: C.image_self_attention(i, 2, *w)[0], img, *W,
                          symbolic=True)
    assert report.ok, str(report)


def test_image_attention_map_picks_the_patches_that_look_like_the_query():
    ex = C.image_example()
    out, w = C.image_self_attention(ex["image"], ex["p"], ex["W_q"], ex["W_k"], ex["W_v"],
                                    ex["W_o"])
    g = ex["image"].shape[0] // ex["p"]
    row = w.data[ex["query"]]
    squares = [a * g + b for a, b in [(1, 1), (1, 2), (2, 1), (2, 2),
                                      (3, 3), (3, 4), (4, 3), (4, 4)]]
    others = np.setdiff1d(np.arange(g * g), squares)
    np.testing.assert_allclose(row[squares], row[squares[0]], rtol=1e-12)  # both squares
    assert row[squares].min() > 10 * row[others].max()
    assert out.shape == ex["image"].shape


def test_image_attention_graph_has_the_four_steps(rng):
    img = Tensor(rng.random((4, 4, 1)), requires_grad=True, name="image")
    W = [Tensor(rng.normal(size=s), requires_grad=True) for s in ((4, 2),) * 3 + ((2, 4),)]
    source = ta.draw(C.image_self_attention(img, 2, *W)[0]).source
    for cluster in ("patchify", "projection", "softmax", "unpatchify"):
        assert f'label="{cluster}"' in source or f"label={cluster}" in source, cluster


# ----------------------------------------------------------------------------- 6. cost
# derivations/claim_cost.md

def test_counted_cost_is_quadratic_in_the_number_of_tokens():
    d = 4
    ns = [4, 8, 16, 256, 512]
    cost = [C.recorded_cost(n, d) for n in ns]
    assert [c["pairs"] for c in cost] == [n * n for n in ns]
    assert [c["multiply_adds"] for c in cost] == [3 * n * d * d + 2 * n * n * d for n in ns]
    floats = [c["floats"] for c in cost]                         # a n^2 + b n: 3 n x n arrays
    a = (floats[1] - 2 * floats[0]) / (ns[1] ** 2 - 2 * ns[0] ** 2)
    assert a == 3 and all(f - 3 * n * n == (floats[0] - 3 * 16) / 4 * n
                          for f, n in zip(floats, ns))
    assert 3.9 < floats[-1] / floats[-2] < 4                     # doubling n: nearly x4


# ----------------------------------------------------------------------------- pictures

def test_write_pictures_draws_a_picture_and_refuses_unknown_names(tmp_path):
    numbers = claim_pictures.write_pictures(tmp_path, ["claims_cross.png"])
    assert (tmp_path / "claims_cross.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert numbers["claims_cross.png"]["max_context_difference"] < 1e-12
    with pytest.raises(ValueError, match="unknown pictures"):
        claim_pictures.write_pictures(tmp_path, ["nope.png"])


# ------------------------------------------------- rather than a recurrence (Vaswani Table 1)

def _constant_path(layer) -> bool:
    """The check self-attention must pass: path length and sequential ops do not grow."""
    from tinygrad_attn.study import paths

    m = [paths.measure_layer(layer, n, 3) for n in (4, 8, 16)]
    return len({(r["sequential"], r["max_path"]) for r in m}) == 1


def test_self_attention_path_length_is_constant_and_recurrence_grows_linearly():
    """Vaswani et al. 2017, Table 1: sequential operations and maximum path length are
    O(1) for self-attention and O(n) for a recurrence, measured on the recorded graphs."""
    from tinygrad_attn.study import paths

    assert _constant_path(paths.attention_layer)
    rnn = [paths.measure_layer(paths.recurrent_layer, n, 3) for n in (4, 8, 16)]
    steps = [r["max_path"] for r in rnn]
    assert steps[2] - steps[1] == 2 * (steps[1] - steps[0]) > 0      # linear in n
    assert not _constant_path(paths.recurrent_layer)                   # negative control
    conv = [paths.measure_layer(paths.convolution_layer, n, 3) for n in (4, 8, 16)]
    assert len({r["sequential"] for r in conv}) == 1                   # one layer: O(1)
    assert conv[2]["max_path"] > conv[1]["max_path"] > conv[0]["max_path"]  # the stack: n/r


def test_recorded_multiply_adds_of_the_three_layers_match_their_formulas():
    from tinygrad_attn.study import paths

    n, d = 8, 3
    assert paths.measure_layer(paths.attention_layer, n, d)["multiply_adds"] == \
        3 * n * d * d + 2 * n * n * d
    assert paths.measure_layer(paths.recurrent_layer, n, d)["multiply_adds"] == \
        (2 * n - 1) * d * d                                            # h_{-1} = 0: no U
    assert paths.measure_layer(paths.convolution_layer, n, d)["multiply_adds"] == \
        3 * n * d * d                                                  # k = 3 taps


def test_path_lengths_mark_unreached_positions():
    """A recurrence is causal: input j never reaches output i < j (-1 in the matrix)."""
    import numpy as np

    from tinygrad_attn.study import paths

    xs = paths.positions(4, 2)
    L = paths.path_lengths(paths.recurrent_layer(xs, np.random.default_rng(0)), xs)
    assert (L[np.triu_indices(4, 1)] == -1).all() and (np.tril(L) >= 0).all()
