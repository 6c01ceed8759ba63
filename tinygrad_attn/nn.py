"""Parameter holders: modules that own Tensors with ``requires_grad=True``.

A :class:`Module` finds its parameters by walking its attributes (Tensors that
require grad, sub-Modules, and lists/tuples/dicts of them), as ``torch.nn.Module``
does, so ``model.parameters()`` and ``model.state_dict()`` need no registration.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from . import attention
from .engine import Tensor, concat, scope, stack


def parameter(array: Any, name: str | None = None) -> Tensor:
    """A leaf Tensor that requires grad: a trainable parameter (drawn as one by ta.draw)."""
    t = Tensor(array, requires_grad=True, name=name)
    t.role = "parameter"
    return t


def glorot(rng: np.random.Generator, fan_in: int, fan_out: int,
           shape: tuple[int, ...] | None = None, dtype: Any = np.float64) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape or (fan_in, fan_out)).astype(dtype)


class Module:
    """Base class of the parameter holders."""

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(dotted name, Tensor) for every parameter, in attribute order, each once."""
        seen: set[int] = set()
        for name, t in _walk(self, prefix):
            if id(t) not in seen:
                seen.add(id(t))
                yield name, t

    def parameters(self) -> list[Tensor]:
        return [t for _, t in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: t.data.copy() for name, t in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        for name, t in params.items():
            value = np.asarray(state[name])
            if value.shape != t.shape:
                raise ValueError(f"load_state_dict: {name} has shape {value.shape}, the "
                                 f"model expects {t.shape}")
            t.data = value.astype(t.dtype, copy=True)

    def save(self, path: str) -> None:
        """Save the parameters to a ``.npz`` file."""
        np.savez(path, **self.state_dict())

    def load(self, path: str) -> None:
        with np.load(path) as f:
            self.load_state_dict({k: f[k] for k in f.files})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _walk(obj: Any, prefix: str) -> Iterator[tuple[str, Tensor]]:
    if isinstance(obj, Tensor):
        if obj.requires_grad and obj.is_leaf:
            yield prefix, obj
    elif isinstance(obj, Module):
        for key, value in vars(obj).items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{prefix}.{i}" if prefix else str(i))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else str(key))


# ============================================================================= training
# Layers, loss, optimisers and initialisers that the trained models of
# :mod:`tinygrad_attn.train` are built from.  Every layer is a composition of the
# engine's primitive ops, so its gradient is the engine's (and is gradient-checked in
# tests/test_nn.py).  Row-vector convention: a layer maps (..., d_in) -> (..., d_out).

def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A NumPy Generator from a Generator, a seed, or None (seed 0: deterministic)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng or 0)


def uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float,
            dtype: Any = np.float64) -> np.ndarray:
    """U(-bound, bound) samples of ``shape`` (PyTorch's RNN initialiser uses
    bound = 1 / sqrt(hidden))."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def normal(rng: np.random.Generator, shape: tuple[int, ...], std: float,
           dtype: Any = np.float64) -> np.ndarray:
    """N(0, std^2) samples of ``shape`` (GPT-2 initialises embeddings with std 0.02)."""
    return (rng.standard_normal(size=shape) * std).astype(dtype)


class Linear(Module):
    r"""Affine map $y = x W + b$ with $W \in \mathbb{R}^{d_{in} \times d_{out}}$;
    $W$ Glorot-uniform, $b = 0$."""

    def __init__(self, d_in: int, d_out: int, bias: bool = True,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float64,
                 name: str = "linear") -> None:
        rng = as_rng(rng)
        self.d_in, self.d_out = d_in, d_out
        self.W = parameter(glorot(rng, d_in, d_out, dtype=dtype), name=f"{name}.W")
        self.b = parameter(np.zeros(d_out, dtype), name=f"{name}.b") if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.d_in:
            raise ValueError(f"Linear: input has last axis {x.shape[-1]} (shape {x.shape}),"
                             f" the layer expects {self.d_in}")
        y = x @ self.W                                   # (..., d_in) x (d_in, d_out)
        return y + self.b if self.b is not None else y


class Embedding(Module):
    r"""Lookup table $y = E[\text{ids}]$, $E \in \mathbb{R}^{V \times d}$.

    Indexing with an integer array is the engine's ``getitem``; its VJP scatters the
    upstream gradient back with ``np.add.at``, so a token used twice in a batch gets
    both contributions: $\bar E_v = \sum_{t:\,\text{ids}_t = v} \bar y_t$.
    """

    def __init__(self, num: int, dim: int, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float64, std: float = 1.0, name: str = "embedding") -> None:
        self.num, self.dim = num, dim
        self.E = parameter(normal(as_rng(rng), (num, dim), std, dtype), name=f"{name}.E")

    def forward(self, ids: Any) -> Tensor:
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding: ids must be an integer array, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num):
            raise ValueError(f"Embedding: ids must lie in [0, {self.num}), got values from "
                             f"{ids.min()} to {ids.max()}")
        return self.E[ids]                               # (*ids.shape, dim)


class LayerNorm(Module):
    r"""$y = \gamma \odot (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta$ over the last
    axis, $\mu, \sigma^2$ the mean and (biased) variance there (Ba et al. 2016)."""

    def __init__(self, dim: int, eps: float = 1e-5, dtype: Any = np.float64,
                 name: str = "layernorm") -> None:
        self.dim, self.eps = dim, float(eps)
        self.gamma = parameter(np.ones(dim, dtype), name=f"{name}.gamma")
        self.beta = parameter(np.zeros(dim, dtype), name=f"{name}.beta")

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm: input has last axis {x.shape[-1]} (shape "
                             f"{x.shape}), the layer normalises {self.dim}")
        xc = x - x.mean(axis=-1, keepdims=True)
        var = (xc * xc).mean(axis=-1, keepdims=True)
        return xc / (var + self.eps).sqrt() * self.gamma + self.beta


class GRUCell(Module):
    r"""Gated recurrent unit (Cho et al. 2014), in PyTorch's formulation:

    $r = \sigma(x W_{xr} + b_{xr} + h W_{hr} + b_{hr})$,
    $z = \sigma(x W_{xz} + b_{xz} + h W_{hz} + b_{hz})$,
    $n = \tanh(x W_{xn} + b_{xn} + r \odot (h W_{hn} + b_{hn}))$,
    $h' = (1 - z) \odot n + z \odot h = n + z \odot (h - n)$.

    The three gates share one matrix per input, $W_x \in \mathbb{R}^{d_{in} \times 3H}$
    and $W_h \in \mathbb{R}^{H \times 3H}$ (columns r | z | n), initialised
    U(-1/sqrt(H), 1/sqrt(H)).  :meth:`project` computes $x W_x + b_x$ for a whole
    sequence at once, so the recurrence (:meth:`step`) does one matmul per time step.
    """

    def __init__(self, d_in: int, hidden: int, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float64, name: str = "gru") -> None:
        rng = as_rng(rng)
        self.d_in, self.hidden = d_in, hidden
        k = 1.0 / np.sqrt(hidden)
        self.W_x = parameter(uniform(rng, (d_in, 3 * hidden), k, dtype), name=f"{name}.W_x")
        self.W_h = parameter(uniform(rng, (hidden, 3 * hidden), k, dtype), name=f"{name}.W_h")
        self.b_x = parameter(uniform(rng, (3 * hidden,), k, dtype), name=f"{name}.b_x")
        self.b_h = parameter(uniform(rng, (3 * hidden,), k, dtype), name=f"{name}.b_h")

    def project(self, x: Tensor) -> Tensor:
        """$x W_x + b_x$: (..., d_in) -> (..., 3H), the input half of all three gates."""
        if x.shape[-1] != self.d_in:
            raise ValueError(f"GRUCell: input has last axis {x.shape[-1]} (shape {x.shape}),"
                             f" the cell expects {self.d_in}")
        return x @ self.W_x + self.b_x

    def step(self, xw: Tensor, h: Tensor) -> Tensor:
        """One step from the projected input ``xw`` (..., 3H) and the state ``h`` (..., H)."""
        H = self.hidden
        if h.shape[-1] != H or xw.shape[-1] != 3 * H:
            raise ValueError(f"GRUCell: state must end in {H} and projected input in "
                             f"{3 * H}; got shapes {h.shape} and {xw.shape}")
        hw = h @ self.W_h + self.b_h                                   # (..., 3H)
        r = (xw[..., :H] + hw[..., :H]).sigmoid()
        z = (xw[..., H:2 * H] + hw[..., H:2 * H]).sigmoid()
        n = (xw[..., 2 * H:] + r * hw[..., 2 * H:]).tanh()
        return n + z * (h - n)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        """$h' = \\mathrm{GRU}(x, h)$ for x (..., d_in), h (..., H)."""
        return self.step(self.project(x), h)


def cross_entropy(logits: Tensor, targets: Any, ignore_index: int | None = None) -> Tensor:
    r"""Mean negative log-likelihood $-\frac1N \sum_t \log \mathrm{softmax}(z_t)_{y_t}$.

    ``logits`` (..., V), ``targets`` integer (...); positions whose target equals
    ``ignore_index`` (padding) are left out of the sum and of $N$.  Built on the
    stable ``log_softmax`` op, so logits of 1e4 give a finite loss; its gradient is
    $(\mathrm{softmax}(z_t) - \mathrm{onehot}(y_t)) / N$ at every kept position.
    """
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be an integer array, got dtype "
                        f"{t.dtype}")
    if logits.ndim < 1 or t.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: targets of shape {t.shape} do not match logits of "
                         f"shape {logits.shape} (expected targets of shape "
                         f"{logits.shape[:-1]})")
    V = logits.shape[-1]
    flat = t.reshape(-1)
    keep = np.flatnonzero(flat != ignore_index) if ignore_index is not None \
        else np.arange(flat.size)
    if keep.size == 0:
        raise ValueError(f"cross_entropy: every target equals ignore_index={ignore_index}; "
                         f"the mean over no positions is undefined")
    picked_t = flat[keep]
    if picked_t.min() < 0 or picked_t.max() >= V:
        raise ValueError(f"cross_entropy: targets must lie in [0, {V}) (the logits' last "
                         f"axis), got values from {picked_t.min()} to {picked_t.max()}")
    logp = logits.log_softmax(axis=-1).reshape(-1, V)                  # (N_all, V)
    return -logp[keep, picked_t].sum() / float(keep.size)


