"""The command line: ``tinygrad-attn demo | check | compare | derive | graph | bench |
train | exercise``.

Errors the user can fix (a missing file, no such function, a bad shape string, a
function that raises) are one line on stderr and exit code 2; a failed check is exit
code 1. An error raised in the user's function names the file and line it came from
(:func:`user_error`; ``--traceback`` prints the whole trace).

A command that calls a user's function on random inputs (``check``, ``graph``) takes
:func:`add_input_arguments`: ``--shape NAME=DIMS[:RANGE]`` (read by :func:`parse_shape`,
turned into Tensors by :func:`make_inputs`), ``--seed``, ``--traceback``.  Every
subcommand gets :class:`HelpFormatter` (each option's default shown), and
:func:`undocumented_options` lists any option without help text or shown default.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from . import __version__
from .engine.checks import raised_in
from .verify.directional import AUTO_ELEMENTS, DIRECTIONS


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
            raise ValueError(f"{where} failed to import: {type(exc).__name__}: {exc}"
                             f"{where_raised(exc, str(path))}") from None
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


#: ``--shape``'s help, for every command that calls a user's function on random inputs.
SHAPE_HELP = ("a parameter's shape and, optionally, its range: NAME=DIMS[:RANGE], repeated "
              "for each parameter. DIMS: 4x8, or scalar (or nothing). RANGE: LOW..HIGH "
              "draws the values uniformly from [LOW, HIGH] instead of N(0, 1); 'positive' "
              "means 0.5..2. E.g. --shape q=4x8 --shape tau=scalar:positive "
              "--shape s=3:0.1..2 (default: none, for a function of no parameters)")

#: The named ranges of ``--shape NAME=DIMS:RANGE``.
NAMED_RANGES: dict[str, tuple[float, float]] = {"positive": (0.5, 2.0)}


class InputSpec(NamedTuple):
    """One ``--shape``: the parameter's name, its shape, and the interval its values are
    drawn from uniformly (``None``: the standard normal)."""

    name: str
    shape: tuple[int, ...]
    range: tuple[float, float] | None = None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Random float64 values of this shape, from this range."""
        if self.range is None:
            return np.asarray(rng.standard_normal(self.shape))
        return np.asarray(rng.uniform(*self.range, size=self.shape))


def _parse_range(text: str, spec: str) -> tuple[float, float]:
    """``positive`` or ``LOW..HIGH`` -> (low, high), low < high."""
    if text in NAMED_RANGES:
        return NAMED_RANGES[text]
    low, sep, high = text.partition("..")
    try:
        if not sep:
            raise ValueError
        bounds = float(low), float(high)
    except ValueError:
        raise UsageError(f"bad --shape {spec!r}: the range must be LOW..HIGH (e.g. 0.1..2) "
                         f"or one of {', '.join(NAMED_RANGES)}") from None
    if not (np.isfinite(bounds).all() and bounds[0] < bounds[1]):
        raise UsageError(f"bad --shape {spec!r}: the range needs finite LOW < HIGH")
    return bounds


def parse_shape(text: str) -> InputSpec:
    """``q=4x8`` -> InputSpec("q", (4, 8)); ``beta=`` or ``beta=scalar`` -> a scalar;
    ``tau=scalar:positive`` or ``s=3:0.1..2`` -> values drawn from that range."""
    if "=" not in text:
        raise UsageError(f"bad --shape {text!r}: expected NAME=DxD..., e.g. q=4x8")
    name, dims = text.split("=", 1)
    if not name.isidentifier():
        raise UsageError(f"bad --shape {text!r}: {name!r} is not a parameter name")
    dims, colon, range_text = dims.partition(":")
    bounds = _parse_range(range_text, text) if colon else None
    if dims in ("", "scalar"):
        return InputSpec(name, (), bounds)
    try:
        shape = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        raise UsageError(f"bad --shape {text!r}: dimensions must be integers separated "
                         f"by 'x', e.g. q=4x8") from None
    if any(d <= 0 for d in shape):
        raise UsageError(f"bad --shape {text!r}: dimensions must be positive")
    return InputSpec(name, shape, bounds)


