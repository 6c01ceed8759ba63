"""Attention learns: two encoder-decoders trained by the engine on a toy translation.

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

:func:`train` trains either on a task of :mod:`tinygrad_attn.data` with Adam, a
progress line showing loss and accuracy, and reports exact-match accuracy of greedy
decoding on the test split; it saves the parameters (``.npz``) and the alignment heat
maps (matplotlib) in ``out_dir``.  :func:`main_train` is the command line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import nn
from .data import BOS, EOS, PAD, Split, Task, make_task
from ..nn import GRUCell, LayerNorm, Linear, Module, as_rng, parameter
from ..engine.blas import blas_threads
from ..engine import Tensor, concat, no_grad, stack, where

MODELS = ("rnn", "transformer")


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

    def greedy(self, src: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Greedy decoding (the decoder re-reads its prefix each step, no cache): ids
        (B, max_len) and cross-attention weights (B, layers, heads, max_len, S)."""
        with no_grad():
            memory = self.encode(src)
            y = np.full((src.shape[0], 1), BOS, dtype=np.int64)
            for _ in range(max_len):
                logits, weights = self.decode(y, memory, src)
                y = np.concatenate([y, logits.data[:, -1].argmax(-1)[:, None]], axis=1)
        return y[:, 1:], np.stack([w.data for w in weights], axis=1)


# ----------------------------------------------------------------------------- building

def build_model(kind: str, task: Task, seed: int = 0, dtype: Any = np.float32,
                **sizes: int) -> RNNSearch | Transformer:
    """A fresh model ``kind`` ("rnn" or "transformer") sized for ``task``'s vocabularies."""
    if kind == "rnn":
        return RNNSearch(len(task.src_vocab), len(task.tgt_vocab), rng=seed, dtype=dtype,
                         **sizes)
    if kind == "transformer":
        return Transformer(len(task.src_vocab), len(task.tgt_vocab), rng=seed, dtype=dtype,
                           **sizes)
    raise ValueError(f"build_model: unknown model {kind!r}; choose one of {MODELS}")


def save_model(model: RNNSearch | Transformer, path: str) -> None:
    """Parameters to ``path`` (``.npz``) and the sizes to ``path`` + ``.json``."""
    model.save(path)
    kind = "rnn" if isinstance(model, RNNSearch) else "transformer"
    with open(_config_path(path), "w") as f:
        json.dump(dict(kind=kind, dtype=str(model.dtype), **model.config), f, indent=1)


def load_model(path: str) -> RNNSearch | Transformer:
    """The model :func:`save_model` wrote to ``path``."""
    with open(_config_path(path)) as f:
        cfg = json.load(f)
    kind, dtype = cfg.pop("kind"), cfg.pop("dtype")
    cls = RNNSearch if kind == "rnn" else Transformer
    model = cls(**cfg, dtype=np.dtype(dtype))
    model.load(path)
    return model


def _config_path(path: str) -> str:
    return (path[:-4] if path.endswith(".npz") else path) + ".json"


# ----------------------------------------------------------------------------- metrics

def greedy_decode(model: RNNSearch | Transformer, task: Task, split: Split,
                  batch_size: int = 500) -> list[str]:
    """Greedy translations of every source in ``split`` (strings)."""
    out: list[str] = []
    for start in range(0, len(split), batch_size):
        b = split.batch(np.arange(start, min(start + batch_size, len(split))))
        ids, _ = model.greedy(b.src, task.max_target_len)
        out += [task.tgt_vocab.decode(row) for row in ids]
    return out


def exact_match(model: RNNSearch | Transformer, task: Task, split: Split,
                batch_size: int = 500) -> float:
    """Fraction of ``split`` whose greedy translation equals the target exactly."""
    preds = greedy_decode(model, task, split, batch_size)
    return float(np.mean([p == t for p, t in zip(preds, split.targets)]))


