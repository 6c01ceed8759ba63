"""Example inputs for every primitive op in ``tinygrad_attn.engine.ops.OPS``.

Each op maps to a list of :class:`Case`: a function of Tensors that exercises the op,
and the shapes of its inputs.  The numeric tests gradcheck every case; the symbolic
tests prove every case against SymPy.  A test asserts that every op in the table has a
case here, so an op cannot be added without its checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import tinygrad_attn as ta
from tinygrad_attn.attention import fused
from tinygrad_attn.engine import ops, ops_more


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable[..., ta.Tensor]
    shapes: tuple[tuple[int, ...], ...]
    positive: bool = False   # inputs drawn from (0.5, 2): log, sqrt, pow bases
    separated: bool = False  # inputs well apart from 0 and from each other: abs, relu, max

    def inputs(self, rng: np.random.Generator, names: str = "abcdefgh") -> list[ta.Tensor]:
        """Float64 Tensors of the case's shapes, named a, b, c, ..."""
        out = []
        for i, shape in enumerate(self.shapes):
            if self.positive:
                x = rng.uniform(0.5, 2.0, size=shape)
            elif self.separated:
                n = int(np.prod(shape))
                x = (rng.permutation(n) - n / 2 + 0.5).reshape(shape) * 0.37 + 0.05
            else:
                x = rng.standard_normal(shape)
            out.append(ta.Tensor(x, requires_grad=True, name=names[i]))
        return out


COND = np.array([[True, False, True], [False, True, True]])
MASK = np.array([[False, True, False], [True, False, False]])

