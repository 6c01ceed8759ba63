"""Property-based tests (hypothesis) of every op in the op table and every mechanism,
against the independent high-precision reference of tests/reference.py.

A *program* is one op or a random composition of 2 to 5 ops applied to random inputs:
random shapes (0-d, size-0 and size-1 axes, broadcasting), axes (negative, tuples,
keepdims), indices (slices with negative steps, integers, integer arrays with repeats,
boolean masks), masks with fully masked rows, float32 and float64, logits up to 1e4.
Each program runs twice: on the engine, and on the reference (the same formulas on
mpmath numbers, 50 digits).  Checked:

* the forward, against the reference rounded to float64;
* the engine's VJP along a random direction, against a central finite difference of
  the reference (not the engine's backward: an error in a VJP cannot hide);
* for compositions and single ops, the second derivative (create_graph=True) along two
  random directions, against a mixed finite difference of the reference.

Profiles (tests/conftest.py): ``ci`` by default, ``HYPOTHESIS_PROFILE=thorough`` for the
long run whose counts docs/reliability.md records.
"""
from __future__ import annotations

from typing import Any, Callable

import hypothesis.extra.numpy as hnp
import mpmath
import numpy as np
import pytest
import reference as R
from hypothesis import event, given, settings
from hypothesis import strategies as st
from programs import (DTYPES, Program, broadcast, broadcastable, random_axis,
                      reduced_shape, run, scaled)

import tinygrad_attn as ta
from tinygrad_attn.attention import fused
from tinygrad_attn.engine import ops, ops_more

# ----------------------------------------------------------------------------- steps
# Each step applies one op of the table to the program, with random parameters.

def step_binary(p: Program, op: str) -> None:
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b}[op]
    if p.draw(st.booleans()):
        c = p.draw(st.sampled_from([-1.5, 0.5, 2.0]))
        left = p.draw(st.booleans())
        p.then(op, p.shape, lambda t, xs: fn(t, c) if left else fn(c, t),
               lambda r, xs: R.binary(fn, r, c) if left else R.binary(fn, c, r))
        return
    shape = broadcastable(p)
    j, left = p.fresh(shape), p.draw(st.booleans())
    p.then(op, broadcast(p.shape, shape),
           lambda t, xs: fn(t, xs[j]) if left else fn(xs[j], t),
           lambda r, xs: R.binary(fn, r, xs[j]) if left else R.binary(fn, xs[j], r))


def step_neg(p: Program) -> None:
    p.then("neg", p.shape, lambda t, xs: -t, lambda r, xs: R.binary(lambda a, b: a * b, r, -1))


def step_div(p: Program) -> None:
    shape = broadcastable(p)
    if p.draw(st.booleans()):                                # t / y, y > 0
        j = p.fresh(shape, "positive")
        p.then("div", broadcast(p.shape, shape), lambda t, xs: t / xs[j],
               lambda r, xs: R.binary(np.frompyfunc(R.divide, 2, 1), r, xs[j]))
        return
    p.make_positive()                                        # y / t, t > 0
    j = p.fresh(shape)
    p.then("div", broadcast(p.shape, shape), lambda t, xs: xs[j] / t,
           lambda r, xs: R.binary(np.frompyfunc(R.divide, 2, 1), xs[j], r))


def step_pow(p: Program) -> None:
    kind = p.draw(st.sampled_from(["base", "exponent", "zero_base"]))
    shape = broadcastable(p)
    if kind == "base":                                       # t ** y, t > 0
        p.make_positive()
        j = p.fresh(shape)
        p.then("pow", broadcast(p.shape, shape), lambda t, xs: t ** xs[j],
               lambda r, xs: R.binary(R.power, r, xs[j]))
    elif kind == "exponent":                                 # c ** t, c > 0 or 0 ** t
        c = p.draw(st.sampled_from([0.5, 2.0, 3.0]))
        p.then("pow", p.shape, lambda t, xs: c ** t, lambda r, xs: R.binary(R.power, c, r))
    else:                                                    # a ** t at a = 0, t in {1, 2, 3}
        base = p.draw(hnp.arrays(p.dtype, shape, elements=st.sampled_from([0.0, 0.5, 1.5])))
        p.inputs.append(base)
        j = len(p.inputs) - 1
        k = p.draw(st.sampled_from([1.0, 2.0, 3.0]))
        p.then("pow", broadcast(p.shape, shape), lambda t, xs: xs[j] ** (t * 0.0 + k),
               lambda r, xs: R.binary(R.power, xs[j], R.binary(lambda a, b: a * 0 + b, r, k)))


