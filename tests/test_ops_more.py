"""The ops of engine/ops_more.py beyond the op-table checks (tests/op_cases.py): boolean
Tensors from comparisons, where on them (numerically and symbolically), gradients at ties
with PyTorch's conventions, numerics at extreme inputs, einsum's contractions and errors,
parameter checks, and negative controls for the proofs of Piecewise functions."""
from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import tinygrad_attn as ta
from tinygrad_attn.engine import ops_more
from tinygrad_attn.verify.symbolic import derive, symbols


def grads(fn, *arrays):
    """The gradients of ``fn(*tensors).sum()`` as arrays."""
    ts = [ta.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = ta.grad(fn(*ts).sum(), ts)
    return [g.data for g in out]


# ----------------------------------------------------------------------------- comparisons

@pytest.mark.parametrize("op,want", [
    (lambda x: x < 0, [True, False, False]), (lambda x: x <= 0, [True, True, False]),
    (lambda x: x > 0, [False, False, True]), (lambda x: x >= 0, [False, True, True]),
    (lambda x: x == 0, [False, True, False]), (lambda x: x != 0, [True, False, True]),
    (lambda x: 0 < x, [False, False, True]), (lambda x: np.zeros(3) >= x, [True, True, False]),
])
def test_comparisons_give_boolean_tensors_without_gradient(op, want):
    x = ta.Tensor([-1.5, 0.0, 2.0], requires_grad=True)
    b = op(x)
    assert isinstance(b, ta.Tensor) and b.dtype == np.bool_
    assert not b.requires_grad and b._ctx is None
    np.testing.assert_array_equal(b.data, want)


def test_comparisons_broadcast_and_name_shapes_that_do_not():
    x = ta.Tensor(np.arange(6.0).reshape(2, 3))
    assert (x > ta.Tensor([0.0, 4.0, 1.0])).data.tolist() == [[False, False, True],
                                                            [True, False, True]]
    with pytest.raises(ValueError, match=r"comparison >: shapes \(2, 3\) and \(4,\) cannot"):
        x > ta.Tensor(np.ones(4))


def test_a_tensor_equals_none_is_false_and_an_if_on_a_comparison_raises():
    x = ta.Tensor([1.0])
    assert (x == None) is False and (x != None) is True  # noqa: E711 - the point
    with pytest.raises(TypeError, match="truth value of a Tensor is ambiguous"):
        bool(x > 0)


def test_where_on_a_comparison_has_the_gradient_of_relu_also_the_second():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    via_where = grads(lambda x: ta.where(x > 0, x, 0.0), a)[0]
    np.testing.assert_array_equal(via_where, grads(lambda x: x.relu(), a)[0])
    x = ta.Tensor(a, requires_grad=True)
    (g,) = ta.grad(ta.where(x > 0, x * x, x).sum(), [x], create_graph=True)
    (h,) = ta.grad(g.sum(), [x])
    np.testing.assert_array_equal(h.data, np.where(a > 0, 2.0, 0.0))


def test_symbolic_comparisons_are_relations_or_decided_and_where_builds_piecewise():
    x = symbols("x", (2,))
    c = x > 0
    assert c.dtype == object and c.data[0] == sp.Gt(x.data[0], 0)
    decided = ta.Tensor(sp.Integer(2) * np.ones(2, dtype=object) + 0) > 1
    assert decided.dtype == np.bool_ and decided.data.all()  # numbers: decided exactly
    p = symbols("p", (1,), positive=True)
    assert (p > 0).dtype == np.bool_                         # known from the assumptions
    y = ta.where(c, x * x, -x).data[0]
    assert y == sp.Piecewise((x.data[0] ** 2, x.data[0] > 0), (-x.data[0], True))


def test_the_symbolic_check_of_a_where_on_a_comparison_passes_and_proves_exactly():
    x = ta.Tensor(np.random.default_rng(1).standard_normal((2, 3)), requires_grad=True)
    report = ta.gradcheck(lambda t: ta.where(t > 0, t.sin(), t * t), x, symbolic=True)
    assert report.ok, str(report)
    proof = derive(lambda t: ta.where(t > 0.5, t.exp(), -t), {"t": (3,)}).prove_engine()
    assert proof.ok and proof.method == "exact"
    assert "no comparison's sides are equal" in proof.assumptions[0]


def test_a_nested_where_on_the_same_relation_keeps_only_the_branch_taken():
    x = symbols("x", ())
    inner = ta.where(x > 0, x, x.exp())
    outer = ta.where(x > 0, x * 2.0, inner * 3.0).data[()]
    assert outer == sp.Piecewise((2 * x.data[()], x.data[()] > 0),
                                 (3 * sp.exp(x.data[()]), True))


def test_where_refuses_a_symbolic_condition_that_is_not_a_relation():
    x = symbols("x", (2,))
    with pytest.raises(TypeError, match="where: the condition must hold booleans or SymPy "
                                        "relations"):
        ta.where(x.data, x, 0.0)


# ----------------------------------------------------------------------------- ties

def test_maximum_and_minimum_split_a_tie_equally_as_pytorch():
    a, b = [1.0, 2.0, 3.0], [1.0, 5.0, 0.0]
    np.testing.assert_array_equal(grads(ta.maximum, a, b), [[0.5, 0, 1], [0.5, 1, 0]])
    np.testing.assert_array_equal(grads(ta.minimum, a, b), [[0.5, 1, 0], [0.5, 0, 1]])


def test_clamp_gradients_at_ties_follow_pytorch():
    x = [-1.0, 0.0, 0.5, 1.0, 2.0]
    np.testing.assert_array_equal(grads(lambda t: t.clamp(0.0, 1.0), x)[0], [0, 1, 1, 1, 0])
    gx, glo, ghi = grads(lambda t, lo, hi: t.clamp(lo, hi), x, [0.0] * 5, [1.0] * 5)
    np.testing.assert_array_equal(gx, [0, 1, 1, 1, 0])       # lo <= x <= hi
    np.testing.assert_array_equal(glo, [1, 0, 0, 0, 0])      # x < lo < hi
    np.testing.assert_array_equal(ghi, [0, 0, 0, 0, 1])      # x > hi or hi < lo
    # lo > hi: the output is hi everywhere, and hi gets the gradient
    gx, glo, ghi = grads(lambda t, lo, hi: t.clamp(lo, hi), x, [2.0] * 5, [1.0] * 5)
    np.testing.assert_array_equal(ghi, [1] * 5)
    assert not gx.any() and not glo.any()


def test_clamp_takes_either_bound_and_refuses_none():
    x = ta.Tensor([-2.0, 0.5, 3.0])
    np.testing.assert_array_equal(x.clamp(min=0).data, [0, 0.5, 3])
    np.testing.assert_array_equal(x.clamp(max=1).data, [-2, 0.5, 1])
    with pytest.raises(ValueError, match="clamp: at least one of min and max must be given"):
        x.clamp()


def test_elu_gradient_at_zero_is_alpha_as_pytorch():
    np.testing.assert_array_equal(grads(lambda t: t.elu(alpha=1.5), [0.0, 1.0])[0], [1.5, 1])


# ----------------------------------------------------------------------------- numerics

def test_logsumexp_of_logits_1e3_is_finite_and_its_gradient_is_the_softmax():
    a = np.array([[1e3, 1e3, 0.0], [-1e3, 5.0, 5.0]])
    x = ta.Tensor(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.logsumexp(-1)
        y.sum().backward()
    np.testing.assert_allclose(y.data, [1e3 + np.log(2), 5 + np.log(2)], rtol=1e-15)
    # exp(x - y): y = 1e3 + log 2 is rounded to the ulp of 1e3, 1.1e-13
    np.testing.assert_allclose(x.grad, x.softmax(-1).data, rtol=1e-13)


def test_logsumexp_of_a_row_of_minus_inf_is_minus_inf_with_zero_gradient():
    x = ta.Tensor([[-np.inf, -np.inf], [0.0, -np.inf]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.logsumexp(axis=1, keepdims=True)
        y.sum().backward()
    np.testing.assert_array_equal(y.data, [[-np.inf], [0.0]])
    np.testing.assert_array_equal(x.grad, [[0, 0], [1, 0]])


def test_softplus_and_elu_at_extreme_inputs_neither_overflow_nor_lose_the_gradient():
    a = [-1e3, -40.0, 0.0, 40.0, 1e3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = ta.Tensor(a, requires_grad=True)
        sp_ = x.softplus()
        (g,) = ta.grad(sp_.sum(), [x])
        e = x.elu()
        (ge,) = ta.grad(e.sum(), [x], create_graph=True)
        (he,) = ta.grad(ge.sum(), [x])
    np.testing.assert_allclose(sp_.data, [0, np.exp(-40), np.log(2), 40, 1e3], rtol=1e-15)
    np.testing.assert_allclose(g.data, [0, np.exp(-40), 0.5, 1, 1], rtol=1e-15)
    np.testing.assert_allclose(ge.data, [0, np.exp(-40), 1, 1, 1], rtol=1e-15)
    np.testing.assert_allclose(he.data, [0, np.exp(-40), 1, 0, 0], rtol=1e-15)


def test_softplus_above_its_threshold_is_the_identity_as_pytorch():
    x = ta.Tensor([10.5, 9.5], requires_grad=True)
    y = x.softplus(beta=2.0, threshold=20.0)
    assert y.data[0] == 10.5 and y.data[1] == np.logaddexp(0, 19.0) / 2
    np.testing.assert_array_equal(grads(lambda t: t.softplus(beta=2.0), [10.5])[0], [1.0])


@pytest.mark.parametrize("call", [lambda x: x.sin(), lambda x: ta.cos(x), lambda x: x.elu(),
                                  lambda x: x.softplus(), lambda x: x.logsumexp(-1),
                                  lambda x: x.clamp(0, 1), lambda x: ta.maximum(x, 0.5),
                                  lambda x: ta.einsum("ij,kj->ik", x, x)])
def test_the_ops_keep_float32_in_value_and_gradient(call):
    x = ta.Tensor(np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    y = call(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("call,match", [
    (lambda x: x.elu(alpha="a"), r"elu: alpha must be a finite number, got 'a'"),
    (lambda x: x.softplus(beta=0), r"softplus: beta must be a positive number, got 0"),
    (lambda x: x.softplus(threshold=np.nan), r"softplus: threshold must be a finite number"),
    (lambda x: x.clamp(min=np.nan), r"clamp: min is NaN"),
    (lambda x: x.logsumexp(axis=2), r"logsumexp: axis 2 is out of range"),
])
def test_bad_parameters_are_refused_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call(ta.Tensor(np.ones((2, 3))))


# ----------------------------------------------------------------------------- einsum

@pytest.mark.parametrize("spec,shapes", [
    ("bhid,bhjd->bhij", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("bhij,bhjd->bhid", [(2, 3, 4, 6), (2, 3, 6, 5)]),
    ("id,jd->ij", [(4, 5), (6, 5)]), ("ij,jd->id", [(4, 6), (6, 5)]),
    ("ij,jk", [(2, 3), (3, 4)]), ("ij", [(2, 3)]), ("ji", [(2, 3)]), ("ij->", [(2, 3)]),
    ("...id,...jd->...ij", [(2, 3, 4, 5), (6, 5)]), ("...ij->...ji", [(2, 3, 4)]),
    ("i,i", [(3,), (3,)]), ("i,j->ij", [(3,), (2,)]), ("b i d, b j d -> b i j",
                                                      [(2, 3, 4), (2, 5, 4)]),
])
def test_einsum_computes_what_numpy_does_and_its_vjp_is_an_einsum(spec, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    ts = [ta.Tensor(a, requires_grad=True) for a in arrays]
    y = ta.einsum(spec, *ts)
    np.testing.assert_allclose(y.data, np.einsum(spec.replace(" ", ""), *arrays), rtol=1e-12)
    report = ta.gradcheck(lambda *xs: ta.einsum(spec, *xs), *ts)
    assert report.ok, str(report)


def test_einsum_broadcasts_an_axis_of_size_1_and_sums_its_gradient_back():
    a, b = np.ones((1, 3)), np.arange(6.0).reshape(2, 3)
    ga, gb = grads(lambda x, y: ta.einsum("ij,ij->ij", x, y), a, b)
    np.testing.assert_array_equal(ga, b.sum(0, keepdims=True))
    np.testing.assert_array_equal(gb, np.ones((2, 3)))


@pytest.mark.parametrize("spec,shapes,match", [
    ("ij,jk->ik", [(2, 3)], r"spec 'ij,jk->ik' has subscripts for 2 operand\(s\) but 1 were"),
    ("ij,jk->ik", [(2, 3), (4, 5)], r"subscript 'j' of 'ij,jk->ik' has size 3 in operand 0 "
                                    r"but 4 in operand 1"),
    ("ijk,jk->i", [(2, 3), (3, 4)], r"operand 0 has 2 axes \(shape \(2, 3\)\) but its "
                                    r"subscripts 'ijk' in 'ijk,jk->i' name 3"),
    ("ii->i", [(3, 3)], r"operand 0's subscripts 'ii' in 'ii->i' repeat 'i' \(a diagonal or a "
                        r"trace\), which einsum does not support"),
    ("ij->ik", [(2, 3)], r"the output 'ik' of 'ij->ik' has 'k', which no operand has"),
    ("ij->ii", [(2, 3)], r"the output 'ii' of 'ij->ii' repeats 'i'"),
    ("i1,j->ij", [(2, 3), (2,)], r"spec 'i1,j->ij' has character '1' in 'i1'"),
    ("ij->i->j", [(2, 3)], r"spec 'ij->i->j' has more than one '->'"),
    ("...ij", [(2,)], r"operand 0 has 1 axes \(shape \(2,\)\), fewer than its subscripts"),
])
def test_einsum_errors_name_the_spec_operand_and_subscript(spec, shapes, match):
    with pytest.raises(ValueError, match="einsum: " + match):
        ta.einsum(spec, *[ta.Tensor(np.ones(s)) for s in shapes])


def test_einsum_of_attention_equals_the_matmul_form_with_second_derivatives():
    rng = np.random.default_rng(3)
    q, k, v = (ta.Tensor(rng.standard_normal((2, 3, 2)), requires_grad=True) for _ in range(3))

    def by_einsum(q, k, v):
        return ta.einsum("bij,bjd->bid", ta.einsum("bid,bjd->bij", q, k).softmax(-1), v)

    def by_matmul(q, k, v):
        return (q @ k.mT).softmax(-1) @ v

    np.testing.assert_allclose(by_einsum(q, k, v).data, by_matmul(q, k, v).data, rtol=1e-12)
    u = rng.standard_normal((2, 3, 2))
    hv = []
    for fn in (by_einsum, by_matmul):
        (gq,) = ta.grad(fn(q, k, v), [q], grad_outputs=u, create_graph=True)
        hv.append(ta.grad((gq * u).sum(), [k])[0].data)
    np.testing.assert_allclose(hv[0], hv[1], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- controls

class _EluWithoutItsNegativeBranch(ta.Function):
    """elu whose backward passes g everywhere: right for x > 0 only (a deliberate bug)."""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.elu(x, 1.0)

    @staticmethod
    def backward(ctx, g):
        return g


def test_the_proof_of_a_piecewise_function_rejects_a_vjp_wrong_on_one_branch():
    der = derive(lambda x: _EluWithoutItsNegativeBranch.apply(x), {"x": (2,)})
    for method in ("exact", "identity", "evaluation"):
        assert not der.prove_engine(method=method).ok, method
    x = ta.Tensor([-0.5, 0.7], requires_grad=True)
    assert not ta.gradcheck(lambda t: _EluWithoutItsNegativeBranch.apply(t), x).ok
    assert derive(lambda x: x.elu(), {"x": (2,)}).prove_engine().ok


def test_the_proof_of_a_where_rejects_the_branches_swapped_in_the_vjp():
    class Swapped(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return ctx.xp.where(ctx.xp.compare("gt", x, 0), x * x, -x)

        @staticmethod
        def backward(ctx, g):
            x = ctx.parents[0].data
            return ctx.xp.where(ctx.xp.compare("gt", x, 0), -g, 2 * x * g)

    assert not derive(lambda x: Swapped.apply(x), {"x": (3,)}).prove_engine().ok


def test_every_comparison_name_maps_to_numpy_and_sympy():
    assert set(ops_more.COMPARISONS) == {"lt", "le", "gt", "ge", "eq", "ne"}


def test_the_api_page_example_prints_what_the_page_shows():
    page = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    section = page.split("#### More ops", 1)[1]
    code, shown = re.findall(r"```python\n(.*?)```\n\n```text\n(.*?)```", section, re.S)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"np": np, "ta": ta})
    assert out.getvalue() == shown


@pytest.mark.parametrize("fn", [lambda x: ta.maximum(x, 0.5), lambda x: x.clamp(max=0.5),
                                lambda x: (x - 0.5).elu(alpha=2.0)],
                         ids=["maximum", "clamp", "elu"])
def test_an_element_at_a_kink_of_the_new_ops_is_tagged_and_undecided_not_failed(fn):
    x = ta.Tensor([0.1, 0.5 + 3e-7, 0.9], requires_grad=True)   # element 1 within a step
    report = ta.gradcheck(fn, x)
    assert report.status == "UNDECIDED" and report.inputs[0].fd.worst_index == (1,)
    assert any("of a kink" in n for n in report.notes)
    x.data[1] = 0.3
    assert ta.gradcheck(fn, x).ok


def test_a_drawn_graph_names_the_einsum_spec_and_the_logsumexp_axis():
    from tinygrad_attn.pictures.labels import op_title

    x = ta.Tensor(np.ones((2, 3)), requires_grad=True)
    y = ta.einsum("ij,kj", x, x)
    assert op_title(y) == "einsum ij,kj->ik"
    assert op_title(y.logsumexp(-1)) == "logsumexp axis=-1"


def test_a_comparison_of_the_data_in_a_symbolic_run_says_to_compare_the_tensor():
    x = ta.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match=r"compare the Tensors, x > 0 \(not x.data > 0\), and "
                                        r"select with ta.where"):
        ta.gradcheck(lambda t: ta.where(t.data > 0, t, 0.0), x, symbolic=True)


def test_logsumexp_of_nothing_is_minus_inf_and_relu_of_minus_inf_is_0_as_pytorch():
    y = ta.Tensor(np.ones((0, 2)), requires_grad=True).logsumexp(0)
    np.testing.assert_array_equal(y.data, [-np.inf, -np.inf])
    np.testing.assert_array_equal(y.relu().data, [0.0, 0.0])         # not -inf * 0 = NaN


@pytest.mark.parametrize("digits", [None, 30])
def test_exact_gradients_of_piecewise_functions_evaluate_compiled_and_with_mpmath(digits):
    def fn(t):
        return ta.where(t > 0, t.sin(), t.clamp(min=-0.5)).softplus()

    der = derive(fn, {"x": (3,)})
    point = np.array([0.3, -0.2, -0.9])
    got = der.evaluate({"x": point}, cotangents=[np.ones(3)], digits=digits)["x"]
    np.testing.assert_allclose(got, grads(fn, point)[0], rtol=1e-14)


def test_changing_an_einsum_operand_before_the_backward_raises_naming_einsum():
    a, b = ta.Tensor(np.ones((2, 3)), requires_grad=True), ta.Tensor(np.ones((3, 2)))
    y = ta.einsum("ij,jk->ik", a, b).sum()
    b.data[0, 0] = 5.0
    with pytest.raises(RuntimeError, match="input 1 .* of einsum was changed after the forward"):
        y.backward()


def rotary(x: ta.Tensor, w: ta.Tensor) -> ta.Tensor:
    """Rotary position embedding of x (n, 2h) with learned frequencies w (h,): each pair
    of features of position t turned by the angle t w (the issue's case: sin and cos of
    Tensors, no NumPy tables)."""
    n, h = x.shape[0], w.shape[0]
    angle = w * [[float(t)] for t in range(n)]         # (n, h), in w's dtype (or exact)
    even, odd = x[:, :h], x[:, h:]
    return ta.concat([even * angle.cos() - odd * angle.sin(),
                      even * angle.sin() + odd * angle.cos()], axis=1)


def test_rotary_embeddings_with_sin_and_cos_stay_float32_and_check_three_ways():
    rng = np.random.default_rng(5)
    x = ta.Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    w = ta.Tensor(np.array([1.0, 0.1], np.float32), requires_grad=True)
    y = rotary(x, w)
    assert y.dtype == np.float32
    norms = np.linalg.norm(y.data.reshape(3, 2, 2), axis=1)      # a rotation keeps them
    np.testing.assert_allclose(norms, np.linalg.norm(x.data.reshape(3, 2, 2), axis=1),
                               rtol=1e-6)
    x64, w64 = (ta.Tensor(t.data.astype(np.float64), requires_grad=True) for t in (x, w))
    assert ta.gradcheck(rotary, x64, w64, symbolic=True).ok
    assert derive(rotary, {"x": (2, 2), "w": (1,)}).prove_engine().method == "exact"
