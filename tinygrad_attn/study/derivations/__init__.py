r"""The literate derivations: one module per document, its prose and its proofs together.

Each module (``softmax.py``, ``scaled_dot_product.py``, ..., ``claim_cost.py``) holds a
``TITLE`` and a ``build(doc)`` that writes the document in reading order: the mechanism
or claim, its gradients step by step, the closed matrix form, and then *proofs* at
explicit small sizes that

1. the closed form equals SymPy's entrywise derivative ``sympy.diff`` of
   $L = \sum \bar O \odot O$ (with a symbolic upstream gradient $\bar O$), and
2. the engine's own backward, run on symbolic Tensors, equals it too.

:func:`run` builds one document (and writes ``<out_dir>/<name>.md``); :data:`NAMES`
lists them in reading order; :func:`report` is what ``tinygrad-attn derive`` prints.
``python -m tinygrad_attn.study.derivations.softmax --out derivations`` rebuilds one.
Documents are deterministic (no timings; random points from fixed seeds), so the tests
check that the committed ``derivations/<name>.md`` are what the code produces now.

Importing this package loads no SymPy: a module is imported when it is run.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Callable, Sequence, TextIO

from ...verify.progress import Progress
from .document import Document, Result, write

__all__ = ["NAMES", "run", "report", "main", "Result"]

#: The derivations, in reading order: the mechanisms, then the claims of "what attention is".
NAMES: tuple[str, ...] = (
    "softmax", "scaled_dot_product", "worked_example", "additive", "dot_product_general",
    "location", "content", "multi_head", "causal_masking",
    "claim_expectation", "claim_convolution", "claim_cross_as_self", "claim_causal",
    "claim_image", "claim_cost",
)


def run(name: str, out_dir: str | Path | None = None) -> Result:
    """Build derivation ``name`` (one of :data:`NAMES`), proving every claim in it; with
    ``out_dir``, write ``<out_dir>/<name>.md``."""
    if name not in NAMES:
        raise ValueError(f"unknown derivation {name!r}; choose one of {', '.join(NAMES)}")
    module = importlib.import_module(f"{__name__}.{name}")
    doc = Document(name, module.TITLE)
    module.build(doc)
    doc.exercises()
    result = doc.result()
    if out_dir is not None:
        write(result, out_dir)
    return result


def _print(text: str) -> None:
    print(text, flush=True)


def report(names: Sequence[str], out_dir: str | Path | None = None,
           echo: Callable[[str], None] = _print, progress: bool | None = None,
           stream: TextIO | None = None) -> int:
    """Run each of ``names``, ``echo`` each result with its checks; return the exit
    status: 0 when every claim is proven, 1 otherwise.

    ``progress``: a progress line over the documents on ``stream`` (default stderr),
    ended before each result is echoed (None: only on a terminal; True: always; False:
    never).  The symbolic runs inside a document then draw no bar of their own."""
    ok = True
    bar = Progress(len(names), label="derive", stream=stream, enabled=progress)
    for k, name in enumerate(names):
        bar.update(k, name)
        result = run(name, out_dir)
        bar.close()
        echo(str(result))
        ok = ok and result.ok
    bar.update(len(names), "done")
    bar.close()
    return 0 if ok else 1


def main(name: str, argv: Sequence[str] | None = None) -> int:
    """``python -m tinygrad_attn.study.derivations.<name> [--out DIR]``: build the document,
    print its checks, and with ``--out`` write ``DIR/<name>.md``."""
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}.{name}",
                                     description=f"Build and prove the derivation {name}.")
    parser.add_argument("--out", metavar="DIR", help=f"write DIR/{name}.md")
    args = parser.parse_args(argv)
    return report([name], args.out)