def make_inputs(fn: Callable[..., Any], shapes: list[str], seed: int,
                dtype: Any = np.float64) -> list[Any]:
    """Random Tensors for the function's parameters, named after them: N(0, 1), or uniform
    on the range a ``--shape`` gives (:func:`parse_shape`)."""
    import tinygrad_attn as ta

    specs = [parse_shape(s) for s in shapes]
    given = {s.name: s for s in specs}
    if len(given) < len(specs):
        twice = sorted({s.name for s in specs if [t.name for t in specs].count(s.name) > 1})
        raise UsageError(f"--shape given more than once for {twice}")
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
            inputs.append(ta.Tensor(given[p.name].sample(rng).astype(dtype),
                                    requires_grad=True, name=p.name))
        elif p.default is not p.empty:
            break  # the rest keep their defaults
        else:
            raise UsageError(f"missing --shape for parameter {p.name!r} of {fn.__name__}")
    return inputs


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """``--shape``, ``--seed`` and ``--traceback``: the options of a command that calls a
    user's function on random inputs (``check``, ``graph``)."""
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS[:RANGE]",
                   help=SHAPE_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--traceback", action="store_true",
                   help="on an error in your function, print the whole Python traceback "
                        "(without: one line naming the file and line)")


def where_raised(exc: BaseException, filename: str) -> str:
    """`` (at FILE:LINE, in FUNCTION: SOURCE)``: the deepest line of ``filename`` that
    ``exc`` passed through, or "" when it passed through none."""
    at = raised_in(exc, filename)
    if at is None:
        return ""
    here = os.path.relpath(at.filename)  # the path as typed, from the current folder
    path = at.filename if here.startswith("..") else here
    line = f": {at.line}" if at.line else ""
    return f" (at {path}:{at.lineno}, in {at.name}{line})"


def user_error(fn: Any, exc: BaseException) -> UsageError:
    """The one-line error for ``exc`` raised while running the user's ``fn``: its message
    and the deepest line of the user's file it passed through (``--traceback`` prints the
    whole trace)."""
    code = getattr(fn, "__code__", None)
    where = where_raised(exc, code.co_filename) if code is not None else ""
    if not where:  # not through the user's file: the library's message names the fault
        known = (ValueError, TypeError, RuntimeError, FileNotFoundError)
        return UsageError(str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}")
    return UsageError(f"{fn.__name__} raised {type(exc).__name__}: {exc}{where}")


# ----------------------------------------------------------------------------- commands

def cmd_check(args: argparse.Namespace) -> int:
    import tinygrad_attn as ta
    from .engine.timelimit import TimeLimitExceeded, call_with_time_limit

    fn = load_function(args.function)
    inputs = make_inputs(fn, args.shape, args.seed)
    if args.time_limit < 0:
        raise UsageError(f"bad --time-limit {args.time_limit:g}: give seconds > 0, or 0 for "
                         f"no limit")
    if args.directions < 1:
        raise UsageError(f"bad --directions {args.directions}: give a positive number")
    if args.mode == "fast" and (args.symbolic or args.report_dir):
        raise UsageError("--symbolic and --report-dir compare every element: use them with "
                         "--mode full or auto")
    try:
        report = call_with_time_limit(
            ta.gradcheck, args.time_limit or None, fn, *inputs, symbolic=args.symbolic,
            eps=args.eps, atol=args.atol, rtol=args.rtol, report_dir=args.report_dir,
            max_symbols=args.max_symbols, sample=args.sample, mode=args.mode,
            directions=args.directions, progress=False if args.no_progress else None)
    except TimeLimitExceeded:
        raise UsageError(f"{fn.__name__} did not finish within {args.time_limit:g} s "
                         f"(--time-limit {args.time_limit:g}); look for a loop that never "
                         f"ends, or raise the limit") from None
    except Exception as exc:
        raise user_error(fn, exc) from exc
    print(report)
    return 0 if report.ok else 1


