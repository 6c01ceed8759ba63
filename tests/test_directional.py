"""gradcheck's fast mode: random directions pass correct gradients (float64 and float32)
and the bisection names the wrong element of a wrong backward -- one element, several,
a wrong scale, a missing transpose, the second of three inputs -- and ``mode="auto"``
picks the mode by size.  Small sizes only; the speed is in benchmarks/bench_gradcheck.py."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn import attention as A
from tinygrad_attn.cli import main
from tinygrad_attn.verify import directional


def tap(indices, error: float = 0.5) -> type[ta.Function]:
    """An identity Function whose backward is off by a relative ``error`` at ``indices``."""

    class Tap(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            g = np.array(g)
            for index in indices:
                g[index] = g[index] * (1 + error)
            return g

    return Tap


def qkv(rng, shape=(2, 12, 8), dtype=np.float64):
    return [ta.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True, name=n)
            for n in "qkv"]


def failed(report):
    return [r for r in report.inputs if r.status == "FAIL"]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fast_mode_passes_correct_attention(fused, dtype):
    q, k, v = qkv(np.random.default_rng(1), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the float32 warning
        report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(
            q, k, v, causal=True, fused=fused)[0], q, k, v, mode="fast")
    assert report.ok, report
    assert report.mode == "fast" and report.directions == directional.DIRECTIONS
    assert str(report).startswith("gradcheck: PASSED (fast: 4 random directions")
    assert all(r.fd.reference == "directional" for r in report.inputs)


def test_the_fast_mode_passes_multi_head_self_attention_parameters():
    rng = np.random.default_rng(2)
    x = ta.Tensor(rng.standard_normal((2, 6, 8)), requires_grad=True, name="X")
    ws = [ta.Tensor(rng.standard_normal((8, 8)) / 3, requires_grad=True, name=f"W{c}")
          for c in "qkv"]
    report = ta.gradcheck(lambda *t: A.self_attention(*t, causal=True), x, *ws,
                          mode="fast", directions=2)
    assert report.ok, report
    assert report.directions == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_wrong_element_is_found_and_named(dtype):
    q, k, v = qkv(np.random.default_rng(0), dtype=dtype)
    wrong = tap([(1, 4, 2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, wrong.apply(k), v)[0],
                              q, k, v, mode="fast")
    assert report.status == "FAILED"
    (row,) = failed(report)
    assert row.name == "k" and row.worst_index == (1, 4, 2)
    assert row.fd.where == "batch 1, key 4"
    assert row.analytical == pytest.approx(1.5 * row.numerical, rel=1e-2)
    assert [r.status for r in report.inputs] == ["ok", "FAIL", "ok"]
    note = next(n for n in report.notes if n.startswith("k: "))
    assert "found [1, 4, 2]" in note and "more wrong elements may exist" not in note


def test_a_wrong_element_in_the_second_of_three_inputs_is_found_there():
    rng = np.random.default_rng(3)
    q = ta.Tensor(rng.standard_normal((5, 4)), requires_grad=True, name="q")
    keys = ta.Tensor(rng.standard_normal((7, 4)), requires_grad=True, name="keys")
    values = ta.Tensor(rng.standard_normal((7, 3)), requires_grad=True, name="values")
    wrong = tap([(6, 1)], error=-0.2)
    report = ta.gradcheck(lambda a, b, c: A.scaled_dot_product(a, wrong.apply(b), c)[0],
                          q, keys, values, mode="fast")
    (row,) = failed(report)
    assert (row.name, row.worst_index) == ("keys", (6, 1))
    assert "key 6" in row.fd.where


def test_several_wrong_elements_are_followed_up_to_the_limit():
    q, k, v = qkv(np.random.default_rng(0))
    planted = [(1, 4, 2), (0, 7, 5), (0, 1, 1), (1, 11, 7), (0, 3, 3)]
    wrong = tap(planted, error=0.3)
    report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, wrong.apply(k), v)[0],
                          q, k, v, mode="fast")
    (row,) = failed(report)
    assert row.worst_index in planted
    found = [tuple(int(i) for i in j) for j in np.argwhere(row.fd.errors > 0)]
    assert len(found) == directional.LOCATE_LIMIT and set(found) <= set(planted)
    note = next(n for n in report.notes if n.startswith("k: "))
    assert all(str(list(j)) in note for j in found)
    assert "more wrong elements may exist" in note


def test_a_wrong_scale_and_a_missing_transpose_fail():
    class Twice(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            return 2 * np.asarray(g)

    class MatMul(ta.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g @ b.T, a @ g               # the right one is a.T @ g

    rng = np.random.default_rng(4)
    q, k, v = qkv(rng, shape=(6, 4))
    scaled = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, Twice.apply(v))[0],
                          q, k, v, mode="fast")
    assert [r.status for r in scaled.inputs] == ["ok", "ok", "FAIL"]
    assert scaled.inputs[2].analytical == pytest.approx(2 * scaled.inputs[2].numerical)
    a, b = (ta.Tensor(rng.standard_normal((6, 6)), requires_grad=True, name=n) for n in "ab")
    transposed = ta.gradcheck(lambda a, b: MatMul.apply(a, b).softmax(-1), a, b, mode="fast")
    assert [r.status for r in transposed.inputs] == ["ok", "FAIL"]


def test_a_step_across_a_kink_is_retried_smaller_and_a_wrong_relu_still_fails():
    x = ta.Tensor(np.array([1e-5, -1e-5, 1.0, -2.0]), requires_grad=True, name="x")
    report = ta.gradcheck(lambda x: x.relu() * x, x, mode="fast")
    assert report.ok, report             # steps of 7.4e-4 cross the kinks at +-1e-5

    class LeakyBackward(ta.Function):    # relu whose backward lets 10 % through below 0
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return np.maximum(a, 0)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * np.where(a > 0, 1.0, 0.1)

    wrong = ta.gradcheck(lambda x: LeakyBackward.apply(x) * 3.0, x, mode="fast")
    (row,) = failed(wrong)
    assert row.worst_index in [(1,), (3,)]


def test_auto_picks_the_mode_by_size():
    rng = np.random.default_rng(5)
    small = qkv(rng, shape=(4, 3))
    assert ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, v)[0], *small).mode \
        == "full"
    n = directional.AUTO_ELEMENTS // 3 // 4 + 1           # just above the limit
    large = qkv(rng, shape=(n, 4))
    assert sum(t.size for t in large) > directional.AUTO_ELEMENTS
    report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, v)[0], *large)
    assert report.mode == "fast" and report.ok, report
    assert directional.choose_mode("auto", large, symbolic=True, report_dir=None,
                                   directions=4) == "full"
    assert directional.choose_mode("auto", large, symbolic=False, report_dir="d",
                                   directions=4) == "full"


@pytest.mark.parametrize("options, match", [
    ({"mode": "quick"}, "mode must be"),
    ({"mode": "fast", "directions": 0}, "directions must be a positive int"),
    ({"mode": "fast", "symbolic": True}, "use mode='full'"),
])
def test_bad_options_are_refused_by_name(options, match):
    x = ta.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=match):
        ta.gradcheck(lambda x: x * x, x, **options)


def test_the_miss_probability_bound():
    assert directional.miss_probability(1.0, 10.0, 4) == pytest.approx(
        (np.sqrt(2 / np.pi) / 10) ** 4)
    assert directional.miss_probability(1.0, 0.5, 2) == 1.0      # no bound: capped at 1
    assert directional.miss_probability(1.0, 0.0, 4) == 1.0


def test_the_report_names_the_mode_in_text_and_html():
    q, k, v = qkv(np.random.default_rng(6), shape=(3, 2))
    report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, v)[0], q, k, v,
                          mode="fast", directions=3)
    assert "direction " in str(report) and "(0.8 tol / ||e||_2)^3" in str(report)
    assert "fast: 3 random directions" in report._repr_html_()


def test_the_cli_runs_the_fast_mode(tmp_path, capsys):
    path = tmp_path / "variant.py"
    path.write_text("import tinygrad_attn as ta\n\n"
                    "def sdpa(q, k, v):\n"
                    "    return ta.attention.scaled_dot_product(q, k, v)[0]\n")
    code = main(["check", f"{path}:sdpa", "--shape", "q=4x3", "--shape", "k=5x3",
                 "--shape", "v=5x2", "--mode", "fast", "--directions", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("gradcheck: PASSED (fast: 2 random directions")
    assert main(["check", f"{path}:sdpa", "--shape", "q=4x3", "--shape", "k=5x3",
                 "--shape", "v=5x2", "--mode", "fast", "--directions", "0"]) == 2
    assert "bad --directions 0" in capsys.readouterr().err
