"""The engine: every op's VJP against finite differences, second derivatives, the backward
walk, user Functions, and the errors bad input gets."""
from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES, all_cases

import tinygrad_attn as ta
from tinygrad_attn.engine import ops

CASE_IDS = [case.name for _, case in all_cases()]


def test_every_op_in_the_table_has_cases():
    missing = [op.__name__ for op in ops.OPS if not CASES.get(op)]
    assert not missing, f"ops without example cases (and so without checks): {missing}"


@pytest.mark.parametrize("op,case", all_cases(), ids=CASE_IDS)
def test_op_vjp_equals_central_finite_differences(op, case):
    inputs = case.inputs(np.random.default_rng(1))
    out = case.fn(*inputs)
    assert out._ctx is not None
    report = ta.gradcheck(case.fn, *inputs)
    assert report.ok, str(report)


@pytest.mark.parametrize("op,case", all_cases(), ids=CASE_IDS)
def test_op_second_derivative_equals_finite_differences_of_its_vjp(op, case):
    """create_graph=True: the VJP is itself differentiable (Hessian-vector products)."""
    inputs = case.inputs(np.random.default_rng(2))
    g = np.random.default_rng(3).standard_normal(case.fn(*inputs).shape)

    def vjp(*xs):
        return ta.grad(case.fn(*xs), list(xs), grad_outputs=g, create_graph=True,
                       allow_unused=True)

    grads = vjp(*inputs)
    if not any(grad is not None and grad.requires_grad for grad in grads):
        # linear or piecewise linear: the VJP is locally constant, so a small move of
        # the inputs (not across a kink: the cases keep inputs apart) leaves it unchanged
        moved = [ta.Tensor(x.data + 1e-3 * np.random.default_rng(4).standard_normal(x.shape),
                           requires_grad=True) for x in inputs]
        others = vjp(*moved)
        for a, b in zip(grads, others):
            np.testing.assert_array_equal(getattr(a, "data", a), getattr(b, "data", b))
        return
    used = [grad for grad in grads if grad is not None and grad.requires_grad]

    def fn(*xs):
        return tuple(grad for grad in vjp(*xs) if grad is not None and grad.requires_grad)

    assert len(used) == len(fn(*inputs))
    report = ta.gradcheck(fn, *inputs, atol=1e-7, rtol=1e-5)
    assert report.ok, str(report)


def test_hessian_vector_product_of_tanh_layer_matches_analytic_hessian():
    # f(x) = sum tanh(W x): H = W^T diag(-2 tanh(Wx) (1 - tanh^2(Wx))) W
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 3))
    x = ta.Tensor(rng.standard_normal(3), requires_grad=True)
    u = rng.standard_normal(3)
    (g,) = ta.grad((ta.Tensor(W) @ x).tanh().sum(), [x], create_graph=True)
    (hv,) = ta.grad((g * ta.Tensor(u)).sum(), [x])
    t = np.tanh(W @ x.data)
    H = W.T @ np.diag(-2 * t * (1 - t ** 2)) @ W
    np.testing.assert_allclose(hv.data, H @ u, rtol=1e-12, atol=1e-14)


def test_reused_node_accumulates_both_contributions():
    # d/dx (x*x + x) = 2x + 1 ; y is used twice below: d/dx (y + y) with y = x^2
    x = ta.Tensor([1.5, -2.0], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 1)
    x.zero_grad()
    y = x * x
    (y + y * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, 8 * x.data)


def test_backward_accumulates_into_grad_across_calls_and_grad_does_not_touch_it():
    x = ta.Tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    (gx,) = ta.grad((x * x).sum(), [x])
    np.testing.assert_array_equal(gx.data, 2 * x.data)
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_chain_of_100000_ops_backpropagates_without_recursion():
    x = ta.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.00001 ** 100_000], rtol=1e-9)