def clip_grad_norm(params: list[Tensor], max_norm: float) -> float:
    r"""Scale every ``.grad`` by $\min(1, c / (\lVert g \rVert + 10^{-6}))$, with
    $\lVert g \rVert$ the global L2 norm over all parameters (Pascanu et al. 2013);
    returns the norm before clipping, as ``torch.nn.utils.clip_grad_norm_``."""
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    grads = [p.grad for p in params if p.grad is not None]
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    if not np.isfinite(total):
        raise FloatingPointError(f"clip_grad_norm: the gradient norm is {total}")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            if p.grad is not None:
                p.grad = p.grad * p.grad.dtype.type(coef)
    return total


class Optimizer:
    """Updates ``params`` in place from their ``.grad`` (parameters without one are
    skipped)."""

    def __init__(self, params: list[Tensor], lr: float) -> None:
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got no parameters")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr}")
        self.params, self.lr = params, float(lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent with (heavy-ball) momentum, as ``torch.optim.SGD``:
    $v \leftarrow \mu v + g + \lambda p$, $p \leftarrow p - \eta v$."""

    def __init__(self, params: list[Tensor], lr: float = 0.1, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v = self.velocity[i]
                g = self.velocity[i] = g.copy() if v is None else self.momentum * v + g
            p.data = (p.data - self.lr * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015): $m \leftarrow \beta_1 m + (1-\beta_1) g$,
    $v \leftarrow \beta_2 v + (1-\beta_2) g^2$,
    $p \leftarrow p - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$ with
    $\hat m = m / (1-\beta_1^t)$, $\hat v = v / (1-\beta_2^t)$."""

    def __init__(self, params: list[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.b1, self.b2 = (float(b) for b in betas)
        if not (0 <= self.b1 < 1 and 0 <= self.b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.eps, self.t = float(eps), 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        self.t += 1
        c1, c2 = 1.0 - self.b1 ** self.t, 1.0 - self.b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            step = (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)
            p.data = (p.data - step).astype(p.dtype, copy=False)


# ============================================================================= attention
# Parameter holders for the mechanisms of :mod:`tinygrad_attn.attention`, and
# the decoder step of Bahdanau et al. (2014), which reuses :class:`GRUCell` above.

class AdditiveAttention(Module):
    r"""Additive (Bahdanau) attention with its parameters:
    $e_{ij} = v^\top \tanh(q_i W_q + k_j W_k)$, W_q (d_q, h), W_k (d_k, h), v (h,).

    ``forward(query, keys, values=None, mask=None) -> (context, weights)``; values
    default to the keys (the encoder states, as in the paper).
    """

    def __init__(self, d_q: int, d_k: int, hidden: int,
                 rng: np.random.Generator | int | None = None, dtype: Any = np.float64,
                 name: str = "attention") -> None:
        rng = as_rng(rng)
        self.W_q = parameter(glorot(rng, d_q, hidden, dtype=dtype), name=f"{name}.W_q")
        self.W_k = parameter(glorot(rng, d_k, hidden, dtype=dtype), name=f"{name}.W_k")
        self.v = parameter(uniform(rng, (hidden,), 1.0 / np.sqrt(hidden), dtype),
                           name=f"{name}.v")

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None,
                mask: Any = None) -> tuple[Tensor, Tensor]:
        values = keys if values is None else values
        return attention.additive(query, keys, values, self.W_q, self.W_k, self.v, mask)


class MultiHeadAttention(Module):
    r"""Multi-head attention (Vaswani et al. 2017) with W_q, W_k, W_v, W_o and no biases:
    $[\mathrm{head}_1; \dots; \mathrm{head}_h] W_o$, PyTorch's head layout.

    ``forward(x_q, x_kv=None, mask=None, causal=False, fused=True) -> (output, weights)``;
    ``x_kv`` defaults to ``x_q`` (self-attention); weights are (..., heads, m, n).
    """

    def __init__(self, d_model: int, num_heads: int, d_kv: int | None = None,
                 d_out: int | None = None, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float64, name: str = "mha") -> None:
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"MultiHeadAttention: num_heads={num_heads} does not divide "
                             f"d_model={d_model}")
        rng = as_rng(rng)
        d_kv = d_model if d_kv is None else d_kv
        d_out = d_model if d_out is None else d_out
        self.num_heads = num_heads
        self.W_q = parameter(glorot(rng, d_model, d_model, dtype=dtype), name=f"{name}.W_q")
        self.W_k = parameter(glorot(rng, d_kv, d_model, dtype=dtype), name=f"{name}.W_k")
        self.W_v = parameter(glorot(rng, d_kv, d_model, dtype=dtype), name=f"{name}.W_v")
        self.W_o = parameter(glorot(rng, d_model, d_out, dtype=dtype), name=f"{name}.W_o")

    def forward(self, x_q: Tensor, x_kv: Tensor | None = None, mask: Any = None,
                causal: bool = False, fused: bool = True) -> tuple[Tensor, Tensor]:
        x_kv = x_q if x_kv is None else x_kv
        return attention.multi_head(x_q, x_kv, self.W_q, self.W_k, self.W_v, self.W_o,
                                    self.num_heads, mask=mask, causal=causal, fused=fused)


class BahdanauDecoderCell(Module):
    r"""One decoder step of Bahdanau et al. (2014), sec. 3.1 and Appendix A.2.2:

    $e_{j} = v^\top \tanh(s_{i-1} W_q + h_j W_k)$, $\alpha = \operatorname{softmax}(e)$,
    $c_i = \sum_j \alpha_j h_j$, $s_i = f(s_{i-1}, [y_{i-1}; c_i])$,

    the context over the encoder states $h_j$ computed from the previous state and fed
    into the recurrent cell $f$: a :class:`GRUCell` (``cell="gru"``, as the paper's gated
    units) or a tanh RNN $s_i = \tanh([y_{i-1}; c_i] W_x + s_{i-1} W_s + b)$
    (``cell="tanh"``).

    ``forward(y_prev, s_prev, enc_states, mask=None) -> (s, context, weights)`` with
    y_prev (..., d_in), s_prev (..., hidden), enc_states (..., n, d_enc), ``mask``
    boolean (..., n) over the encoder positions (True = attend); weights (..., n).
    """

    def __init__(self, d_in: int, d_enc: int, hidden: int, d_attn: int | None = None,
                 cell: str = "gru", rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float64, name: str = "decoder") -> None:
        if cell not in ("gru", "tanh"):
            raise ValueError(f"BahdanauDecoderCell: cell must be 'gru' or 'tanh', got {cell!r}")
        rng = as_rng(rng)
        self.d_in, self.d_enc, self.hidden, self.kind = d_in, d_enc, hidden, cell
        self.attention = AdditiveAttention(hidden, d_enc, d_attn or hidden, rng, dtype,
                                           name=f"{name}.attention")
        if cell == "gru":
            self.cell = GRUCell(d_in + d_enc, hidden, rng, dtype, name=f"{name}.gru")
        else:
            k = 1.0 / np.sqrt(hidden)
            self.W_x = parameter(uniform(rng, (d_in + d_enc, hidden), k, dtype),
                                 name=f"{name}.W_x")
            self.W_s = parameter(uniform(rng, (hidden, hidden), k, dtype), name=f"{name}.W_s")
            self.b = parameter(uniform(rng, (hidden,), k, dtype), name=f"{name}.b")

    def forward(self, y_prev: Tensor, s_prev: Tensor, enc_states: Tensor,
                mask: Any = None) -> tuple[Tensor, Tensor, Tensor]:
        for arg, t, size in (("y_prev", y_prev, self.d_in), ("s_prev", s_prev, self.hidden),
                             ("enc_states", enc_states, self.d_enc)):
            if t.shape[-1] != size:
                raise ValueError(f"BahdanauDecoderCell: {arg} must end in {size}, got shape "
                                 f"{t.shape}")
        if mask is not None:
            mask = np.expand_dims(np.asarray(mask), -2)            # (..., 1, n)
        with scope("attention"):
            context, weights = self.attention(s_prev.unsqueeze(-2), enc_states, enc_states,
                                              mask)                   # (..., 1, d_enc)
            context, weights = context.squeeze(-2), weights.squeeze(-2)
        x = concat([y_prev.expand(context.shape[:-1] + y_prev.shape[-1:]), context],
                   axis=-1)                                       # (..., d_in + d_enc)
        with scope("decoder cell"):
            if self.kind == "gru":
                s = self.cell(x, s_prev)
            else:
                s = (x @ self.W_x + s_prev @ self.W_s + self.b).tanh()
        return s, context, weights

    def decode(self, ys: Tensor, s0: Tensor, enc_states: Tensor,
               mask: Any = None) -> tuple[Tensor, Tensor, Tensor]:
        """Run the cell over inputs ys (..., T, d_in) from the state s0 (teacher forcing).

        Returns the states (..., T, hidden), contexts (..., T, d_enc) and the alignment
        weights (..., T, n): row t is where step t looked (the paper's Figure 3).
        """
        states, contexts, weights, s = [], [], [], s0
        for t in range(ys.shape[-2]):
            s, c, w = self(ys[..., t, :], s, enc_states, mask)
            states.append(s)
            contexts.append(c)
            weights.append(w)
        return stack(states, axis=-2), stack(contexts, axis=-2), stack(weights, axis=-2)
