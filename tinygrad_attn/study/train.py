"""Attention learns: training the two encoder-decoders of :mod:`.models` on a task of
:mod:`.data`, with the engine's backward and Adam.

:func:`build_model` sizes a model for a task; :func:`train` runs the loop (warm-up and
cosine decay, gradient clipping, a progress line with loss and accuracy), then scores
exact-match accuracy of greedy decoding on the test split; with ``out_dir`` it saves the
parameters (``.npz`` and sizes as ``.json``) and the alignment heat maps of :mod:`.plots`.
:func:`load_model` reads a saved model back.
:func:`add_arguments` and :func:`run_arguments` are ``tinygrad-attn train``;
:func:`main_train` runs them on their own.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from .. import nn
from ..engine import Tensor
from ..engine.blas import blas_threads
from ..verify.progress import Progress
from .data import PAD, TASKS, Split, Task, make_task
from .models import Model, RNNSearch, Transformer
from .plots import plot_alignments, showcase

__all__ = ["MODELS", "build_model", "DEFAULTS", "TrainResult", "train", "save_model",
           "load_model", "greedy_decode", "exact_match", "token_accuracy",
           "ms_per_decoding_step", "learning_rate", "add_arguments", "run_arguments",
           "main_train"]


# ----------------------------------------------------------------------------- models

MODELS = ("rnn", "transformer")


def build_model(kind: str, task: Task, seed: int = 0, dtype: Any = np.float32,
                **sizes: int) -> Model:
    """A fresh model ``kind`` ("rnn" or "transformer") sized for ``task``'s vocabularies."""
    if kind == "rnn":
        return RNNSearch(len(task.src_vocab), len(task.tgt_vocab), rng=seed, dtype=dtype,
                         **sizes)
    if kind == "transformer":
        return Transformer(len(task.src_vocab), len(task.tgt_vocab), rng=seed, dtype=dtype,
                           **sizes)
    raise ValueError(f"build_model: unknown model {kind!r}; choose one of {MODELS}")


# ----------------------------------------------------------------------------- saving

def _config_path(path: str) -> str:
    return (path[:-4] if path.endswith(".npz") else path) + ".json"


def save_model(model: Model, path: str) -> None:
    """Parameters to ``path`` (``.npz``) and the sizes to ``path`` + ``.json``."""
    model.save(path)
    kind = "rnn" if isinstance(model, RNNSearch) else "transformer"
    with open(_config_path(path), "w") as f:
        json.dump(dict(kind=kind, dtype=str(model.dtype), **model.config), f, indent=1)


def load_model(path: str) -> Model:
    """The model :func:`save_model` wrote to ``path``."""
    with open(_config_path(path)) as f:
        cfg = json.load(f)
    kind, dtype = cfg.pop("kind"), cfg.pop("dtype")
    cls = RNNSearch if kind == "rnn" else Transformer
    model = cls(**cfg, dtype=np.dtype(dtype))
    model.load(path)
    return model


# ----------------------------------------------------------------------------- metrics

def greedy_decode(model: Model, task: Task, split: Split, batch_size: int = 500) -> list[str]:
    """Greedy translations of every source in ``split`` (strings)."""
    out: list[str] = []
    for start in range(0, len(split), batch_size):
        b = split.batch(np.arange(start, min(start + batch_size, len(split))))
        ids, _ = model.greedy(b.src, task.max_target_len)
        out += [task.tgt_vocab.decode(row) for row in ids]
    return out


def exact_match(model: Model, task: Task, split: Split, batch_size: int = 500) -> float:
    """Fraction of ``split`` whose greedy translation equals the target exactly."""
    preds = greedy_decode(model, task, split, batch_size)
    return float(np.mean([p == t for p, t in zip(preds, split.targets)]))


def token_accuracy(logits: Tensor, targets: np.ndarray) -> float:
    """Teacher-forced accuracy of the arg-max over non-padding positions."""
    keep = targets != PAD
    return float(((logits.data.argmax(-1) == targets) & keep).sum() / keep.sum())


def ms_per_decoding_step(model: Model, task: Task, batch: int = 1, repeats: int = 5) -> float:
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

