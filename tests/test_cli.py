"""The command line: `tinygrad-attn check` on a user's own variant, and its errors."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn.cli import main
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