def cmd_compare(args: argparse.Namespace) -> int:
    from .verify.interop import Roles, compare

    reference, implementation = load_function(args.reference), load_function(args.impl)
    specs = [parse_shape(s) for s in args.shape]
    shapes = {spec.name: spec.shape for spec in specs}
    ranges = {spec.name: spec.range for spec in specs if spec.range is not None}
    framework = args.framework if args.framework != "auto" else guess_framework(implementation)
    roles = None
    if args.mask or args.logits:
        inferred = Roles.infer(list(inspect.signature(reference).parameters))
        roles = Roles(**{**inferred.__dict__, **{k: v for k, v in (
            ("mask", args.mask), ("logits", args.logits)) if v}})
    try:
        report = compare(reference, implementation, shapes, framework=framework,
                         dtypes=args.dtype or ("float64", "float32"), cases=args.case or None,
                         roles=roles, seed=args.seed, ranges=ranges)
    except (ValueError, TypeError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    print(report)
    return 0 if report.ok else 1


def guess_framework(fn: Callable[..., Any]) -> str:
    """``torch`` or ``jax``: the one of them the function's module imported (or the
    framework whose object it is, such as a ``jax.custom_vjp``)."""
    inner = getattr(fn, "fun", None) or inspect.unwrap(fn)      # jax.custom_vjp, wrappers
    found = {name for name in ("torch", "jax")
             if type(fn).__module__.split(".")[0] == name
             or any(getattr(value, "__name__", "").split(".")[0] == name
                    for value in getattr(inner, "__globals__", {}).values())}
    if len(found) != 1:
        raise UsageError(f"cannot tell whether {fn.__name__} is PyTorch or JAX (its module "
                         f"imports {' and '.join(sorted(found)) or 'neither'}); give "
                         f"--framework torch or --framework jax")
    return found.pop()


def cmd_demo(args: argparse.Namespace) -> int:
    from .study.demo import run_demo

    return run_demo(Path(args.out), symbolic=not args.no_symbolic, cache=not args.no_cache)


def cmd_graph(args: argparse.Namespace) -> int:
    from .pictures.figures import FIGURES, graph_command

    if args.target in FIGURES:
        if args.shape:
            raise UsageError(f"--shape is for a function; {args.target!r} is a built-in figure")
        target, inputs = args.target, []
    else:
        target = load_function(args.target)
        inputs = make_inputs(target, args.shape, args.seed)
    try:
        path = graph_command(target, args.output, backward=args.backward,
                             renderer=args.renderer, rankdir=args.rankdir, inputs=inputs)
    except Exception as exc:
        raise user_error(target, exc) from exc
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
DEFAULT_BENCHMARKS = ("engine", "attention")


def benchmark_names() -> list[str]:
    """The NAMEs of ``benchmarks/bench_NAME.py`` (none outside a source tree)."""
    return sorted(p.stem[len("bench_"):] for p in BENCHMARKS.glob("bench_*.py"))


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    if not BENCHMARKS.is_dir():
        raise UsageError(f"the benchmarks live in the source tree ({BENCHMARKS} is missing); "
                         f"run from a clone installed with pip install -e .")
    names = args.names or list(DEFAULT_BENCHMARKS)
    available = benchmark_names()
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


def cmd_exercise(args: argparse.Namespace) -> int:
    """List the exercises, show one (with a skeleton), check an answer, or write the
    teachers' solutions."""
    from .study.exercises import EXERCISES, check, template

    if args.solutions:
        from .study.solutions import handout

        Path(args.solutions).write_text(handout(), encoding="utf-8")
        print(f"written: {args.solutions}")
        return 0
    if args.name is None:
        for name, ex in EXERCISES.items():
            print(f"{name:<18} {ex.page:<20} {ex.title}")
        return 0
    if args.name not in EXERCISES:
        raise UsageError(f"unknown exercise {args.name!r}; choose one of {', '.join(EXERCISES)}")
    ex = EXERCISES[args.name]
    if args.answer is None:
        print(f"{ex.title} (derivations/{ex.page}.md)\n\n{ex.statement}\n\n"
              f"Write a function like this and run tinygrad-attn exercise {args.name} "
              f"answer.py:FUNCTION\n\n{template(args.name)}")
        return 0
    verdict = check(args.name, load_function(args.answer))
    print(verdict)
    return 0 if verdict.ok else 1


def _add_exercise(sub: Any) -> None:
    from .study.exercises import EXERCISES

    p = sub.add_parser("exercise", help="the derivation pages' exercises, checked exactly",
                       description="With no NAME, list the exercises; with NAME, show it and "
                                   "a skeleton answer; with NAME FILE.py:FUNCTION, check your "
                                   "answer exactly against the engine and SymPy (exit code 1 "
                                   "if it is wrong: the hint says where, never the solution).")
    p.add_argument("name", nargs="?", help=f"one of: {', '.join(EXERCISES)}")
    p.add_argument("answer", nargs="?", metavar="FILE.py:FUNCTION",
                   help="your answer (default: show the exercise)")
    p.add_argument("--solutions", metavar="FILE",
                   help="write every exercise with its solution to FILE, for teachers "
                        "(default: none)")
    p.set_defaults(func=cmd_exercise)


def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the main job: every built-in mechanism run, checked "
                                    "three ways, derived and drawn, into an output folder")
    p.add_argument("--out", default="tinygrad_attn_out", help="output folder")
    p.add_argument("--no-symbolic", action="store_true",
                   help="skip the SymPy comparison (finite differences only)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute every result: read and write no cache (the cache is "
                        "$TINYGRAD_ATTN_CACHE, else $XDG_CACHE_HOME/tinygrad_attn or "
                        "~/.cache/tinygrad_attn)")
    p.set_defaults(func=cmd_demo)


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="gradient-check your own function",
                       description="Gradient-check FILE.py:FUNCTION (or MODULE:FUNCTION) at "
                                   "random inputs of the given shapes.")
    p.add_argument("function", help="FILE.py:FUNCTION or MODULE:FUNCTION")
    add_input_arguments(p)
    p.add_argument("--symbolic", action="store_true",
                   help="also compare with SymPy's exact gradient (three-way check)")
    p.add_argument("--eps", type=float, default=None,
                   help="finite-difference step (default: by dtype, 1e-6 for float64)")
    p.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance against finite differences (default: by dtype, "
                        "1e-8 for float64)")
    p.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance against finite differences (default: by dtype, "
                        "1e-6 for float64)")
    p.add_argument("--max-symbols", type=int, default=4096, metavar="N",
                   help="with --symbolic: refuse a symbolic run of more input symbols")
    p.add_argument("--sample", type=int, default=None, metavar="K",
                   help="with --symbolic: also prove K random elements of the engine's "
                        "backward exactly (default: none)")
    p.add_argument("--time-limit", type=float, default=600.0, metavar="SECONDS",
                   help="stop with an error if the check takes longer (0: no limit)")
    p.add_argument("--report-dir", metavar="DIR", default=None,
                   help="write an error heat map per input into DIR (default: none)")
    p.add_argument("--mode", choices=("auto", "full", "fast"), default="auto",
                   help="full: every element; fast: random directions, then a bisection "
                        f"to the wrong element; auto (default): fast above {AUTO_ELEMENTS} "
                        f"elements")
    p.add_argument("--directions", type=int, default=DIRECTIONS, metavar="K",
                   help=f"with the fast mode: random directions per input (default "
                        f"{DIRECTIONS})")
    p.add_argument("--no-progress", action="store_true",
                   help="with --symbolic: no estimate line and no progress bar on stderr "
                        "(they appear only on a terminal, for symbolic work estimated at "
                        "2 s or more)")
    p.set_defaults(func=cmd_check)


