"""The command line: ``tinygrad-attn demo | check | derive | graph | bench | train``.

Errors the user can fix (a missing file, no such function, a bad shape string, a
function that raises) are one line on stderr and exit code 2; a failed check is exit
code 1.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__


class UsageError(Exception):
    """An error in what the user asked for: printed as one line, exit code 2."""


# ----------------------------------------------------------------------------- loading

def _import_function(spec: str) -> Callable[..., Any]:
    """``path/to/file.py:function`` or ``package.module:function`` -> the function.

    Raises ``ValueError`` with one line that says what is wrong (no such file, a file that
    fails to import, no such module or function).
    """
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ValueError(f"expected FILE.py:FUNCTION or MODULE:FUNCTION, got {spec!r}")
    if where.endswith(".py") or os.sep in where:
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"no such file: {where}")
        module_spec = importlib.util.spec_from_file_location(f"_user_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.resolve().parent))  # its own imports, as `python file`
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file failed to import
            raise ValueError(f"{where} failed to import: {type(exc).__name__}: {exc}") from None
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ValueError(f"cannot import module {where!r}: {exc}") from None
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"{where} has no function {name!r}")
    return fn


def load_function(spec: str) -> Callable[..., Any]:
    """``FILE.py:FUNCTION`` or ``MODULE:FUNCTION`` -> the function (errors: UsageError)."""
    try:
        return _import_function(spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``q=4x8`` -> ("q", (4, 8)); ``beta=`` or ``beta=scalar`` -> ("beta", ())."""
    if "=" not in text:
        raise UsageError(f"bad --shape {text!r}: expected NAME=DxD..., e.g. q=4x8")
    name, dims = text.split("=", 1)
    if not name.isidentifier():
        raise UsageError(f"bad --shape {text!r}: {name!r} is not a parameter name")
    if dims in ("", "scalar"):
        return name, ()
    try:
        shape = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        raise UsageError(f"bad --shape {text!r}: dimensions must be integers separated "
                         f"by 'x', e.g. q=4x8") from None
    if any(d <= 0 for d in shape):
        raise UsageError(f"bad --shape {text!r}: dimensions must be positive")
    return name, shape


def make_inputs(fn: Callable[..., Any], shapes: list[str], seed: int) -> list[Any]:
    """Random float64 Tensors for the function's parameters, named after them."""
    import tinygrad_attn as ta

    given = dict(parse_shape(s) for s in shapes)
    params = list(inspect.signature(fn).parameters.values())
    unknown = sorted(set(given) - {p.name for p in params})
    if unknown:
        raise UsageError(f"--shape names {unknown} are not parameters of {fn.__name__}"
                         f"({', '.join(p.name for p in params)})")
    rng = np.random.default_rng(seed)
    inputs = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in given:
            inputs.append(ta.Tensor(rng.standard_normal(given[p.name]), requires_grad=True,
                                    name=p.name))
        elif p.default is not p.empty:
            break  # the rest keep their defaults
        else:
            raise UsageError(f"missing --shape for parameter {p.name!r} of {fn.__name__}")
    return inputs


# ----------------------------------------------------------------------------- commands

def cmd_check(args: argparse.Namespace) -> int:
    import tinygrad_attn as ta
    from .engine.timelimit import TimeLimitExceeded, call_with_time_limit

    fn = load_function(args.function)
    inputs = make_inputs(fn, args.shape, args.seed)
    if args.time_limit < 0:
        raise UsageError(f"bad --time-limit {args.time_limit:g}: give seconds > 0, or 0 for "
                         f"no limit")
    try:
        report = call_with_time_limit(
            ta.gradcheck, args.time_limit or None, fn, *inputs, symbolic=args.symbolic,
            eps=args.eps, atol=args.atol, rtol=args.rtol, report_dir=args.report_dir,
            max_symbols=args.max_symbols, sample=args.sample,
            progress=False if args.no_progress else None)
    except TimeLimitExceeded:
        raise UsageError(f"{fn.__name__} did not finish within {args.time_limit:g} s "
                         f"(--time-limit {args.time_limit:g}); look for a loop that never "
                         f"ends, or raise the limit") from None
    except Exception as exc:
        raise UsageError(f"{fn.__name__} raised {type(exc).__name__}: {exc}") from None
    print(report)
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .study.demo import run_demo

    return run_demo(Path(args.out), symbolic=not args.no_symbolic)


def cmd_graph(args: argparse.Namespace) -> int:
    from .pictures.figures import FIGURES, graph_command

    target = args.target if args.target in FIGURES else load_function(args.target)
    try:
        path = graph_command(target, args.output, backward=args.backward,
                             renderer=args.renderer, rankdir=args.rankdir)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    print(f"written: {path}")
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    from .study.derivations import NAMES, report

    if args.name != "all" and args.name not in NAMES:
        raise UsageError(f"no derivation {args.name!r}; choose all or one of "
                         f"{', '.join(NAMES)}")
    return report(NAMES if args.name == "all" else [args.name], args.out,
                  progress=False if args.no_progress else None)


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    if not BENCHMARKS.is_dir():
        raise UsageError(f"the benchmarks live in the source tree ({BENCHMARKS} is missing); "
                         f"run from a clone installed with pip install -e .")
    names = args.names or ["engine", "attention"]
    available = sorted(p.stem[len("bench_"):] for p in BENCHMARKS.glob("bench_*.py"))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"no benchmark {unknown[0]!r}; the benchmarks are "
                         f"{', '.join(available)}")
    env = dict(os.environ)  # the scripts import this very package, installed or not
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCHMARKS.parent),
                                                      env.get("PYTHONPATH")]))
    code = 0
    for name in names:
        print(f"== benchmarks/bench_{name}.py {' '.join(args.extra)}".rstrip(), flush=True)
        code |= subprocess.call([sys.executable, str(BENCHMARKS / f"bench_{name}.py"),
                                 *args.extra], env=env)
    return code