def step_pow_scalar(p: Program) -> None:
    e = p.draw(st.sampled_from([0, 1, 2, 3, 0.0, -1, 0.5, 2.5]))
    if e not in (0, 1, 2, 3):
        p.make_positive()
    p.then("pow_scalar", p.shape, lambda t, xs: t ** e,
           lambda r, xs: R.binary(R.power, r, e))


def step_matmul(p: Program) -> None:
    right = p.draw(st.booleans())
    j_dims = p.draw(st.sampled_from([(), (2,), (0,), (3,)]))
    batch = p.draw(st.sampled_from([(), (1,)] + ([(2,)] if len(p.shape) <= 2 else [])))
    if right:                                                # t @ W, W (..., k, j) or (k,)
        k = p.shape[-1]
        shape = batch + (k,) + j_dims if j_dims else (k,)
        j = p.fresh(shape)
        out = np.matmul(np.zeros(p.shape), np.zeros(shape)).shape
        p.then("matmul", out, lambda t, xs: t @ xs[j], lambda r, xs: R.matmul(r, xs[j]))
    else:                                                    # W @ t, t (..., k, c) or (k,)
        k = p.shape[-2] if len(p.shape) >= 2 else p.shape[-1]
        shape = batch + j_dims + (k,) if j_dims else (k,)
        j = p.fresh(shape)
        out = np.matmul(np.zeros(shape), np.zeros(p.shape)).shape
        p.then("matmul", out, lambda t, xs: xs[j] @ t, lambda r, xs: R.matmul(xs[j], r))


def step_unary(p: Program, op: str) -> None:
    if op in ("log", "sqrt"):
        p.make_positive()
    refs = {"exp": R.exp, "log": R.log, "tanh": R.tanh, "sigmoid": R.sigmoid, "relu": R.relu,
            "sqrt": R.sqrt, "abs": R.absolute, "sin": R.sin, "cos": R.cos}
    p.then(op, p.shape, lambda t, xs: getattr(t, op)(), lambda r, xs: refs[op](r),
           positive=op in ("exp", "sigmoid", "sqrt"))


def step_reduce(p: Program, op: str) -> None:
    ndim, shape_in = len(p.shape), p.shape
    axes = p.draw(st.one_of(st.none(), st.integers(-max(ndim, 1), max(ndim, 1) - 1),
                            hnp.valid_tuple_axes(ndim)))
    keepdims = p.draw(st.booleans())
    norm = None if axes is None else tuple(a % max(ndim, 1) for a in np.atleast_1d(axes)) \
        if ndim else ()
    reduced = range(ndim) if norm is None else norm
    if op == "max" and any(shape_in[a] == 0 for a in reduced):
        axes = norm = reduced = ()                           # no max of nothing: reduce none
    count = int(np.prod([shape_in[a] for a in reduced]))

    def ref(r: Any, xs: Any) -> Any:
        if op == "max":
            return R.maximum(r, norm, keepdims)
        total = R.total(r, norm, keepdims)
        return total if op == "sum" else \
            R.binary(np.frompyfunc(R.divide, 2, 1), total, count)

    p.then(op, reduced_shape(shape_in, norm, keepdims),
           lambda t, xs: getattr(t, op)(axis=axes, keepdims=keepdims), ref)


def step_softmax(p: Program, op: str) -> None:
    axis, s = random_axis(p), p.draw(st.sampled_from([1.0, 1.0, 30.0, 1e4]))
    p.logits = max(p.logits, s * 3)
    norm = axis % max(len(p.shape), 1)
    zero_d = len(p.shape) == 0

    def ref(r: Any, xs: Any) -> Any:
        r = R.binary(lambda a, b: a * b, r, s)
        r = r.reshape(1) if zero_d else r
        out = R.softmax(r, norm) if op == "softmax" else R.log_softmax(r, norm)
        return out.reshape(()) if zero_d else out

    p.then(op, p.shape, lambda t, xs: getattr(t * s, op)(axis), ref, positive=op == "softmax")