def _add_compare(sub: Any) -> None:
    from .verify.interop import BUILTIN

    p = sub.add_parser("compare", help="cross-check a PyTorch or JAX function against an "
                                       "engine reference",
                       description="Compare IMPL (PyTorch or JAX) with REFERENCE (written with "
                                   "the engine): outputs, VJPs and Hessian-vector products in "
                                   "float64 and float32, on random inputs and the edge cases "
                                   "of attention.  Exit code 1 on a mismatch, 2 on a usage "
                                   "error.")
    p.add_argument("reference", metavar="REFERENCE",
                   help="FILE.py:FUNCTION or MODULE:FUNCTION written with the engine")
    p.add_argument("impl", metavar="IMPL", help="FILE.py:FUNCTION or MODULE:FUNCTION in "
                                                "PyTorch or JAX, with the reference's parameters")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS[:RANGE]",
                   help=SHAPE_HELP)
    p.add_argument("--framework", default="auto", choices=["auto", "torch", "jax"],
                   help="the implementation's framework (default: auto, the one its module "
                        "imports)")
    p.add_argument("--dtype", action="append", choices=["float64", "float32"],
                   help="run in this dtype (repeat; default: float64 and float32)")
    p.add_argument("--case", action="append", choices=list(BUILTIN),
                   help="run only this case (repeat; default: every case that applies)")
    p.add_argument("--mask", metavar="NAME", default=None,
                   help="the boolean mask parameter, True = attend (default: the one named "
                        "mask or attn_mask)")
    p.add_argument("--logits", metavar="NAME", default=None,
                   help="the input the logits are linear in, scaled by the large_logits "
                        "case (default: the query)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.set_defaults(func=cmd_compare)


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
    p.add_argument("name", metavar="NAME", help=f"all, or one of: {', '.join(NAMES)}")
    p.add_argument("--out", metavar="DIR", help="write DIR/NAME.md (default: print only)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress line over the documents on stderr (it appears only "
                        "on a terminal)")
    p.set_defaults(func=cmd_derive)


def _add_graph(sub: Any) -> None:
    from .pictures.figures import FIGURES
    from .pictures.renderers import RENDERERS

    p = sub.add_parser("graph", help="draw a built-in figure or your own function's graph",
                       description=f"Draw a built-in figure ({', '.join(FIGURES)}) or "
                                   f"MODULE:FUNCTION / FILE.py:FUNCTION: the Tensor it returns "
                                   f"when called on random inputs of the --shape given.")
    p.add_argument("target", help=f"a figure ({', '.join(FIGURES)}), MODULE:FUNCTION or "
                                  f"FILE.py:FUNCTION")
    add_input_arguments(p)
    p.add_argument("-o", "--output", help="output file: .svg, .png, .pdf or .dot "
                   "(default: NAME[-backward].svg)")
    p.add_argument("--backward", action="store_true", help="draw the gradient graph")
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR", "BT", "RL"],
                   help="layout direction: top to bottom, left to right, ...")
    p.add_argument("--renderer", default="auto", choices=RENDERERS,
                   help="dot: the system Graphviz; wasm: the embedded WebAssembly one; "
                        "auto: dot when it is on PATH, else wasm")
    p.set_defaults(func=cmd_graph)