def cmd_train(args: argparse.Namespace) -> int:
    from .study.train import run_arguments

    return run_arguments(args)


def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job: every built-in mechanism run, checked "
                                    "three ways, derived and drawn, into an output folder")
    p.add_argument("--out", default="tinygrad_attn_out", help="output folder "
                   "(default: ./tinygrad_attn_out)")
    p.add_argument("--no-symbolic", action="store_true",
                   help="skip the SymPy comparison (finite differences only)")
    p.set_defaults(func=cmd_demo)


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="gradient-check your own function",
                       description="Gradient-check FILE.py:FUNCTION (or MODULE:FUNCTION) at "
                                   "random inputs of the given shapes.")
    p.add_argument("function", help="FILE.py:FUNCTION or MODULE:FUNCTION")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DxD",
                   help="shape of a parameter, e.g. --shape q=4x8 (repeat for each)")
    p.add_argument("--symbolic", action="store_true",
                   help="also compare with SymPy's exact gradient (three-way check)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--eps", type=float, default=None,
                   help="finite-difference step (default: by dtype, 1e-6 for float64)")
    p.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance against finite differences (default: by dtype, "
                        "1e-8 for float64)")
    p.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance against finite differences (default: by dtype, "
                        "1e-6 for float64)")
    p.add_argument("--max-symbols", type=int, default=4096, metavar="N",
                   help="with --symbolic: refuse a symbolic run of more input symbols "
                        "(default 4096)")
    p.add_argument("--sample", type=int, default=None, metavar="K",
                   help="with --symbolic: also prove K random elements of the engine's "
                        "backward exactly")
    p.add_argument("--time-limit", type=float, default=600.0, metavar="SECONDS",
                   help="stop with an error if the check takes longer (0: no limit; "
                        "default 600)")
    p.add_argument("--report-dir", metavar="DIR", default=None,
                   help="write an error heat map per input into DIR")
    p.add_argument("--no-progress", action="store_true",
                   help="with --symbolic: no estimate line and no progress bar on stderr "
                        "(they appear only on a terminal, for symbolic work estimated at "
                        "2 s or more)")
    p.set_defaults(func=cmd_check)


def _add_train(sub: Any) -> None:
    from .study.train import add_arguments

    p = sub.add_parser("train", help="train an attention model on a toy translation task",
                       description="Train an attention model with the engine: RNNsearch "
                                   "(additive attention) or a transformer.")
    add_arguments(p)
    p.set_defaults(func=cmd_train)


def _add_derive(sub: Any) -> None:
    from .study.derivations import NAMES

    p = sub.add_parser("derive", help="derive a mechanism's gradients and prove them",
                       description="Build the derivation NAME (or all): every claim in it is "
                                   "proven with SymPy; with --out, the Markdown is written to "
                                   "DIR/NAME.md.")
    p.add_argument("name", help=f"all, {', '.join(NAMES)}")
    p.add_argument("--out", metavar="DIR", help="write DIR/NAME.md")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress line over the documents on stderr (it appears only "
                        "on a terminal)")
    p.set_defaults(func=cmd_derive)


def _add_graph(sub: Any) -> None:
    p = sub.add_parser("graph", help="draw a built-in figure or your own function's graph",
                       description="Draw NAME (additive, self_attention, causal, multihead, "
                                   "decoder) or MODULE:FUNCTION / FILE.py:FUNCTION (a function "
                                   "of no arguments returning the Tensor to draw).")
    p.add_argument("target", help="a figure name, MODULE:FUNCTION or FILE.py:FUNCTION")
    p.add_argument("-o", "--output", help="output file: .svg, .png, .pdf or .dot "
                   "(default: NAME[-backward].svg)")
    p.add_argument("--backward", action="store_true", help="draw the gradient graph")
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR", "BT", "RL"])
    p.add_argument("--renderer", default="auto", choices=["auto", "dot", "wasm"],
                   help="the system Graphviz, the embedded WebAssembly one, or auto")
    p.set_defaults(func=cmd_graph)


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="run benchmarks side by side (engine vs NumPy, ...)",
                       description="Run benchmarks/bench_NAME.py for each NAME (default: "
                                   "engine attention); arguments after -- go to the scripts.")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="engine, attention, flash, complexity, symbolic, everysize, train")
    p.add_argument("extra", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    """The one parser: ``demo | check | train | derive | graph | bench``."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-attn",
        description="Attention you can verify: run, gradient-check, derive and draw "
                    "attention mechanisms.")
    parser.add_argument("--version", action="version", version=f"tinygrad-attn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_check, _add_train, _add_derive, _add_graph, _add_bench):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"tinygrad-attn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