def step_reshape(p: Program) -> None:
    size = int(np.prod(p.shape))
    options = [(size,), p.shape[::-1], (1,) + p.shape, p.shape + (1,)]
    if size == 1:
        options.append(())
    shape = p.draw(st.sampled_from(options))
    p.then("reshape", shape, lambda t, xs: t.reshape(shape), lambda r, xs: r.reshape(shape))


def step_permute(p: Program) -> None:
    kind = p.draw(st.sampled_from(["T", "mT", "perm"] if len(p.shape) >= 2 else ["T", "perm"]))
    perm = p.draw(st.permutations(range(len(p.shape))))
    axes = {"T": tuple(range(len(p.shape)))[::-1], "perm": tuple(perm),
            "mT": tuple(range(len(p.shape) - 2)) + (len(p.shape) - 1, len(p.shape) - 2)}[kind]
    fe = {"T": lambda t, xs: t.T, "mT": lambda t, xs: t.mT,
          "perm": lambda t, xs: t.transpose(*axes)}[kind]
    p.then("transpose", tuple(p.shape[a] for a in axes), fe,
           lambda r, xs: np.transpose(r, axes))


def step_expand(p: Program) -> None:
    lead = p.draw(st.sampled_from([(), (2,), (0,), (3, 1)]))
    target = lead + tuple(p.draw(st.sampled_from([1, 2])) if n == 1 else n for n in p.shape)
    p.then("expand", target, lambda t, xs: t.expand(target),
           lambda r, xs: np.broadcast_to(r, target))


def step_getitem(p: Program) -> None:
    kinds = ["basic"] + (["bool"] if p.shape else []) + \
        (["array"] if p.shape and 0 not in p.shape else [])
    kind = p.draw(st.sampled_from(kinds))
    if kind == "basic":
        index = p.draw(hnp.basic_indices(p.shape, allow_newaxis=True))
    elif kind == "array":
        index = p.draw(hnp.integer_array_indices(
            p.shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)))
    else:
        index = p.draw(hnp.arrays(np.bool_, p.shape[:p.draw(st.integers(1, len(p.shape)))]))
    shape = np.zeros(p.shape)[index].shape
    p.then("getitem", shape, lambda t, xs: t[index], lambda r, xs: r[index])


def step_scatter_add(p: Program) -> None:
    n = p.shape[0]
    if p.draw(st.booleans()):                                # repeated integer indices
        rows = p.draw(st.integers(1, 3))
        index = p.draw(hnp.arrays(np.int64, (n,), elements=st.integers(-rows, rows - 1)))
        shape = (rows,) + p.shape[1:]
    else:                                                    # a slice with a negative step
        index, shape = slice(None, None, -2), (2 * n,) + p.shape[1:]
    p.then("scatter_add", shape,
           lambda t, xs: ops.ScatterAdd.apply(t, index=index, shape=shape),
           lambda r, xs: R.scatter_add(r, index, shape))


def step_concat(p: Program) -> None:
    axis = random_axis(p)
    other = list(p.shape)
    other[axis] = p.draw(st.integers(0, 2))
    j = p.fresh(tuple(other))
    shape = np.concatenate([np.zeros(p.shape), np.zeros(other), np.zeros(p.shape)], axis).shape
    p.then("concat", shape, lambda t, xs: ta.concat([t, xs[j], t], axis=axis),
           lambda r, xs: np.concatenate([r, xs[j], r], axis=axis))


def step_stack(p: Program) -> None:
    axis = random_axis(p, new=True)
    j = p.fresh(p.shape)
    shape = np.stack([np.zeros(p.shape)] * 2, axis).shape
    p.then("stack", shape, lambda t, xs: ta.stack([t, xs[j]], axis=axis),
           lambda r, xs: np.stack([r, xs[j]], axis=axis))