CASES: dict[type, list[Case]] = {
    ops.Add: [Case("add", lambda a, b: a + b, ((2, 3), (2, 3))),
              Case("add_broadcast", lambda a, b: a + b, ((2, 1, 3), (4, 1))),
              Case("add_scalar", lambda a: 2.5 + a, ((3,),))],
    ops.Sub: [Case("sub_broadcast", lambda a, b: a - b, ((2, 3), (3,))),
              Case("rsub_scalar", lambda a: 1.0 - a, ((2, 2),))],
    ops.Neg: [Case("neg", lambda a: -a, ((2, 3),))],
    ops.Mul: [Case("mul_broadcast", lambda a, b: a * b, ((2, 3), (1, 3))),
              Case("mul_reused", lambda a: a * a * a, ((4,),))],
    ops.Div: [Case("div_broadcast", lambda a, b: a / b, ((2, 3), (3,)), positive=True),
              Case("rdiv_scalar", lambda a: 1.0 / a, ((3,),), positive=True)],
    ops.Pow: [Case("pow_tensor_exponent", lambda a, b: a ** b, ((2, 3), (2, 3)),
                   positive=True),
              Case("rpow_scalar_base", lambda a: 2.0 ** a, ((3,),))],
    ops.PowScalar: [Case("pow_scalar_3", lambda a: a ** 3, ((2, 3),)),
                    Case("pow_scalar_half", lambda a: a ** 0.5, ((3,),), positive=True),
                    Case("pow_scalar_minus1", lambda a: a ** -1, ((3,),), positive=True)],
    ops.MatMul: [Case("matmul_2d", lambda a, b: a @ b, ((2, 3), (3, 4))),
                 Case("matmul_batch_broadcast", lambda a, b: a @ b, ((2, 1, 2, 3), (3, 3, 2))),
                 Case("matmul_vec_mat", lambda a, b: a @ b, ((3,), (2, 3, 2))),
                 Case("matmul_mat_vec", lambda a, b: a @ b, ((2, 2, 3), (3,))),
                 Case("matmul_vec_vec", lambda a, b: a @ b, ((3,), (3,)))],
    ops.Exp: [Case("exp", lambda a: a.exp(), ((2, 3),))],
    ops.Log: [Case("log", lambda a: a.log(), ((2, 3),), positive=True)],
    ops.Tanh: [Case("tanh", lambda a: a.tanh(), ((2, 3),))],
    ops.Sigmoid: [Case("sigmoid", lambda a: a.sigmoid(), ((2, 3),))],
    ops.Relu: [Case("relu", lambda a: a.relu(), ((2, 3),), separated=True)],
    ops.Sqrt: [Case("sqrt", lambda a: a.sqrt(), ((2, 3),), positive=True)],
    ops.Abs: [Case("abs", lambda a: a.abs(), ((2, 3),), separated=True)],
    ops.Sum: [Case("sum_all", lambda a: a.sum(), ((2, 3),)),
              Case("sum_axis", lambda a: a.sum(axis=1), ((2, 3, 2),)),
              Case("sum_axes_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True),
                   ((2, 3, 2),))],
    ops.Mean: [Case("mean_all", lambda a: a.mean(), ((2, 3),)),
               Case("mean_axis_keepdims", lambda a: a.mean(axis=-1, keepdims=True),
                    ((2, 3),))],
    ops.Max: [Case("max_axis", lambda a: a.max(axis=1), ((2, 3),), separated=True),
              Case("max_all", lambda a: a.max(), ((2, 3),), separated=True)],
    ops.Softmax: [Case("softmax_last", lambda a: a.softmax(-1), ((2, 3),)),
                  Case("softmax_axis0", lambda a: a.softmax(0), ((3, 2),))],
    ops.LogSoftmax: [Case("log_softmax", lambda a: a.log_softmax(-1), ((2, 3),))],
    ops.Reshape: [Case("reshape", lambda a: a.reshape(3, 2) * a.reshape(3, 2), ((2, 3),))],
    ops.Permute: [Case("transpose_T", lambda a: a.T, ((2, 3, 2),)),
                  Case("permute", lambda a: a.transpose(1, 2, 0), ((2, 3, 2),)),
                  Case("mT", lambda a: a.mT, ((2, 3, 2),))],
    ops.Expand: [Case("expand", lambda a: a.expand(2, 3, 2), ((3, 1),))],
    ops.GetItem: [Case("slice", lambda a: a[1:, ::2], ((3, 4),)),
                  Case("repeated_indices", lambda a: a[[0, 2, 0, 0]], ((3, 2),)),
                  Case("boolean_index", lambda a: a[COND], ((2, 3),)),
                  Case("int_and_newaxis", lambda a: a[1, None, :], ((3, 2),))],
    ops.ScatterAdd: [Case("scatter_add",
                          lambda a: ops.ScatterAdd.apply(a, index=[0, 2, 0], shape=(3, 2)),
                          ((3, 2),))],
    ops.Concat: [Case("concat_axis1", lambda a, b: ta.concat([a, b, a], axis=1),
                      ((2, 1), (2, 3)))],
    ops.Stack: [Case("stack_axis1", lambda a, b: ta.stack([a, b], axis=1), ((2, 3), (2, 3)))],
    ops.Where: [Case("where", lambda a, b: ta.where(COND, a, b), ((2, 3), (2, 3))),
                Case("where_broadcast", lambda a, b: ta.where(COND, a, b), ((3,), (2, 1))),
                Case("masked_fill", lambda a: a.masked_fill(MASK, -1.5), ((2, 3),)),
                Case("where_comparison", lambda a, b: ta.where(a > b + 0.1, a * b, a - b),
                     ((2, 3), (3,)), separated=True),
                Case("where_relu", lambda a: ta.where(a > 0, a, 0.0), ((2, 3),),
                     separated=True)],
    # float64 to float64: float32 would not pass a float64 gradcheck (test_semantics casts)
    ops.Cast: [Case("astype", lambda a: a.astype(np.float64) * a, ((2, 3),))],
}