def token_accuracy(logits: Tensor, targets: np.ndarray) -> float:
    """Teacher-forced accuracy of the arg-max over non-padding positions."""
    keep = targets != PAD
    return float(((logits.data.argmax(-1) == targets) & keep).sum() / keep.sum())


def ms_per_decoding_step(model: RNNSearch | Transformer, task: Task, batch: int = 1,
                         repeats: int = 5) -> float:
    """Wall time of greedy decoding divided by the number of output steps (ms), for a
    batch of ``batch`` test sources; the best of ``repeats`` runs."""
    b = task.test.batch(np.arange(batch))
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.greedy(b.src, task.max_target_len)
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best / task.max_target_len


# ----------------------------------------------------------------------------- training

DEFAULTS: dict[str, dict[str, Any]] = {
    "rnn": dict(steps=800, lr=3e-3, batch_size=64),
    "transformer": dict(steps=1500, lr=2e-3, batch_size=64),
}


@dataclass
class TrainResult:
    """What :func:`train` did and measured."""

    task: str
    model: str
    steps: int
    seed: int
    dtype: str
    num_parameters: int
    train_seconds: float
    first_loss: float
    final_loss: float
    test_accuracy: float
    val_accuracy: float
    ms_per_decode_step: float
    losses: list[float] = field(default_factory=list)
    params_path: str | None = None
    heatmaps: list[str] = field(default_factory=list)
    net: Any = field(default=None, repr=False)   # the trained model itself

    def summary(self) -> str:
        return (f"{self.model} on {self.task}: {self.num_parameters:,} parameters, "
                f"{self.steps} steps in {self.train_seconds:.1f} s, loss "
                f"{self.first_loss:.3f} -> {self.final_loss:.4f}, exact match test "
                f"{100 * self.test_accuracy:.1f}% (val {100 * self.val_accuracy:.1f}%), "
                f"{self.ms_per_decode_step:.2f} ms per decoding step (batch 1)")


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to lr/10."""
    if step < warmup:
        return lr * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * p)))


class Progress:
    """A one-line progress bar redrawn with a carriage return (no dependency)."""

    def __init__(self, total: int, stream: Any = None, width: int = 24) -> None:
        self.total, self.width = total, width
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, step: int, text: str, final: bool = False) -> None:
        done = int(self.width * step / self.total)
        bar = "=" * done + (">" if done < self.width else "") + " " * (self.width - done - 1)
        line = (f"step {step:>{len(str(self.total))}}/{self.total} [{bar[:self.width]}] "
                f"{text} {time.perf_counter() - self.t0:6.1f}s")
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()


def train(task: str | Task = "date", model: str = "rnn", steps: int | None = None,
          seed: int = 0, out_dir: str | None = None, batch_size: int | None = None,
          lr: float | None = None, clip: float = 1.0, dtype: Any = np.float32,
          warmup: int = 100, progress: bool = True, log_every: int = 25,
          eval_every: int = 0, sizes: dict[str, int] | None = None,
          heatmap_examples: Sequence[str] | None = None, stream: Any = None,
          threads: int | None = 1) -> TrainResult:
    """Train ``model`` ("rnn" | "transformer") on ``task`` ("date" | "reverse" | a Task).

    Adam with warm-up and cosine decay, gradient clipping by global norm ``clip``,
    cross-entropy on the teacher-forced next character (padding ignored).  Afterwards
    the test split is greedily decoded and scored by exact match.  With ``out_dir`` the
    parameters go to ``out_dir/<model>.npz`` (sizes in ``<model>.json``), and the
    alignment heat maps of ``heatmap_examples`` (default: the task's showcase) to PNGs.
    Deterministic under ``seed`` (data order, initialisation).  BLAS runs on
    ``threads`` threads (see :func:`blas_threads`).
    """
    with blas_threads(threads):
        return _train(task, model, steps, seed, out_dir, batch_size, lr, clip, dtype, warmup,
                      progress, log_every, eval_every, sizes, heatmap_examples, stream)


def _train(task: str | Task, model: str, steps: int | None, seed: int, out_dir: str | None,
           batch_size: int | None, lr: float | None, clip: float, dtype: Any, warmup: int,
           progress: bool, log_every: int, eval_every: int, sizes: dict[str, int] | None,
           heatmap_examples: Sequence[str] | None, stream: Any) -> TrainResult:
    if model not in MODELS:
        raise ValueError(f"train: unknown model {model!r}; choose one of {MODELS}")
    t = make_task(task, seed=seed) if isinstance(task, str) else task
    d = DEFAULTS[model]
    steps = d["steps"] if steps is None else steps
    batch_size = d["batch_size"] if batch_size is None else batch_size
    lr = d["lr"] if lr is None else lr
    if steps < 1 or batch_size < 1:
        raise ValueError(f"train: steps and batch_size must be positive, got steps={steps}, "
                         f"batch_size={batch_size}")
    net = build_model(model, t, seed=seed, dtype=dtype, **(sizes or {}))
    opt = nn.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed + 1)
    bar = Progress(steps, stream) if progress else None
    losses: list[float] = []
    order = rng.permutation(len(t.train))
    pos, acc_avg, loss_avg = 0, 0.0, 0.0
    t0 = time.perf_counter()
    for step in range(steps):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(t.train)), 0
        b = t.train.batch(order[pos:pos + batch_size])
        pos += batch_size
        logits, _ = net(b.src, b.decoder_input())
        loss = nn.cross_entropy(logits, b.tgt, ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        nn.clip_grad_norm(opt.params, clip)
        opt.lr = _lr_at(step, steps, lr, warmup)
        opt.step()
        lv = float(loss.data)
        if not np.isfinite(lv):
            raise FloatingPointError(f"train: the loss became {lv} at step {step}")
        losses.append(lv)
        a = token_accuracy(logits, b.tgt)
        loss_avg = lv if step == 0 else 0.9 * loss_avg + 0.1 * lv
        acc_avg = a if step == 0 else 0.9 * acc_avg + 0.1 * a
        if bar and ((step + 1) % log_every == 0 or step + 1 == steps):
            text = f"loss {loss_avg:.4f} tok-acc {100 * acc_avg:5.1f}%"
            if eval_every and (step + 1) % eval_every == 0:
                text += f" val-exact {100 * exact_match(net, t, t.val):5.1f}%"
            bar.update(step + 1, text, final=step + 1 == steps)
    seconds = time.perf_counter() - t0
    result = TrainResult(
        task=t.name, model=model, steps=steps, seed=seed, dtype=str(np.dtype(dtype)),
        num_parameters=net.num_parameters(), train_seconds=seconds,
        first_loss=losses[0], final_loss=float(np.mean(losses[-20:])),
        test_accuracy=exact_match(net, t, t.test), val_accuracy=exact_match(net, t, t.val),
        ms_per_decode_step=ms_per_decoding_step(net, t), losses=losses, net=net)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        result.params_path = os.path.join(out_dir, f"{model}.npz")
        save_model(net, result.params_path)
        examples = heatmap_examples if heatmap_examples is not None else showcase(t)
        result.heatmaps = plot_alignments(net, t, examples, out_dir, prefix=model)
        with open(os.path.join(out_dir, f"{model}-result.json"), "w") as f:
            json.dump({k: getattr(result, k) for k in result.__dataclass_fields__
                       if k not in ("losses", "net")}, f, indent=1)
    return result


# ----------------------------------------------------------------------------- heat maps

def showcase(task: Task) -> list[str]:
    """Sources whose alignments the heat maps show: one date in several formats
    (2026-11-21, the issue's example), or the first test sources of other tasks."""
    if task.name == "date":
        import datetime as dt

        from .data import format_date

        day = dt.date(2026, 11, 21)
        return [format_date(day, k) for k in (0, 1, 2, 7)]
    return task.test.sources[:2]


def alignment(model: RNNSearch | Transformer, task: Task,
              source: str) -> tuple[str, np.ndarray]:
    """Greedy translation of ``source`` and its attention weights: (T, S) for the RNN,
    (layers, heads, T, S) for the transformer (T up to and including </s>)."""
    src = np.array([task.src_vocab.encode(source)], dtype=np.int64)
    ids, w = model.greedy(src, task.max_target_len)
    ids = ids[0]
    stop = int(np.argmax(ids == EOS)) + 1 if (ids == EOS).any() else len(ids)
    return task.tgt_vocab.decode(ids), w[0][..., :stop, :]


def plot_alignment(weights: np.ndarray, source: str, target: str, ax: Any,
                   title: str = "") -> Any:
    """Draw one (T, S) weight matrix on ``ax``: input characters along the top, output
    characters down the side, grey scale 0 = black, 1 = white (as Bahdanau et al. 2014,
    figure 3)."""
    rows = list(target) + ["</s>"]
    im = ax.imshow(weights[:len(rows)], cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)))
    ax.set_xticklabels([c if c != " " else "␣" for c in source], fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.xaxis.tick_top()
    if title:
        ax.set_title(title, fontsize=9, pad=18)
    return im


def plot_alignments(model: RNNSearch | Transformer, task: Task, sources: Sequence[str],
                    out_dir: str, prefix: str = "model") -> list[str]:
    """Write one PNG per source: the RNN's additive attention, or every cross-attention
    head of every decoder layer of the transformer.  Returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for k, source in enumerate(sources):
        target, w = alignment(model, task, source)
        if w.ndim == 2:
            fig, ax = plt.subplots(figsize=(0.28 * len(source) + 1.5, 4.0))
            plot_alignment(w, source, target, ax, f"{source!r} -> {target!r}")
        else:
            L, Hh = w.shape[:2]
            fig, axes = plt.subplots(L, Hh, figsize=(Hh * (0.22 * len(source) + 1.0),
                                                     L * 3.4), squeeze=False)
            for li in range(L):
                for hi in range(Hh):
                    plot_alignment(w[li, hi], source, target, axes[li, hi],
                                   f"layer {li + 1} head {hi + 1}")
            fig.suptitle(f"cross-attention: {source!r} -> {target!r}", fontsize=10)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{prefix}-alignment-{k}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_alignment_panel(model: RNNSearch, task: Task, sources: Sequence[str], path: str,
                         cols: int = 2) -> str:
    """The RNN's alignments of several sources in one figure, panels (a), (b), ...,
    laid out as Bahdanau et al. (2014) lay out the four samples of their figure 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(model, RNNSearch):
        raise TypeError(f"plot_alignment_panel: needs an RNNSearch (one attention per "
                        f"step), got {type(model).__name__}; use plot_alignments")
    rows = -(-len(sources) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 5.2, rows * 4.0), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(sources):
            ax.axis("off")
            continue
        target, w = alignment(model, task, sources[k])
        plot_alignment(w, sources[k], target, ax, f"({chr(97 + k)}) {sources[k]!r}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- CLI

def main_train(argv: Sequence[str] | None = None) -> int:
    """``tinygrad-attn train TASK --model rnn|transformer [--steps N] [--seed S] ...``"""
    p = argparse.ArgumentParser(prog="tinygrad-attn train",
                                description="Train an attention model with the engine.")
    p.add_argument("task", choices=["date", "reverse"], help="the toy translation task")
    p.add_argument("--model", choices=MODELS, default="rnn")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--out", default="runs", help="folder for parameters and heat maps")
    p.add_argument("--eval-every", type=int, default=0,
                   help="report validation exact match every N steps (0: never)")
    args = p.parse_args(argv)
    out_dir = os.path.join(args.out, f"{args.task}-{args.model}")
    res = train(args.task, args.model, steps=args.steps, seed=args.seed, out_dir=out_dir,
                batch_size=args.batch_size, lr=args.lr, dtype=np.dtype(args.dtype),
                eval_every=args.eval_every)
    print(res.summary())
    print(f"parameters: {res.params_path}")
    for path in res.heatmaps:
        print(f"heat map: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_train())
