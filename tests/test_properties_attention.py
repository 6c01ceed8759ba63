"""Property-based tests of every attention mechanism against the reference of
tests/reference.py (see tests/programs.py for what is checked): random batch axes (also
only on some of the inputs: values with batch axes that the queries and keys lack),
queries (one or several), keys (none included), widths, head counts, masks broadcastable
to the weights with fully masked rows, causal masks, float32 and float64, and scores up to
about 1e4.  Context and weights are both checked, forward and VJP.
"""
from __future__ import annotations

from typing import Any

import hypothesis.extra.numpy as hnp
import mpmath
import numpy as np
import pytest
import reference as R
from hypothesis import given, settings
from hypothesis import strategies as st
from programs import DTYPES, Program, run, scaled

from tinygrad_attn import attention as A

def _mul(a: Any, b: Any) -> np.ndarray:
    return R.binary(lambda x, y: x * y, a, b)


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(np.asarray(a, dtype=object), -1, -2)


def ref_attend(scores: Any, values: Any, mask: Any, single: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Weights softmax(scores) over the allowed keys (broadcast to the mask), context
    weights @ values; a ``single`` query's scores (..., n) give weights (..., n)."""
    scores = np.asarray(scores, dtype=object)
    if single:
        scores = scores[..., None, :]
        mask = mask if mask is None or mask.ndim == 0 else np.expand_dims(mask, -2)
    if mask is not None:
        shape = np.broadcast_shapes(scores.shape, mask.shape)
        scores = np.broadcast_to(scores, shape)
    weights = R.softmax(scores, -1, mask)
    context = R.matmul(weights, values)
    return (context[..., 0, :], weights[..., 0, :]) if single else (context, weights)


def ref_cosine(a: Any, b: Any, eps: float = 1e-8) -> np.ndarray:
    def unit(x: Any) -> np.ndarray:
        sq = R.total(_mul(x, x), (x.ndim - 1,), True)
        R.clamp_kink(sq, mpmath.mpf(eps * eps))
        sq = np.where(sq > eps * eps, sq, mpmath.mpf(eps * eps))
        return R.binary(lambda p, q: p / q, x, R.sqrt(sq))
    return R.matmul(unit(np.asarray(a, dtype=object)), _t(unit(np.asarray(b, dtype=object))))


def ref_sdpa(q: Any, k: Any, v: Any, mask: Any, causal: bool) -> tuple[np.ndarray, ...]:
    m, n = q.shape[-2], k.shape[-2]
    scores = _mul(R.matmul(q, _t(k)), 1 / mpmath.sqrt(q.shape[-1]))
    if causal:
        tri = np.tril(np.ones((m, n), bool))
        mask = tri if mask is None else mask & tri
    return ref_attend(scores, v, mask)


# ----------------------------------------------------------------------------- cases

def _shapes(p: Program, name: str) -> dict[str, Any]:
    """Sizes and batch axes of one case: each input carries the batch axes or not."""
    batch = p.draw(st.sampled_from([(), (2,), (1, 2), (2, 1)]))
    single = name in ("additive", "additive_concat", "dot_product", "general", "location",
                      "content") and p.draw(st.booleans())
    return dict(batch=batch, single=single, m=p.draw(st.integers(1, 3)),
                n=p.draw(st.integers(0, 3)), d=p.draw(st.integers(1, 3)),
                dv=p.draw(st.integers(1, 2)),                 # a single query is (d_q,):
                qb=batch if not single and p.draw(st.booleans()) else (),   # no batch
                kb=batch if p.draw(st.booleans()) else (), vb=batch)


def _mask(p: Program, weights_shape: tuple[int, ...]) -> np.ndarray | None:
    """None, or a mask broadcastable to the weights, often with a fully masked row."""
    if p.draw(st.booleans()):
        return None
    drop = p.draw(st.integers(0, len(weights_shape)))         # leading axes left out
    shape = tuple(p.draw(st.sampled_from([size, 1])) for size in weights_shape[drop:])
    mask = p.draw(hnp.arrays(np.bool_, shape))
    if mask.ndim and p.draw(st.booleans()):
        mask[(0,) * (mask.ndim - 1)] = False                  # a row with nothing allowed
    return mask


def classic(p: Program, name: str) -> None:
    """additive, additive_concat, dot_product, general, location, content."""
    s = _shapes(p, name)
    scale = p.draw(st.sampled_from([1.0, 30.0, 3000.0]))
    p.logits = scale * 9 * s["d"]
    rows = () if s["single"] else (s["m"],)
    q = p.fresh(s["qb"] + rows + (s["d"],))
    k = p.fresh(s["kb"] + (s["n"], s["d"]))
    v = p.fresh(s["vb"] + (s["n"], s["dv"]))
    batch = np.broadcast_shapes(s["qb"], s["kb"], s["vb"])
    mask = _mask(p, batch + rows + (s["n"],))
    h = p.draw(st.integers(1, 2))
    extra = {"additive": [(s["d"], h), (s["d"], h), (h,)],
             "additive_concat": [(2 * s["d"], h), (h,)],
             "general": [(s["d"], s["d"])], "location": [(s["d"], s["n"])]}.get(name, [])
    ps = [p.fresh(shape) for shape in extra]
    if name == "content" and min(np.min(np.linalg.norm(p.inputs[i], axis=-1), initial=1.0)
                                 for i in (q, k)) < 1e-4:
        p.logits = max(p.logits, scale / 1e-8)  # a clamped norm: derivatives scale 1/eps

    def engine(xs: list[Any]) -> tuple[Any, Any]:               # content: beta scales
        qs, ws = (xs[q] if name == "content" else xs[q] * scale), [xs[i] for i in ps]
        if name == "location":
            return A.location(qs, xs[v], *ws, mask=mask)
        if name == "content":
            return A.content(qs, xs[k], xs[v], beta=scale, mask=mask)
        return getattr(A, name)(qs, xs[k], xs[v], *ws, mask=mask)

    def ref(xs: list[Any]) -> tuple[Any, Any]:
        qs, kk, ws = (xs[q] if name == "content" else _mul(xs[q], scale)), xs[k], \
            [xs[i] for i in ps]
        qr = qs[..., None, :] if s["single"] else qs
        if name == "additive":
            hidden = R.tanh(R.binary(lambda a, b: a + b, R.matmul(qr, ws[0])[..., :, None, :],
                                     R.matmul(kk, ws[1])[..., None, :, :]))
            scores = R.matmul(hidden, ws[2])
        elif name == "additive_concat":
            shape = np.broadcast_shapes(qr.shape[:-2], kk.shape[:-2]) + (qr.shape[-2], s["n"])
            pairs = np.concatenate([np.broadcast_to(qr[..., :, None, :], shape + (s["d"],)),
                                    np.broadcast_to(kk[..., None, :, :], shape + (s["d"],))],
                                   -1)
            scores = R.matmul(R.tanh(R.matmul(pairs, ws[0])), ws[1])
        elif name == "dot_product":
            scores = R.matmul(qr, _t(kk))
        elif name == "general":
            scores = R.matmul(R.matmul(qr, ws[0]), _t(kk))
        elif name == "location":
            scores = R.matmul(qr, ws[0])
        else:
            scores = _mul(ref_cosine(qr, kk), scale)
        scores = scores[..., 0, :] if s["single"] else scores
        return ref_attend(scores, xs[v], mask, s["single"])

    p.engine, p.ref = engine, ref
    p.ops.append(name)


def scaled_dot(p: Program, how: str) -> None:
    """scaled_dot_product: fused plain or blocked, or composed; causal or not."""
    s = _shapes(p, "scaled_dot_product")
    scale = p.draw(st.sampled_from([1.0, 30.0, 3000.0]))
    p.logits = scale * 9 * s["d"]
    q = p.fresh(s["qb"] + (s["m"], s["d"]))
    k = p.fresh(s["kb"] + (s["n"], s["d"]))
    v = p.fresh(s["vb"] + (s["n"], s["dv"]))
    batch = np.broadcast_shapes(s["qb"], s["kb"], s["vb"])
    mask, causal = _mask(p, batch + (s["m"], s["n"])), p.draw(st.booleans())
    kw = {"fused": how != "composed", "causal": causal}
    kw.update({"impl": how} if how != "composed" else {})

    def engine(xs: list[Any]) -> tuple[Any, Any]:
        return A.scaled_dot_product(xs[q] * scale, xs[k], xs[v], mask, **kw)

    p.engine = engine
    p.ref = lambda xs: ref_sdpa(_mul(xs[q], scale), xs[k], xs[v], mask, causal)
    p.ops.append(f"scaled_dot_product ({how})")


def projected(p: Program, name: str, fused: bool) -> None:
    """self_attention, cross_attention, multi_head and multi_head_projected (keys and
    values projected by the caller, as a decoder's cache holds them; no causal mask),
    with random head counts."""
    cached = name == "multi_head_projected"
    name = "multi_head" if cached else name
    s = _shapes(p, name)
    heads = p.draw(st.integers(1, 3)) if name == "multi_head" else 1
    d_model, d_k, d_v = p.draw(st.integers(1, 3)), s["d"], s["dv"]
    x = p.fresh(s["qb"] + (s["m"], d_model))
    y = x if name == "self_attention" else p.fresh(s["kb"] + (s["n"], d_model))
    m, n = s["m"], s["m"] if name == "self_attention" else s["n"]
    W = [p.fresh((d_model, heads * d)) for d in (d_k, d_k, d_v)]
    W_o = p.fresh((heads * d_v, p.draw(st.integers(1, 2)))) if name == "multi_head" else None
    batch = np.broadcast_shapes(s["qb"], () if y == x else s["kb"])
    mask = _mask(p, batch + ((heads,) if name == "multi_head" else ()) + (m, n))
    causal = p.draw(st.booleans()) and not cached
    p.logits = 9 * 9 * d_model * d_k

    def engine(xs: list[Any]) -> tuple[Any, Any]:
        Ws = [xs[i] for i in W]
        if cached:
            K, V = xs[y] @ Ws[1], xs[y] @ Ws[2]
            return A.multi_head_projected(xs[x], K, V, Ws[0], xs[W_o], heads, mask=mask)
        if name == "multi_head":
            return A.multi_head(xs[x], xs[y], *Ws, xs[W_o], heads, mask=mask, causal=causal,
                                fused=fused)
        if name == "self_attention":
            return A.self_attention(xs[x], *Ws, mask=mask, causal=causal, fused=fused)
        return A.cross_attention(xs[x], xs[y], *Ws, mask=mask, causal=causal, fused=fused)

    def ref(xs: list[Any]) -> tuple[Any, Any]:
        Q, K, V = (R.matmul(xs[i], xs[j]) for i, j in ((x, W[0]), (y, W[1]), (y, W[2])))
        if name != "multi_head":
            return ref_sdpa(Q, K, V, mask, causal)
        split = [np.stack([t[..., h * d:(h + 1) * d] for h in range(heads)], -3)
                 for t, d in ((Q, d_k), (K, d_k), (V, d_v))]   # (..., H, rows, d)
        context, weights = ref_sdpa(*split, mask, causal)
        joined = np.concatenate([context[..., h, :, :] for h in range(heads)], -1)
        return R.matmul(joined, xs[W_o]), weights

    p.engine, p.ref = engine, ref
    p.ops.append("multi_head_projected" if cached else
                 f"{name} ({'fused' if fused else 'composed'})")


CASES = {
    **{name: (lambda p, name=name: classic(p, name)) for name in (
        "additive", "additive_concat", "dot_product", "general", "location", "content")},
    **{f"scaled_dot_product_{how}": (lambda p, how=how: scaled_dot(p, how))
       for how in ("plain", "blocked", "composed")},
    **{f"{name}_{'fused' if f else 'composed'}":
       (lambda p, name=name, f=f: projected(p, name, f))
       for name in ("self_attention", "cross_attention", "multi_head") for f in (True, False)},
    "multi_head_projected": lambda p: projected(p, "multi_head_projected", True),
}


def test_every_public_mechanism_has_a_property_case():
    covered = {name.rsplit("_", 1)[0] if name.endswith(("_fused", "_composed", "_plain",
                                                         "_blocked")) else name
               for name in CASES}
    public = set(A.__all__) - {"attend", "causal_mask", "padding_mask", "cosine_similarity"}
    assert public <= covered, public - covered


@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=scaled(2.5))
@given(data=st.data())
def test_every_mechanism_agrees_with_the_reference(name, data):
    p = Program(data, data.draw(st.sampled_from(DTYPES)))
    CASES[name](p)
    run(p, second=data.draw(st.integers(0, 3)) == 0)
