"""The command line: `tinygrad-attn check` on a user's own variant, and its errors."""
from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn.cli import (HelpFormatter, UsageError, build_parser, main, make_inputs,
                               parse_shape, undocumented_options)
from tinygrad_attn.testing import assert_gradients_match

VARIANT = textwrap.dedent('''
    import tinygrad_attn as ta

    def sigmoid_attention(q, k, v):
        """Sigmoid attention: weights sigma(q k^T / sqrt(d) - log n), no softmax."""
        n, d = k.shape
        w = ((q @ k.mT) * (1.0 / d ** 0.5) - float(__import__("math").log(n))).sigmoid()
        return w @ v

    class WrongSquare(ta.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2.1 * x          # should be 2 x

    def wrong(q):
        return WrongSquare.apply(q).sum()

    def raises(q):
        raise ValueError("q must be positive")

    def calls_a_helper(q):
        return helper(q)

    def helper(q):
        return q @ q                    # a 3-vector times itself: fine; (2, 3) @ (2, 3) fails

    def temperature(q, k, tau):
        return ((q @ k.mT) / tau).softmax(-1)
''')


@pytest.fixture()
def variant(tmp_path):
    path = tmp_path / "my_variant.py"
    path.write_text(VARIANT)
    return path


def test_check_passes_a_correct_variant_and_prints_the_table(variant, capsys):
    code = main(["check", f"{variant}:sigmoid_attention", "--shape", "q=3x4",
                 "--shape", "k=5x4", "--shape", "v=5x2", "--seed", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASSED" in out
    for name, shape in (("q", "3x4"), ("k", "5x4"), ("v", "5x2")):
        assert any(line.split()[:2] == [name, shape] for line in out.splitlines())


def test_check_fails_a_wrong_vjp_with_exit_code_1(variant, capsys):
    code = main(["check", f"{variant}:wrong", "--shape", "q=2x2"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED" in out and "FAIL" in out.splitlines()[-1]


def test_check_of_a_function_that_never_returns_stops_at_the_time_limit(tmp_path, capsys):
    path = tmp_path / "spin.py"
    path.write_text("def spins(q):\n    while True:\n        pass\n")
    code = main(["check", f"{path}:spins", "--shape", "q=2", "--time-limit", "0.5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "spins did not finish within 0.5 s (--time-limit 0.5)" in err
    assert main(["check", f"{path}:spins", "--shape", "q=2", "--time-limit", "-1"]) == 2
    assert "bad --time-limit -1" in capsys.readouterr().err


def test_check_symbolic_sample_proves_elements_and_max_symbols_refuses(variant, capsys):
    code = main(["check", f"{variant}:sigmoid_attention", "--shape", "q=2x2", "--shape",
                 "k=3x2", "--shape", "v=3x1", "--symbolic", "--sample", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "note: sample:" in out and "proven" in out
    code = main(["check", f"{variant}:sigmoid_attention", "--shape", "q=2x2", "--shape",
                 "k=3x2", "--shape", "v=3x1", "--symbolic", "--max-symbols", "5"])
    assert code == 2 and "symbols" in capsys.readouterr().err


def test_check_report_dir_writes_a_heat_map_per_input(variant, tmp_path, capsys):
    out_dir = tmp_path / "maps"
    code = main(["check", f"{variant}:wrong", "--shape", "q=2x2", "--report-dir",
                 str(out_dir)])
    assert code == 1, capsys.readouterr().out
    maps = sorted(p.name for p in out_dir.iterdir())
    assert maps and all(name.endswith(".png") for name in maps)
    assert "gradcheck_q.png" in maps


@pytest.mark.parametrize("args,message", [
    (["check", "missing.py:f", "--shape", "q=2"], "no such file: missing.py"),
    (["check", "VARIANT:nothing", "--shape", "q=2"], "has no function 'nothing'"),
    (["check", "VARIANT:wrong", "--shape", "q=2by2"], "bad --shape 'q=2by2'"),
    (["check", "VARIANT:wrong"], "missing --shape for parameter 'q'"),
    (["check", "VARIANT:wrong", "--shape", "z=2"], "are not parameters of wrong"),
    (["check", "VARIANT:raises", "--shape", "q=2"], "raises raised ValueError: q must be"),
    (["check", "no_such_module_xyz:f"], "cannot import module 'no_such_module_xyz'"),
])
def test_check_errors_are_one_line_with_exit_code_2(variant, capsys, args, message):
    args = [a.replace("VARIANT", str(variant)) for a in args]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_help_is_available_for_every_command(capsys):
    commands = ("demo", "check", "train", "derive", "graph", "bench")
    for argv in [["--help"]] + [[c, "--help"] for c in commands]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "FILE.py:FUNCTION" in out
    assert all(f"usage: tinygrad-attn {c}" in out for c in commands)
    assert "--model {rnn,transformer}" in out and "--eval-every" in out   # train's options
    assert "claim_cost" in out                                             # derive's names


def test_train_options_are_checked_by_the_one_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "reverse", "--model", "lstm"])
    assert exc.value.code == 2
    assert "invalid choice: 'lstm'" in capsys.readouterr().err


def test_assert_gradients_match_raises_with_the_report_as_message():
    x = ta.Tensor(np.array([0.5, -1.0]), requires_grad=True, name="x")
    assert assert_gradients_match(lambda x: (x * x).tanh(), x).ok

    class Off(ta.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 3.0

        @staticmethod
        def backward(ctx, g):
            return g * 3.001

    with pytest.raises(AssertionError, match=r"(?s)gradients do not match.*x .*FAIL"):
        assert_gradients_match(lambda x: Off.apply(x), x)


# ----------------------------------------------------------------------------- help

def help_text(*argv: str) -> str:
    """The help ``tinygrad-attn ARGV --help`` prints, on one line (argparse wraps it)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(out.getvalue().split())


def test_every_option_of_every_command_has_help_and_shows_its_default():
    assert undocumented_options(build_parser()) == []
    text = help_text("check")
    assert "--eps EPS finite-difference step (default: by dtype" in text
    assert "--max-symbols N with --symbolic: refuse a symbolic run of more input symbols " \
           "(default: 4096)" in text
    text = help_text("train")
    for option, default in (("--model", "rnn"), ("--seed", "0"), ("--dtype", "float32"),
                            ("--steps", "800 rnn, 1500 transformer"), ("--batch-size", "64 rnn"),
                            ("--eval-every", "0")):
        assert re.search(re.escape(option) + r" .*?\(default: " + re.escape(default), text), option


def test_the_help_audit_reports_an_option_without_help_or_default():
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("run", formatter_class=HelpFormatter)
    p.add_argument("--quiet", type=int, default=3)                   # no help at all
    p.add_argument("--limit", type=float, default=None, help="a limit")  # default not shown
    p.add_argument("--fine", type=int, default=2, help="shown by the formatter")
    p.add_argument("--flag", action="store_true", help="a flag: off unless given")
    plain = sub.add_parser("plain")                                  # argparse's formatter
    plain.add_argument("--size", type=int, default=5, help="a size")
    assert undocumented_options(parser) == ["run --quiet: no help text",
                                            "run --limit: no default shown",
                                            "plain --size: no default shown"]


def test_every_name_a_command_accepts_is_in_its_help():
    from tinygrad_attn.pictures.figures import FIGURES
    from tinygrad_attn.study.data import TASKS
    from tinygrad_attn.study.derivations import NAMES

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    benchmarks = sorted(p.name[len("bench_"):-len(".py")] for p in folder.iterdir()
                        if p.name.startswith("bench_") and p.suffix == ".py")
    assert "exp" in benchmarks and len(NAMES) >= 14        # the lists are not empty
    for command, names in (("derive", NAMES), ("bench", benchmarks), ("graph", FIGURES),
                           ("train", TASKS)):
        text = help_text(command)
        assert [n for n in names if not re.search(rf"\b{n}\b", text)] == [], command


def test_bench_passes_what_follows_the_names_to_the_scripts(monkeypatch):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda argv, env: calls.append(argv) or 0)
    assert main(["bench", "complexity", "--", "--quick"]) == 0
    assert main(["bench", "engine", "attention", "--sizes", "32"]) == 0
    assert [(Path(c[1]).name, c[2:]) for c in calls] == [
        ("bench_complexity.py", ["--quick"]), ("bench_engine.py", ["--sizes", "32"]),
        ("bench_attention.py", ["--sizes", "32"])]
    assert main(["bench", "complexity", "quick"]) == 2         # a name that is no benchmark


# ----------------------------------------------------------------------------- inputs

def test_shapes_with_ranges_make_inputs_in_the_range(variant):
    from tinygrad_attn.cli import load_function

    fn = load_function(f"{variant}:temperature")
    q, k, tau = make_inputs(fn, ["q=2x3", "k=4x3", "tau=scalar:positive"], seed=3)
    assert (q.shape, k.shape, tau.shape, tau.name) == ((2, 3), (4, 3), (), "tau")
    assert 0.5 <= float(tau.data) <= 2.0
    rng = np.random.default_rng(3)                     # without a range: N(0, 1) as before
    assert np.array_equal(q.data, rng.standard_normal((2, 3)))
    taus = [float(make_inputs(fn, ["q=1x1", "k=1x1", "tau=:0.1..0.2"], seed=s)[2].data)
            for s in range(20)]
    assert all(0.1 <= t <= 0.2 for t in taus) and len(set(taus)) == 20
    spec = parse_shape("s=3x2:-1..1e-3")
    assert (spec.name, spec.shape, spec.range) == ("s", (3, 2), (-1.0, 1e-3))
    assert parse_shape("q=4x8").range is None


@pytest.mark.parametrize("text,message", [
    ("tau=scalar:warm", "the range must be LOW..HIGH"),
    ("tau=scalar:2..1", "needs finite LOW < HIGH"),
    ("tau=scalar:0..inf", "needs finite LOW < HIGH"),
    ("tau=scalar:0..x", "the range must be LOW..HIGH"),
    ("q=0x2:positive", "dimensions must be positive"),
])
def test_a_bad_range_is_a_clear_error(text, message):
    with pytest.raises(UsageError, match=re.escape(f"bad --shape {text!r}: ") + ".*" +
                       re.escape(message)):
        parse_shape(text)


def test_graph_draws_a_function_of_arguments_with_a_positive_scalar(variant, tmp_path, capsys):
    out = tmp_path / "t.svg"
    code = main(["graph", f"{variant}:temperature", "--shape", "q=2x3", "--shape", "k=4x3",
                 "--shape", "tau=scalar:positive", "-o", str(out), "--renderer", "wasm"])
    assert code == 0, capsys.readouterr().err
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and ">tau<" in svg and ">softmax" in svg
    assert main(["graph", f"{variant}:temperature", "--shape", "q=2x3"]) == 2
    assert "missing --shape for parameter 'k' of temperature" in capsys.readouterr().err
    assert main(["graph", "causal", "--shape", "q=2"]) == 2
    assert "--shape is for a function" in capsys.readouterr().err


def test_an_error_in_the_users_function_names_its_file_and_line(variant, capsys):
    line = VARIANT.splitlines().index("    return q @ q                    "
                                      "# a 3-vector times itself: fine; (2, 3) @ (2, 3) fails")
    for command in ("check", "graph"):
        assert main([command, f"{variant}:calls_a_helper", "--shape", "q=2x3"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert f"tinygrad-attn {command}: error: calls_a_helper raised ValueError: matmul" in err
        assert f"(at {variant}:{line + 1}, in helper: return q @ q" in err
    assert main(["check", f"{variant}:calls_a_helper", "--shape", "q=2x3", "--traceback"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert f'File "{variant}", line {line + 1}, in helper' in err
    assert err.strip().splitlines()[-1].startswith("tinygrad-attn check: error: calls_a_helper")


def test_a_file_that_fails_to_import_names_the_line(tmp_path, capsys):
    path = tmp_path / "bad_import.py"
    path.write_text("import math\n\nSCALE = math.sqrt(-1)\n\ndef f(q):\n    return q\n")
    assert main(["check", f"{path}:f", "--shape", "q=2"]) == 2
    err = capsys.readouterr().err
    assert f"failed to import: ValueError: math domain error (at {path}:3, in <module>: " \
           f"SCALE = math.sqrt(-1))" in err