def step_where(p: Program) -> None:
    cond = p.draw(hnp.arrays(np.bool_, broadcastable(p)))
    if p.draw(st.booleans()):
        shape = broadcastable(p, broadcast(p.shape, cond.shape))
        j = p.fresh(shape)
        out = broadcast(broadcast(p.shape, shape), cond.shape)
        p.then("where", out, lambda t, xs: ta.where(cond, t, xs[j]),
               lambda r, xs: np.where(cond, r, xs[j]))
        return
    out = broadcast(p.shape, cond.shape)
    p.then("where", out, lambda t, xs: t.masked_fill(cond, -1.5),
           lambda r, xs: np.where(cond, mpmath.mpf(-1.5), r))


def step_cast(p: Program) -> None:
    dtype = np.float64 if p.dtype == np.float32 else p.draw(st.sampled_from(DTYPES))
    p.then("astype", p.shape, lambda t, xs: t.astype(dtype), lambda r, xs: r)
    if dtype == np.float32:
        p.tolerance_dtype = np.float32


def step_extremum(p: Program, op: str) -> None:
    fn, ref = {"maximum": (ta.maximum, R.elementwise_max),
               "minimum": (ta.minimum, R.elementwise_min)}[op]
    if p.draw(st.booleans()):
        c = p.draw(st.sampled_from([-1.5, 0.5, 2.0]))
        p.then(op, p.shape, lambda t, xs: fn(t, c), lambda r, xs: R.binary(ref, r, c))
        return
    shape = broadcastable(p)
    j = p.fresh(shape)
    p.then(op, broadcast(p.shape, shape), lambda t, xs: fn(t, xs[j]),
           lambda r, xs: R.binary(ref, r, xs[j]))


def step_clamp(p: Program) -> None:
    kind = p.draw(st.sampled_from(["min", "max", "both", "tensors"]))
    if kind == "tensors":
        s_lo = broadcastable(p)
        lo = p.fresh(s_lo)
        s_hi = broadcastable(p, broadcast(p.shape, s_lo))
        hi = p.fresh(s_hi)
        p.then("clamp", broadcast(broadcast(p.shape, s_lo), s_hi),
               lambda t, xs: t.clamp(xs[lo], xs[hi]), lambda r, xs: R.clamp(r, xs[lo], xs[hi]))
        return
    low = p.draw(st.sampled_from([-1.0, 0.0])) if kind in ("min", "both") else None
    high = p.draw(st.sampled_from([0.5, 2.0])) if kind in ("max", "both") else None
    p.then("clamp", p.shape, lambda t, xs: t.clamp(low, high),
           lambda r, xs: R.clamp(r, low, high))


def step_elu_softplus(p: Program, op: str) -> None:
    if op == "elu":
        alpha = p.draw(st.sampled_from([1.0, 0.5]))
        p.then("elu", p.shape, lambda t, xs: t.elu(alpha), lambda r, xs: R.elu(r, alpha))
        return
    beta, threshold = p.draw(st.sampled_from([1.0, 2.0])), p.draw(st.sampled_from([20.0, 1.0]))
    p.then("softplus", p.shape, lambda t, xs: t.softplus(beta, threshold),
           lambda r, xs: R.softplus(r, beta, threshold), positive=True)


def step_logsumexp(p: Program) -> None:
    ndim, shape_in = len(p.shape), p.shape
    axes = p.draw(st.one_of(st.none(), st.integers(-max(ndim, 1), max(ndim, 1) - 1),
                            hnp.valid_tuple_axes(ndim)))
    keepdims, s = p.draw(st.booleans()), p.draw(st.sampled_from([1.0, 30.0, 1e3]))
    p.logits = max(p.logits, s * 3)
    norm = None if axes is None else tuple(a % max(ndim, 1) for a in np.atleast_1d(axes)) \
        if ndim else ()
    p.then("logsumexp", reduced_shape(shape_in, norm, keepdims),
           lambda t, xs: (t * s).logsumexp(axes, keepdims),
           lambda r, xs: R.logsumexp(R.binary(lambda a, b: a * b, r, s), norm, keepdims))


