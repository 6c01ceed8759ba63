"""The two encoder-decoders of the toy translation task, built from the engine's layers.

* :class:`RNNSearch` — Bahdanau, Cho & Bengio (2014), "Neural Machine Translation by
  Jointly Learning to Align and Translate" (their model is called RNNsearch): a
  bidirectional GRU encoder gives annotations $h_j = [\\overrightarrow{h}_j;
  \\overleftarrow{h}_j]$; a GRU decoder computes, at every step $i$, additive
  attention over all annotations from its previous state $s_{i-1}$,

  $e_{ij} = v^\\top \\tanh(s_{i-1} W_q + h_j W_k)$,  $\\alpha_{ij} = \\mathrm{softmax}_j
  e_{ij}$,  $c_i = \\sum_j \\alpha_{ij} h_j$,

  then $s_i = \\mathrm{GRU}([y_{i-1}; c_i], s_{i-1})$ (one
  :class:`~tinygrad_attn.nn.BahdanauDecoderCell` step) and
  $p(y_i) = \\mathrm{softmax}(W_o [s_i; c_i; y_{i-1}] + b_o)$.
* :class:`Transformer` — attention only (Vaswani et al. 2017): self-attention encoder
  layers, a decoder with causal self-attention and cross-attention, learned position
  embeddings, no recurrence (pre-LayerNorm residual blocks, as GPT-2); every attention
  is a :class:`~tinygrad_attn.nn.MultiHeadAttention`.

Both take source ids (B, S) and teacher-forced target ids (B, T) and return logits and
their attention weights; ``greedy`` decodes.  Neither knows about training or a task:
only the ids of <pad> and <s> (:mod:`.data`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..attention import multi_head_projected
from ..engine import Tensor, concat, no_grad, stack, where
from ..nn import GRUCell, LayerNorm, Linear, Module, as_rng, parameter
from .data import BOS, PAD

__all__ = ["Model", "RNNSearch", "Transformer", "KeyValueCache"]


# ----------------------------------------------------------------------------- RNNsearch

class RNNSearch(Module):
    """Bahdanau's encoder-decoder with additive attention (see the module docstring).

    Sizes: ``emb`` character embeddings, ``hidden`` per encoder direction (annotations
    have 2*hidden), ``dec_hidden`` decoder state, ``attn`` the additive-attention width.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, emb: int = 32, hidden: int = 64,
                 dec_hidden: int = 64, attn: int = 64,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        rng = as_rng(rng)
        self.config = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, emb=emb, hidden=hidden,
                           dec_hidden=dec_hidden, attn=attn)
        self.dtype = np.dtype(dtype)
        self.src_emb = nn.Embedding(src_vocab, emb, rng, dtype, std=0.3, name="src_emb")
        self.tgt_emb = nn.Embedding(tgt_vocab, emb, rng, dtype, std=0.3, name="tgt_emb")
        self.enc_fwd = GRUCell(emb, hidden, rng, dtype, name="enc_fwd")
        self.enc_bwd = GRUCell(emb, hidden, rng, dtype, name="enc_bwd")
        self.init = Linear(hidden, dec_hidden, rng=rng, dtype=dtype, name="init")
        self.decoder = nn.BahdanauDecoderCell(emb, 2 * hidden, dec_hidden, d_attn=attn,
                                              cell="gru", rng=rng, dtype=dtype)
        self.out = Linear(dec_hidden + 2 * hidden + emb, tgt_vocab, rng=rng, dtype=dtype,
                          name="out")

    def encode(self, src: np.ndarray) -> tuple[Tensor, Tensor]:
        """Annotations (B, S, 2H) and the decoder's first state s_0 = tanh(W_s h_1^bwd).

        Padding sits at the end of a row: there the forward GRU keeps its last state
        and the backward GRU stays at zero until it reaches the real characters.
        """
        B, S = src.shape
        mask = src != PAD                                             # (B, S)
        x = self.src_emb(src)                                         # (B, S, E)
        xf, xb = self.enc_fwd.project(x), self.enc_bwd.project(x)     # (B, S, 3H)
        H = self.enc_fwd.hidden
        zero = Tensor(np.zeros((B, H), self.dtype))
        fwd: list[Tensor] = []
        h = zero
        for t in range(S):
            h = self._masked(self.enc_fwd.step(xf[:, t], h), h, mask[:, t])
            fwd.append(h)
        bwd: list[Tensor] = [zero] * S
        h = zero
        for t in reversed(range(S)):
            h = self._masked(self.enc_bwd.step(xb[:, t], h), h, mask[:, t])
            bwd[t] = h
        annotations = concat([stack(fwd, axis=1), stack(bwd, axis=1)], axis=-1)
        return annotations, self.init(bwd[0]).tanh()

    @staticmethod
    def _masked(new: Tensor, old: Tensor, keep: np.ndarray) -> Tensor:
        return new if keep.all() else where(keep[:, None], new, old)

    def decode_step(self, y_prev: np.ndarray, s: Tensor, annotations: Tensor,
                    mask: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step: (logits (B, V), new state (B, Hd), weights alpha (B, S))."""
        e = self.tgt_emb(y_prev)                                      # (B, E)
        s, c, alpha = self.decoder(e, s, annotations, mask)           # (B, Hd), (B, 2H), (B, S)
        logits = self.out(concat([s, c, e], axis=-1))                 # (B, V)
        return logits, s, alpha

    def forward(self, src: np.ndarray, tgt_in: np.ndarray) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, T, V) and attention weights (B, T, S)."""
        annotations, s = self.encode(src)
        mask = src != PAD
        logits, alphas = [], []
        for t in range(tgt_in.shape[1]):
            lg, s, a = self.decode_step(tgt_in[:, t], s, annotations, mask)
            logits.append(lg)
            alphas.append(a)
        return stack(logits, axis=1), stack(alphas, axis=1)

    def greedy(self, src: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Greedy decoding: ids (B, max_len) and attention weights (B, max_len, S)."""
        with no_grad():
            annotations, s = self.encode(src)
            mask = src != PAD
            y = np.full(src.shape[0], BOS, dtype=np.int64)
            ids, alphas = [], []
            for _ in range(max_len):
                lg, s, a = self.decode_step(y, s, annotations, mask)
                y = lg.data.argmax(axis=-1)
                ids.append(y)
                alphas.append(a.data)
        return np.stack(ids, axis=1), np.stack(alphas, axis=1)


# ----------------------------------------------------------------------------- Transformer

def _mha(d: int, heads: int, rng: np.random.Generator, dtype: Any,
         name: str) -> nn.MultiHeadAttention:
    return nn.MultiHeadAttention(d, heads, rng=rng, dtype=dtype, name=name)


class _MLP(Module):
    def __init__(self, d: int, ff: int, rng: np.random.Generator, dtype: Any, name: str):
        self.fc1 = Linear(d, ff, rng=rng, dtype=dtype, name=f"{name}.fc1")
        self.fc2 = Linear(ff, d, rng=rng, dtype=dtype, name=f"{name}.fc2")

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.fc1(x).relu())


class Transformer(Module):
    """Attention only: ``layers`` encoder and decoder layers of width ``d``, ``heads``
    heads, feed-forward width ``ff``, learned positions up to ``max_len``.

    Encoder layer: x += SelfAttn(LN(x)); x += MLP(LN(x)).  Decoder layer:
    y += CausalSelfAttn(LN(y)); y += CrossAttn(LN(y), memory); y += MLP(LN(y)).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d: int = 64, heads: int = 4,
                 layers: int = 2, ff: int = 128, max_len: int = 64,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        if d % heads:
            raise ValueError(f"Transformer: d={d} is not divisible by heads={heads}")
        rng = as_rng(rng)
        self.config = dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, d=d, heads=heads,
                           layers=layers, ff=ff, max_len=max_len)
        self.dtype, self.heads, self.max_len = np.dtype(dtype), heads, max_len
        self.src_emb = nn.Embedding(src_vocab, d, rng, dtype, std=0.1, name="src_emb")
        self.tgt_emb = nn.Embedding(tgt_vocab, d, rng, dtype, std=0.1, name="tgt_emb")
        self.src_pos = parameter(nn.normal(rng, (max_len, d), 0.1, dtype), name="src_pos")
        self.tgt_pos = parameter(nn.normal(rng, (max_len, d), 0.1, dtype), name="tgt_pos")
        self.enc = [dict(ln1=LayerNorm(d, dtype=dtype),
                         attn=_mha(d, heads, rng, dtype, f"enc{i}"),
                         ln2=LayerNorm(d, dtype=dtype), mlp=_MLP(d, ff, rng, dtype, f"enc{i}"))
                    for i in range(layers)]
        self.dec = [dict(ln1=LayerNorm(d, dtype=dtype),
                         self_attn=_mha(d, heads, rng, dtype, f"dec{i}.self"),
                         ln2=LayerNorm(d, dtype=dtype),
                         cross=_mha(d, heads, rng, dtype, f"dec{i}.cross"),
                         ln3=LayerNorm(d, dtype=dtype), mlp=_MLP(d, ff, rng, dtype, f"dec{i}"))
                    for i in range(layers)]
        self.enc_ln, self.dec_ln = LayerNorm(d, dtype=dtype), LayerNorm(d, dtype=dtype)
        self.out = Linear(d, tgt_vocab, rng=rng, dtype=dtype, name="out")

    def _check_len(self, n: int, what: str) -> None:
        if n > self.max_len:
            raise ValueError(f"Transformer: {what} length {n} exceeds max_len={self.max_len}")

    def encode(self, src: np.ndarray) -> Tensor:
        """Memory (B, S, d) from source ids (B, S)."""
        B, S = src.shape
        self._check_len(S, "source")
        pad = (src != PAD)[:, None, None, :]                          # (B, 1, 1, S)
        x = self.src_emb(src) + self.src_pos[:S]                      # (B, S, d)
        for layer in self.enc:
            h = layer["ln1"](x)
            x = x + layer["attn"](h, h, mask=pad)[0]
            x = x + layer["mlp"](layer["ln2"](x))
        return self.enc_ln(x)

    def decode(self, tgt_in: np.ndarray, memory: Tensor,
               src: np.ndarray) -> tuple[Tensor, list[Tensor]]:
        """Logits (B, T, V) and each layer's cross-attention weights (B, heads, T, S)."""
        B, T = tgt_in.shape
        self._check_len(T, "target")
        pad = (src != PAD)[:, None, None, :]                          # (B, 1, 1, S)
        y = self.tgt_emb(tgt_in) + self.tgt_pos[:T]                   # (B, T, d)
        cross_weights = []
        for layer in self.dec:
            h = layer["ln1"](y)
            y = y + layer["self_attn"](h, h, causal=True)[0]
            ctx, w = layer["cross"](layer["ln2"](y), memory, mask=pad)
            y = y + ctx
            y = y + layer["mlp"](layer["ln3"](y))
            cross_weights.append(w)
        return self.out(self.dec_ln(y)), cross_weights

    def forward(self, src: np.ndarray, tgt_in: np.ndarray) -> tuple[Tensor, list[Tensor]]:
        return self.decode(tgt_in, self.encode(src), src)

    def greedy(self, src: np.ndarray, max_len: int,
               kv_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Greedy decoding: ids (B, max_len) and cross-attention weights (B, layers,
        heads, max_len, S).  ``kv_cache=True`` keeps each decoder layer's keys and
        values (:class:`KeyValueCache`), so step t projects only its new position and
        attends over t cached ones: O(t) a step.  ``kv_cache=False`` re-reads the whole
        prefix at every step, O(t^2) a step: the reference the cache is tested against."""
        step = self._greedy_cached if kv_cache else self._greedy_rereading
        with no_grad():
            memory = self.encode(src)
            return step(src, memory, max_len)

    def _greedy_rereading(self, src: np.ndarray, memory: Tensor,
                          max_len: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.full((src.shape[0], 1), BOS, dtype=np.int64)
        for _ in range(max_len):
            logits, weights = self.decode(y, memory, src)
            y = np.concatenate([y, logits.data[:, -1].argmax(-1)[:, None]], axis=1)
        return y[:, 1:], np.stack([w.data for w in weights], axis=1)

    def _greedy_cached(self, src: np.ndarray, memory: Tensor,
                       max_len: int) -> tuple[np.ndarray, np.ndarray]:
        self._check_len(max_len, "target")
        cache = KeyValueCache(self, memory, max_len)
        pad = (src != PAD)[:, None, None, :]                          # (B, 1, 1, S)
        y = np.full(src.shape[0], BOS, dtype=np.int64)
        ids, weights = [], []                                     # per step: (B,), [(B, h, 1, S)]
        for t in range(max_len):
            x = self.tgt_emb(y[:, None]) + self.tgt_pos[t:t + 1]      # (B, 1, d)
            step_weights = []
            for i, layer in enumerate(self.dec):
                h = layer["ln1"](x)
                K, V = cache.append(i, t, h @ layer["self_attn"].W_k,
                                    h @ layer["self_attn"].W_v)               # (B, t + 1, d)
                x = x + self._attend(layer["self_attn"], h, K, V)[0]
                ctx, w = self._attend(layer["cross"], layer["ln2"](x), *cache.cross[i], pad)
                x = x + ctx
                x = x + layer["mlp"](layer["ln3"](x))
                step_weights.append(w.data)
            y = self.out(self.dec_ln(x)).data[:, -1].argmax(-1)
            ids.append(y)
            weights.append(np.stack(step_weights, axis=1))            # (B, layers, h, 1, S)
        return np.stack(ids, axis=1), np.concatenate(weights, axis=-2)

    def _attend(self, mha: nn.MultiHeadAttention, x_q: Tensor, K: Tensor, V: Tensor,
                mask: np.ndarray | None = None) -> tuple[Tensor, Tensor]:
        return multi_head_projected(x_q, K, V, mha.W_q, mha.W_o, self.heads, mask=mask)


class KeyValueCache:
    """The keys and values of a :class:`Transformer`'s decoder layers during greedy
    decoding.  Self-attention: one buffer (B, max_len, d) per layer for K and for V, and
    a step appends its position's k, v and reads the t + 1 filled rows (a view, no copy
    of the prefix).  Cross-attention: the memory's K, V, projected once."""

    def __init__(self, model: Transformer, memory: Tensor, max_len: int) -> None:
        B, _, d = memory.shape
        self.keys = [np.empty((B, max_len, d), model.dtype) for _ in model.dec]
        self.values = [np.empty((B, max_len, d), model.dtype) for _ in model.dec]
        self.cross = [(memory @ layer["cross"].W_k, memory @ layer["cross"].W_v)
                      for layer in model.dec]                     # (B, S, d) each, once

    def append(self, layer: int, t: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store position ``t``'s k, v (B, 1, d) in ``layer``'s buffers; return the keys
        and values of positions 0..t (B, t + 1, d)."""
        self.keys[layer][:, t:t + 1] = k.data
        self.values[layer][:, t:t + 1] = v.data
        return Tensor(self.keys[layer][:, :t + 1]), Tensor(self.values[layer][:, :t + 1])


# ----------------------------------------------------------------------------- either

#: Either model: what training, decoding and plotting accept.
Model = RNNSearch | Transformer