def _add_bench(sub: Any) -> None:
    names = benchmark_names()
    p = sub.add_parser("bench", help="run benchmarks side by side (engine vs NumPy, ...)",
                       description="Run benchmarks/bench_NAME.py for each NAME; arguments "
                                   "after the names (or after --) go to the scripts, e.g. "
                                   "tinygrad-attn bench complexity -- --quick.")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"one of: {', '.join(names) or '(none: no benchmarks/ folder)'} "
                        f"(default: {' '.join(DEFAULT_BENCHMARKS)})")
    p.add_argument("extra", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, ``(default: 600.0)``, unless the help
    already says it (``(default: by dtype, ...)``) or the option is a flag (off unless
    given)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.nargs == 0 or action.default is None:
            return text
        return super()._get_help_string(action)


def undocumented_options(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """``COMMAND OPTION: what is missing`` for every argument of ``parser`` and its
    subcommands that has no help text, or (an option taking a value) shows no default."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                missing += undocumented_options(child, f"{prefix}{name} ")
            continue
        if action.help == argparse.SUPPRESS or isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        what = f"{prefix}{'/'.join(action.option_strings) or action.dest}"
        if not action.help:
            missing.append(f"{what}: no help text")
        elif action.option_strings and action.nargs != 0 and \
                "default" not in parser._get_formatter()._get_help_string(action):
            missing.append(f"{what}: no default shown")
    return missing


def build_parser() -> argparse.ArgumentParser:
    """The one parser: ``demo | check | compare | train | derive | graph | bench |
    exercise``."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-attn", formatter_class=HelpFormatter,
        description="Attention you can verify: run, gradient-check, derive and draw "
                    "attention mechanisms.")
    parser.add_argument("--version", action="version", version=f"tinygrad-attn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=functools.partial(argparse.ArgumentParser,
                                                               formatter_class=HelpFormatter))
    for add in (_add_demo, _add_check, _add_compare, _add_train, _add_derive, _add_graph,
                _add_bench, _add_exercise):
        add(sub)
    return parser


def _split_bench_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """``bench NAME... -- ARGS``: the arguments before ``--``, and ARGS for the scripts
    (argparse would take ARGS for more names)."""
    if argv[:1] == ["bench"] and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    argv, extra = _split_bench_extra(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if extra:
        args.extra = [*args.extra, *extra]
    try:
        return args.func(args)
    except UsageError as exc:
        if getattr(args, "traceback", False) and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        print(f"tinygrad-attn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