def test_getitem_with_repeated_indices_scatters_and_accumulates():
    x = ta.Tensor(np.arange(3.0), requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_softmax_of_logits_1e4_is_finite_and_exact():
    x = ta.Tensor(np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4]]), requires_grad=True)
    p = x.softmax(-1)
    np.testing.assert_array_equal(p.data[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p.data[1], [1 / 3] * 3, rtol=1e-15)
    ls = x.log_softmax(-1)
    assert np.all(np.isfinite(ls.data))
    np.testing.assert_allclose(ls.data[0], [0.0, -2e4, -1e4])
    (p * ta.Tensor(np.arange(6.0).reshape(2, 3))).sum().backward()
    assert np.all(np.isfinite(x.grad))


def test_softmax_of_a_row_of_minus_inf_is_zero_with_zero_gradient():
    x = ta.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    mask = np.array([[True, True], [False, True]])
    p = x.masked_fill(mask, -np.inf).softmax(-1)
    np.testing.assert_array_equal(p.data, [[0.0, 0.0], [1.0, 0.0]])
    (p * ta.Tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((2, 2)))


def test_transpose_T_reverses_all_axes_and_mT_swaps_the_last_two():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = ta.Tensor(a)
    assert x.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(x.T.data, a.T)
    np.testing.assert_array_equal(x.mT.data, np.swapaxes(a, -1, -2))
    np.testing.assert_array_equal(x.transpose(1, 0, 2).data, a.transpose(1, 0, 2))


def test_float32_stays_float32_with_python_and_numpy_scalars():
    x = ta.Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    y = (x * np.float64(0.125) + 1.0) / np.sqrt(64) - 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_no_grad_records_no_graph_and_detach_cuts_it():
    x = ta.Tensor([1.0], requires_grad=True)
    with ta.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y._ctx is None
    z = (x * 2.0).detach()
    assert not z.requires_grad and z.is_leaf


# ----------------------------------------------------------------------------- user ops

class Cube(ta.Function):
    """y = x^3, dy/dx = 3 x^2, written torch-style with arrays."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x ** 2


class CubeWrongAt12(Cube):
    """A deliberately wrong VJP: off by 0.01 at element (1, 2) only."""

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        g = grad_output * 3 * x ** 2
        g[1, 2] += 0.01
        return g


def test_user_function_passes_gradcheck():
    a = ta.Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert ta.gradcheck(lambda a: Cube.apply(a).tanh(), a).ok


def test_gradcheck_reports_a_wrong_vjp_naming_the_input_and_element():
    rng = np.random.default_rng(0)
    a = ta.Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="a")
    b = ta.Tensor(rng.standard_normal((2, 3)), requires_grad=True, name="b")
    report = ta.gradcheck(lambda a, b: a * CubeWrongAt12.apply(b),
                          a, b)
    assert not report.ok
    rows = {r.name: r for r in report.inputs}
    assert rows["a"].ok and not rows["b"].ok
    assert rows["b"].worst_index == (1, 2)
    assert "FAIL" in str(report) and "[1, 2]" in str(report)
    with pytest.raises(ta.GradcheckError, match=r"b .*FAIL"):
        ta.gradcheck(lambda a, b: a * CubeWrongAt12.apply(b), a, b, raise_exception=True)


def test_second_derivative_through_array_backward_raises_clearly():
    x = ta.Tensor([1.0, 2.0], requires_grad=True)
    (g,) = ta.grad(Cube.apply(x).sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match="Cube.backward is written with arrays"):
        ta.grad(g.sum(), [x])


class Scale(ta.Function):
    """y = factor * x; ``note`` is a value for one call, handed back on ctx."""

    transient_kwargs = ("note",)

    @staticmethod
    def forward(ctx, x, factor=2.0, note=None):
        ctx.note = note
        return x * factor

    @staticmethod
    def backward(ctx, g):
        return g * ctx.attrs["factor"]


@pytest.mark.parametrize("requires_grad", [True, False])
def test_apply_with_ctx_hands_back_the_ctx_and_attrs_keep_only_parameters(requires_grad):
    """apply_with_ctx returns the ctx its forward filled in, whether or not a node was
    recorded; a transient keyword reaches forward but not ctx.attrs, so the attrs are the
    op's parameters: applying them again computes the same node."""
    x = ta.Tensor([1.0, 2.0], requires_grad=requires_grad)
    y, ctx = Scale.apply_with_ctx(x, factor=3.0, note="seen")
    assert ctx.note == "seen" and ctx.attrs == {"factor": 3.0}
    assert (y._ctx is ctx) is requires_grad
    np.testing.assert_array_equal(type(ctx).apply(x, **ctx.attrs).data, y.data)
    np.testing.assert_array_equal(Scale.apply(x, factor=3.0).data, y.data)


def test_gradcheck_warns_that_float32_finite_differences_are_unreliable():
    x = ta.Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="float32"):
        ta.gradcheck(lambda x: x * 2.0, x, atol=1e-2, rtol=1e-2)


# ----------------------------------------------------------------------------- bad input

def test_matmul_shape_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        ta.Tensor(np.ones((2, 3))) @ ta.Tensor(np.ones((4, 5)))


def test_broadcast_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        ta.Tensor(np.ones((2, 3))) + ta.Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"mul: shapes"):
        ta.Tensor(np.ones((2, 3))) * np.ones((3, 2))


def test_backward_on_a_non_scalar_without_gradient_says_so():
    x = ta.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3,\), not a scalar"):
        (x * 2.0).backward()


def test_integer_and_object_arrays_are_refused_with_a_clear_message():
    with pytest.raises(TypeError, match="int64 is not a float array"):
        ta.Tensor(np.arange(3))
    with pytest.raises(TypeError, match="SymPy expressions"):
        ta.Tensor(np.array([1.0, "a"], dtype=object))
    assert ta.Tensor(np.arange(3), dtype=np.float64).dtype == np.float64
    assert ta.Tensor([1, 2]).dtype == np.float64


def test_reshape_and_index_errors_name_the_shapes():
    x = ta.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, 3\) into shape \(4,\)"):
        x.reshape(4)
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        x[5]