def step_einsum(p: Program) -> None:
    kinds = ["contract", "dot", "outer"] + (["transpose"] if len(p.shape) >= 2 else [])
    kind, k = p.draw(st.sampled_from(kinds)), p.shape[-1]
    spec, shape = {"contract": ("...k,jk->...j", (p.draw(st.integers(0, 3)), k)),
                   "dot": ("...k,k->...", (k,)), "outer": ("...k,j->...kj", (2,)),
                   "transpose": ("...ij->...ji", None)}[kind]
    if shape is None:
        out = p.shape[:-2] + (p.shape[-1], p.shape[-2])
        p.then("einsum", out, lambda t, xs: ta.einsum(spec, t), lambda r, xs: R.einsum(spec, r))
        return
    j = p.fresh(shape)
    out = np.einsum(spec, np.zeros(p.shape), np.zeros(shape)).shape
    p.then("einsum", out, lambda t, xs: ta.einsum(spec, t, xs[j]),
           lambda r, xs: R.einsum(spec, r, xs[j]))


def _attention_inputs(p: Program) -> tuple[int, int, Any, bool, Any]:
    """Keys (n, d_k) and values (n, d_v) for queries t (..., m, d_k); a random mask
    (rows fully masked included), causal flag and scale."""
    m, d = p.shape[-2], p.shape[-1]
    n = p.draw(st.integers(0, 3))
    k, v = p.fresh((n, d)), p.fresh((n, p.draw(st.integers(1, 2))))
    mask = p.draw(st.none() | hnp.arrays(np.bool_, st.sampled_from([(m, n), (1, n), (n,)])))
    return k, v, mask, p.draw(st.booleans()), p.draw(st.sampled_from([None, 0.7]))


def _ref_weights(q: Any, k: Any, mask: Any, causal: bool, scale: Any) -> Any:
    m, n, d = q.shape[-2], k.shape[-2], q.shape[-1]
    s = R.binary(lambda a, b: a * b, R.matmul(q, np.swapaxes(k, -1, -2)),
                 mpmath.mpf(scale) if scale is not None else 1 / mpmath.sqrt(d))
    allowed = np.ones((m, n), bool) if mask is None else np.broadcast_to(mask, s.shape)
    if causal:
        allowed = allowed & np.tril(np.ones((m, n), bool))
    return R.softmax(s, -1, allowed)


def step_sdpa(p: Program, weights: bool) -> None:
    k, v, mask, causal, scale = _attention_inputs(p)
    scale = 0.7 if p.shape[-1] == 0 else scale               # 1/sqrt(0) is no scale
    blocked = p.draw(st.booleans())
    kw = dict(mask=mask, causal=causal, scale=scale)
    rows = p.shape[:-1]
    p.logits = max(p.logits, 30.0)
    if weights:
        p.then("sdpa_weights", rows + (p.inputs[k].shape[0],),
               lambda t, xs: fused.SDPAWeights.apply(t, xs[k], **kw),
               lambda r, xs: _ref_weights(r, xs[k], mask, causal, scale))
        return
    p.then("sdpa", rows + (p.inputs[v].shape[1],),
           lambda t, xs: fused.ScaledDotProductAttention.apply(t, xs[k], xs[v], blocked=blocked,
                                                               **kw),
           lambda r, xs: R.matmul(_ref_weights(r, xs[k], mask, causal, scale), xs[v]))