# the ops of engine/ops_more.py; separated inputs keep maxima, clamps and elu away from
# their kinks (the constants shift one lattice of separated values off the other)
CASES.update({
    ops_more.Sin: [Case("sin", lambda a: a.sin(), ((2, 3),))],
    ops_more.Cos: [Case("cos", lambda a: ta.cos(a), ((2, 3),))],
    ops_more.Maximum: [
        Case("maximum", lambda a, b: ta.maximum(a, b + 0.1), ((2, 3), (2, 3)), separated=True),
        Case("maximum_scalar", lambda a: a.maximum(0.3), ((2, 3),), separated=True)],
    ops_more.Minimum: [
        Case("minimum_broadcast", lambda a, b: ta.minimum(a, b - 0.1), ((2, 3), (3,)),
             separated=True)],
    ops_more.Clamp: [
        Case("clamp", lambda a: a.clamp(-0.2, 0.5), ((2, 3),), separated=True),
        Case("clamp_min", lambda a: a.clamp(min=0), ((2, 3),), separated=True),
        Case("clamp_tensor_bounds", lambda a, b, c: ta.clamp(a, b - 0.1, c + 0.6),
             ((2, 3), (3,), (3,)), separated=True)],
    ops_more.Elu: [Case("elu", lambda a: a.elu(), ((2, 3),), separated=True),
                   Case("elu_alpha", lambda a: ta.elu(a, alpha=1.5), ((2, 3),),
                        separated=True)],
    ops_more.Softplus: [
        Case("softplus", lambda a: a.softplus(), ((2, 3),)),
        Case("softplus_beta_threshold", lambda a: ta.softplus(a, beta=2.0, threshold=1.0),
             ((2, 3),), separated=True)],
    ops_more.LogSumExp: [
        Case("logsumexp_last", lambda a: a.logsumexp(-1), ((2, 3),)),
        Case("logsumexp_axes_keepdims", lambda a: a.logsumexp((0, 2), keepdims=True),
             ((2, 3, 2),)),
        Case("logsumexp_all", lambda a: ta.logsumexp(a), ((2, 3),))],
    ops_more.Einsum: [
        Case("einsum_scores", lambda a, b: ta.einsum("bhid,bhjd->bhij", a, b),
             ((1, 2, 2, 2), (1, 2, 3, 2))),
        Case("einsum_context", lambda a, b: ta.einsum("bhij,bhjd->bhid", a, b),
             ((1, 2, 2, 3), (1, 2, 3, 2))),
        Case("einsum_implicit", lambda a, b: ta.einsum("ij,jk", a, b), ((2, 3), (3, 2))),
        Case("einsum_ellipsis_broadcast", lambda a, b: ta.einsum("...id,...jd->...ij", a, b),
             ((2, 2, 3), (1, 2, 3))),
        Case("einsum_sum_and_outer", lambda a, b: ta.einsum("ij,k->ik", a, b), ((2, 3), (2,))),
        Case("einsum_three_operands", lambda a, b, c: ta.einsum("ij,jk,k->i", a, b, c),
             ((2, 3), (3, 2), (2,)))],
})


# fused scaled dot-product attention: unmasked with broadcast batch axes, masked
# with a fully masked query row, causal; and the op that exposes its weights.
SDPA_MASK = np.array([[True, False, True, True], [False, False, False, False],
                      [True, True, False, True]])
CASES[fused.ScaledDotProductAttention] = [
    Case("sdpa", lambda a, b, c: fused.ScaledDotProductAttention.apply(a, b, c),
         ((2, 3, 2), (4, 2), (4, 3))),
    Case("sdpa_masked_empty_row",
         lambda a, b, c: fused.ScaledDotProductAttention.apply(a, b, c, mask=SDPA_MASK),
         ((3, 2), (4, 2), (4, 2))),
    Case("sdpa_causal_scale",
         lambda a, b, c: fused.ScaledDotProductAttention.apply(a, b, c, causal=True, scale=0.7),
         ((3, 2), (3, 2), (3, 1))),
]
CASES[fused.SDPAWeights] = [
    Case("sdpa_weights_masked",
         lambda a, b: fused.SDPAWeights.apply(a, b, mask=SDPA_MASK), ((3, 2), (4, 2))),
    Case("sdpa_weights_causal_batch",
         lambda a, b: fused.SDPAWeights.apply(a, b, causal=True), ((2, 3, 2), (3, 2))),
]


def all_cases() -> list[tuple[type, Case]]:
    return [(op, case) for op, cases in CASES.items() for case in cases]
