"""Training and decoding speed of the two date-translation models (issue 9).

For RNNsearch (bidirectional GRU + additive attention) and the attention-only
transformer, at the sizes `tinygrad-attn train date` uses: milliseconds per training
step (forward, backward, Adam; batch 64) and per greedy decoding step (batch 1 and
batch 500), with BLAS limited to one thread and with two.  Best of ``--repeat`` runs.

    python benchmarks/bench_train.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tinygrad_attn import nn
from tinygrad_attn.study.data import PAD, date_task
from tinygrad_attn.engine.blas import blas_threads
from tinygrad_attn.study.train import build_model


def best_ms(fn, repeat: int) -> float:
    fn()                                                       # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    task = date_task()
    batch = task.train.batch(np.arange(64))
    tgt_in = batch.decoder_input()
    print(f"{'model':<12} {'params':>8} {'threads':>7} {'train step ms':>13} "
          f"{'decode ms/step b=1':>18} {'decode ms/step b=500':>20}")
    for kind in ("rnn", "transformer"):
        model = build_model(kind, task, seed=0)
        opt = nn.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            logits, _ = model(batch.src, tgt_in)
            loss = nn.cross_entropy(logits, batch.tgt, ignore_index=PAD)
            opt.zero_grad()
            loss.backward()
            opt.step()

        one = task.test.batch(np.arange(1)).src
        many = task.test.batch(np.arange(500)).src
        for threads in (1, 2):
            with blas_threads(threads):
                train_ms = best_ms(step, args.repeat)
                d1 = best_ms(lambda: model.greedy(one, task.max_target_len), args.repeat)
                d500 = best_ms(lambda: model.greedy(many, task.max_target_len), args.repeat)
            n = task.max_target_len
            print(f"{kind:<12} {model.num_parameters():>8,} {threads:>7} {train_ms:>13.1f} "
                  f"{d1 / n:>18.2f} {d500 / n:>20.2f}")


if __name__ == "__main__":
    main()