#: The op table's ops, each with its steps and the domain and least ndim of a start input.
STEPS: dict[type, tuple[Callable[[Program], None], str, int]] = {
    ops.Add: (lambda p: step_binary(p, "add"), "any", 0),
    ops.Sub: (lambda p: step_binary(p, "sub"), "any", 0),
    ops.Mul: (lambda p: step_binary(p, "mul"), "any", 0),
    ops.Neg: (step_neg, "any", 0),
    ops.Div: (step_div, "positive", 0),
    ops.Pow: (step_pow, "positive", 0),
    ops.PowScalar: (step_pow_scalar, "positive", 0),
    ops.MatMul: (step_matmul, "any", 1),
    ops.Exp: (lambda p: step_unary(p, "exp"), "any", 0),
    ops.Log: (lambda p: step_unary(p, "log"), "positive", 0),
    ops.Tanh: (lambda p: step_unary(p, "tanh"), "any", 0),
    ops.Sigmoid: (lambda p: step_unary(p, "sigmoid"), "any", 0),
    ops.Relu: (lambda p: step_unary(p, "relu"), "apart", 0),
    ops.Sqrt: (lambda p: step_unary(p, "sqrt"), "positive", 0),
    ops.Abs: (lambda p: step_unary(p, "abs"), "apart", 0),
    ops.Sum: (lambda p: step_reduce(p, "sum"), "any", 0),
    ops.Mean: (lambda p: step_reduce(p, "mean"), "any", 0),
    ops.Max: (lambda p: step_reduce(p, "max"), "apart", 0),
    ops.Softmax: (lambda p: step_softmax(p, "softmax"), "any", 0),
    ops.LogSoftmax: (lambda p: step_softmax(p, "log_softmax"), "any", 0),
    ops.Reshape: (step_reshape, "any", 0),
    ops.Permute: (step_permute, "any", 0),
    ops.Expand: (step_expand, "any", 0),
    ops.GetItem: (step_getitem, "any", 0),
    ops.ScatterAdd: (step_scatter_add, "any", 1),
    ops.Concat: (step_concat, "any", 1),
    ops.Stack: (step_stack, "any", 0),
    ops.Where: (step_where, "any", 0),
    ops.Cast: (step_cast, "any", 0),
    ops_more.Sin: (lambda p: step_unary(p, "sin"), "any", 0),
    ops_more.Cos: (lambda p: step_unary(p, "cos"), "any", 0),
    ops_more.Maximum: (lambda p: step_extremum(p, "maximum"), "any", 0),
    ops_more.Minimum: (lambda p: step_extremum(p, "minimum"), "any", 0),
    ops_more.Clamp: (step_clamp, "any", 0),
    ops_more.Elu: (lambda p: step_elu_softplus(p, "elu"), "any", 0),
    ops_more.Softplus: (lambda p: step_elu_softplus(p, "softplus"), "any", 0),
    ops_more.LogSumExp: (step_logsumexp, "any", 0),
    ops_more.Einsum: (step_einsum, "any", 1),
    fused.ScaledDotProductAttention: (lambda p: step_sdpa(p, False), "any", 2),
    fused.SDPAWeights: (lambda p: step_sdpa(p, True), "any", 2),
}


def test_every_op_in_the_table_has_a_property_step():
    missing = [op.__name__ for op in ops.OPS if op not in STEPS]
    assert not missing, f"ops the property suite does not exercise: {missing}"


# ----------------------------------------------------------------------------- checking

def build(data: Any, first: type | None, length: int) -> Program:
    """A program of ``length`` ops: ``first`` (or a random op), then random ones."""
    p = Program(data, data.draw(st.sampled_from(DTYPES)))
    op = first or data.draw(st.sampled_from(list(STEPS)))
    step, domain, min_ndim = STEPS[op]
    p.shape = data.draw(hnp.array_shapes(min_dims=min_ndim, max_dims=3, min_side=0,
                                         max_side=3))
    p.fresh(p.shape, domain)
    p.positive = domain == "positive"
    step(p)
    for _ in range(length - 1):
        small = int(np.prod(p.shape)) <= 48
        choices = [op for op, (_, _, n) in STEPS.items() if n <= len(p.shape)
                   and (small or op in (ops.Sum, ops.Mean, ops.GetItem))]
        STEPS[data.draw(st.sampled_from(choices))][0](p)
    event(f"{len(p.ops)} ops")
    return p


# ----------------------------------------------------------------------------- the properties

@pytest.mark.parametrize("op", list(STEPS), ids=lambda op: op.__name__)
@settings(max_examples=scaled(1.5))
@given(data=st.data())
def test_every_op_agrees_with_the_reference(op, data):
    run(build(data, op, 1), second=data.draw(st.booleans()))


@settings(max_examples=scaled(12))
@given(data=st.data())
def test_random_compositions_of_2_to_5_ops_agree_with_the_reference(data):
    run(build(data, None, data.draw(st.integers(2, 5))), second=False)


@settings(max_examples=scaled(5))
@given(data=st.data())
def test_second_derivatives_of_compositions_agree_with_the_reference(data):
    run(build(data, None, data.draw(st.integers(1, 3))), second=True)