#: Steps, peak learning rate and batch size of each model when not given.
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
        """One line: sizes, time, loss, accuracy and decoding speed."""
        return (f"{self.model} on {self.task}: {self.num_parameters:,} parameters, "
                f"{self.steps} steps in {self.train_seconds:.1f} s, loss "
                f"{self.first_loss:.3f} -> {self.final_loss:.4f}, exact match test "
                f"{100 * self.test_accuracy:.1f}% (val {100 * self.val_accuracy:.1f}%), "
                f"{self.ms_per_decode_step:.2f} ms per decoding step (batch 1)")


def learning_rate(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to lr/10."""
    if step < warmup:
        return lr * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + np.cos(np.pi * p)))


def _batches(split: Split, batch_size: int, rng: np.random.Generator) -> Iterator[Split]:
    """Batches of ``split`` forever: a fresh permutation whenever one is used up."""
    order, pos = rng.permutation(len(split)), 0
    while True:
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(split)), 0
        yield split.batch(order[pos:pos + batch_size])
        pos += batch_size


def _step(net: Model, opt: nn.Adam, batch: Split, clip: float,
          lr: float) -> tuple[float, float]:
    """One teacher-forced update; returns (loss, token accuracy)."""
    logits, _ = net(batch.src, batch.decoder_input())
    loss = nn.cross_entropy(logits, batch.tgt, ignore_index=PAD)
    opt.zero_grad()
    loss.backward()
    nn.clip_grad_norm(opt.params, clip)
    opt.lr = lr
    opt.step()
    return float(loss.data), token_accuracy(logits, batch.tgt)


def _fit(net: Model, t: Task, steps: int, batch_size: int, lr: float, clip: float,
         warmup: int, seed: int, bar: Progress, log_every: int,
         eval_every: int) -> list[float]:
    """The training loop; returns the loss of every step."""
    opt = nn.Adam(net.parameters(), lr=lr)
    batches = _batches(t.train, batch_size, np.random.default_rng(seed + 1))
    losses: list[float] = []
    loss_avg = acc_avg = 0.0
    for step, batch in zip(range(steps), batches):
        loss, acc = _step(net, opt, batch, clip, learning_rate(step, steps, lr, warmup))
        if not np.isfinite(loss):
            raise FloatingPointError(f"train: the loss became {loss} at step {step}")
        losses.append(loss)
        loss_avg = loss if step == 0 else 0.9 * loss_avg + 0.1 * loss
        acc_avg = acc if step == 0 else 0.9 * acc_avg + 0.1 * acc
        if (step + 1) % log_every == 0 or step + 1 == steps:
            text = f"loss {loss_avg:.4f} tok-acc {100 * acc_avg:5.1f}%"
            if eval_every and (step + 1) % eval_every == 0:
                text += f" val-exact {100 * exact_match(net, t, t.val):5.1f}%"
            bar.update(step + 1, text)
    return losses


def _save(result: TrainResult, t: Task, out_dir: str,
          heatmap_examples: Sequence[str] | None) -> None:
    """Parameters, heat maps and the result's numbers into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    result.params_path = os.path.join(out_dir, f"{result.model}.npz")
    save_model(result.net, result.params_path)
    examples = heatmap_examples if heatmap_examples is not None else showcase(t)
    result.heatmaps = plot_alignments(result.net, t, examples, out_dir, prefix=result.model)
    with open(os.path.join(out_dir, f"{result.model}-result.json"), "w") as f:
        json.dump({k: getattr(result, k) for k in result.__dataclass_fields__
                   if k not in ("losses", "net")}, f, indent=1)


def train(task: str | Task = "date", model: str = "rnn", steps: int | None = None,
          seed: int = 0, out_dir: str | None = None, batch_size: int | None = None,
          lr: float | None = None, clip: float = 1.0, dtype: Any = np.float32,
          warmup: int = 100, progress: bool | None = None, log_every: int = 25,
          eval_every: int = 0, sizes: dict[str, int] | None = None,
          heatmap_examples: Sequence[str] | None = None, stream: Any = None,
          threads: int | None = 1) -> TrainResult:
    """Train ``model`` ("rnn" | "transformer") on ``task`` ("date" | "reverse" | a Task).

    Adam with warm-up and cosine decay, gradient clipping by global norm ``clip``,
    cross-entropy on the teacher-forced next character (padding ignored).  Afterwards
    the test split is greedily decoded and scored by exact match.  With ``out_dir`` the
    parameters go to ``out_dir/<model>.npz`` (sizes in ``<model>.json``), and the
    alignment heat maps of ``heatmap_examples`` (default: the task's showcase) to PNGs.
    The progress line goes to ``stream`` (default stderr) when it is a terminal, or
    always with ``progress=True``, never with ``False``.  Deterministic under ``seed``
    (data order, initialisation).  BLAS runs on ``threads`` threads (see
    :func:`~tinygrad_attn.engine.blas.blas_threads`).
    """
    if model not in MODELS:
        raise ValueError(f"train: unknown model {model!r}; choose one of {MODELS}")
    d = DEFAULTS[model]
    steps = d["steps"] if steps is None else steps
    batch_size = d["batch_size"] if batch_size is None else batch_size
    lr = d["lr"] if lr is None else lr
    if steps < 1 or batch_size < 1:
        raise ValueError(f"train: steps and batch_size must be positive, got steps={steps}, "
                         f"batch_size={batch_size}")
    t = make_task(task, seed=seed) if isinstance(task, str) else task
    with blas_threads(threads):
        net = build_model(model, t, seed=seed, dtype=dtype, **(sizes or {}))
        with Progress(steps, label="step", stream=stream, enabled=progress) as bar:
            t0 = time.perf_counter()
            losses = _fit(net, t, steps, batch_size, lr, clip, warmup, seed, bar, log_every,
                          eval_every)
            seconds = time.perf_counter() - t0
        result = TrainResult(
            task=t.name, model=model, steps=steps, seed=seed, dtype=str(np.dtype(dtype)),
            num_parameters=net.num_parameters(), train_seconds=seconds,
            first_loss=losses[0], final_loss=float(np.mean(losses[-20:])),
            test_accuracy=exact_match(net, t, t.test), val_accuracy=exact_match(net, t, t.val),
            ms_per_decode_step=ms_per_decoding_step(net, t), losses=losses, net=net)
        if out_dir is not None:
            _save(result, t, out_dir, heatmap_examples)
    return result


# ----------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``tinygrad-attn train TASK --model rnn|transformer ...``; every
    option says its default (the command line's formatter adds it where a value is fixed)."""
    def by_model(key: str) -> str:
        return ", ".join(f"{d[key]:g} {m}" for m, d in DEFAULTS.items())

    parser.add_argument("task", choices=sorted(TASKS), help="the toy translation task")
    parser.add_argument("--model", choices=MODELS, default="rnn",
                        help="RNNsearch with additive attention (rnn) or a transformer")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps (default: {by_model('steps')})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"sentence pairs per step (default: {by_model('batch_size')})")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate of Adam (default: {by_model('lr')})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data order and the initialisation")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="floating-point type of the parameters and activations")
    parser.add_argument("--out", default="runs", help="folder for parameters and heat maps "
                        "(written to OUT/TASK-MODEL)")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="report validation exact match every N steps (0: never)")
    return parser


def run_arguments(args: argparse.Namespace) -> int:
    """Train as the parsed arguments of :func:`add_arguments` say; print the summary and
    the files written."""
    out_dir = os.path.join(args.out, f"{args.task}-{args.model}")
    res = train(args.task, args.model, steps=args.steps, seed=args.seed, out_dir=out_dir,
                batch_size=args.batch_size, lr=args.lr, dtype=np.dtype(args.dtype),
                eval_every=args.eval_every)
    print(res.summary())
    print(f"parameters: {res.params_path}")
    for path in res.heatmaps:
        print(f"heat map: {path}")
    return 0


def main_train(argv: Sequence[str] | None = None) -> int:
    """``python -m tinygrad_attn.study.train TASK [--model ...]``: the same as
    ``tinygrad-attn train``."""
    parser = argparse.ArgumentParser(prog="tinygrad-attn train",
                                     description="Train an attention model with the engine.")
    return run_arguments(add_arguments(parser).parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main_train())
