"""Greedy decoding speed: the transformer with and without its key/value cache, against
RNNsearch, at the sizes `tinygrad-attn train date` uses (float32, BLAS on one thread).

Milliseconds per decoding step for a batch of 1 and of 500 test sources, decoding the
task's 11 output characters and, to show how a step's cost grows with the prefix, 60
(the transformer's positions stop at 64).  Without the cache a transformer step re-reads
the whole prefix (O(t^2) work at step t, O(n^3) for n steps in all); with it a step
projects one position and attends over t cached keys (O(t)).  Best of ``--repeat``.

    python benchmarks/bench_decode.py [--repeat 3] [--steps 11 60]
"""
from __future__ import annotations

import argparse

import numpy as np
from timing import best_time

from tinygrad_attn.engine.blas import blas_threads
from tinygrad_attn.study.data import date_task
from tinygrad_attn.study.train import build_model


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--steps", type=int, nargs="+", default=[11, 60])
    args = p.parse_args()
    task = date_task()
    rnn, tf = build_model("rnn", task, seed=0), build_model("transformer", task, seed=0)
    decoders = {"rnn": lambda src, n: rnn.greedy(src, n),
                "transformer, cache": lambda src, n: tf.greedy(src, n, kv_cache=True),
                "transformer, no cache": lambda src, n: tf.greedy(src, n, kv_cache=False)}
    print(f"{'decoder':<22} {'batch':>5} {'steps':>5} {'ms/step':>8} {'x rnn':>6}")
    with blas_threads(1):
        for batch in (1, 500):
            src = task.test.batch(np.arange(batch)).src
            for n in args.steps:
                rnn_ms = None
                for name, decode in decoders.items():
                    times = best_time(lambda d=decode, s=src, k=n: d(s, k), args.repeat,
                                      warmup=1, warmup_s=0)
                    ms = 1e3 * min(times) / n
                    rnn_ms = rnn_ms or ms
                    print(f"{name:<22} {batch:>5} {n:>5} {ms:>8.2f} {ms / rnn_ms:>6.2f}",
                          flush=True)


if __name__ == "__main__":
    main()
