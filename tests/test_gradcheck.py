"""gradcheck's reports: float32 judged as float32, floors (undecided, not failed), each
reference's own worst element, a floored relative error, elements named in the
mechanism's terms and tagged, heat maps, repr and HTML -- each with a negative control."""
from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn import attention as A
from tinygrad_attn.testing import assert_gradients_match
from tinygrad_attn.verify import floors
from tinygrad_attn.verify.gradcheck import DEFAULTS, precision, tolerances
from tinygrad_attn.verify.judge import relative_error


def tap(index: tuple[int, ...], error: float) -> type[ta.Function]:
    """An identity op whose backward is off by a relative ``error`` at ``index`` only: a
    controlled VJP bug placed on one element of whatever flows through it."""

    class Tap(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            g = np.array(g)
            g[index] = g[index] * (1 + error)
            return g

    return Tap


def tensors(rng, names_shapes, dtype=np.float64):
    return [ta.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True, name=n)
            for n, shape in names_shapes]


def sdpa(q, k, v):
    return A.scaled_dot_product(q, k, v)[0]


def close_keys(tau: float, noise: float, seed: int = 2):
    """Cosine attention with temperature ``tau`` and two keys within ``noise`` of the query
    (the example of docs/tutorial.md): unsaturated weights (about 1/2 each) computed from
    scores near 1/tau that cancel."""
    rng = np.random.default_rng(seed)
    q0 = rng.standard_normal((1, 8))
    k0 = q0 + noise * rng.standard_normal((2, 8))
    inputs = [ta.Tensor(q0, requires_grad=True, name="q"),
              ta.Tensor(k0, requires_grad=True, name="k"),
              ta.Tensor(rng.standard_normal((2, 2)), requires_grad=True, name="v")]
    return (lambda q, k, v: A.content(q, k, v, beta=1 / tau)[0]), inputs


# ----------------------------------------------------------------------------- float32

@pytest.mark.parametrize("fused", [True, False])
def test_a_correct_float32_attention_passes_with_float32_tolerances(fused):
    q, k, v = tensors(np.random.default_rng(0), [("q", (3, 4)), ("k", (5, 4)), ("v", (5, 3))],
                      np.float32)
    with pytest.warns(RuntimeWarning, match="finite differences are unreliable at float32"):
        report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, v, fused=fused)[0],
                              q, k, v)
    assert report.status == "PASSED", str(report)
    assert (report.eps, report.atol, report.rtol) == (1e-2, 1e-4, 1e-2)
    assert "judged with float32 tolerances" in "\n".join(report.notes)


def test_a_correct_float32_attention_passes_against_sympy():
    q, k, v = tensors(np.random.default_rng(1), [("q", (2, 3)), ("k", (3, 3)), ("v", (3, 2))],
                      np.float32)
    with pytest.warns(RuntimeWarning):
        report = ta.gradcheck(sdpa, q, k, v, symbolic=True)
    assert report.ok, str(report)
    assert (report.sym_atol, report.sym_rtol) == (1e-5, 1e-3)
    # the float32 engine is really off by float32 rounding, which float64 tolerances reject
    assert max(r.sym.max_abs_err for r in report.inputs) > 1e-9


@pytest.mark.parametrize("symbolic", [False, True])
def test_a_wrong_float32_backward_still_fails_at_its_element(symbolic):
    """Negative control: 5 % wrong in one element of the keys' gradient."""
    q, k, v = tensors(np.random.default_rng(1), [("q", (2, 3)), ("k", (3, 3)), ("v", (3, 2))],
                      np.float32)
    wrong = tap((1, 2), 0.05)
    with pytest.warns(RuntimeWarning):
        report = ta.gradcheck(lambda q, k, v: sdpa(q, wrong.apply(k), v), q, k, v,
                              symbolic=symbolic)
    assert report.status == "FAILED"
    rows = {r.name: r for r in report.inputs}
    assert rows["q"].passed and rows["v"].passed and rows["k"].status == "FAIL"
    comparison = rows["k"].sym if symbolic else rows["k"].fd
    assert comparison.worst_index == (1, 2) and comparison.where == "key 1"


def test_explicit_tolerances_override_the_float32_defaults():
    """float64 tolerances on float32 inputs: the old verdict, now only when asked for."""
    q, k, v = tensors(np.random.default_rng(0), [("q", (3, 4)), ("k", (5, 4)), ("v", (5, 3))],
                      np.float32)
    with pytest.warns(RuntimeWarning):
        report = ta.gradcheck(sdpa, q, k, v, eps=1e-6, atol=1e-8, rtol=1e-6)
    assert not report.ok and report.eps == 1e-6


def test_the_check_runs_in_the_least_precise_dtype_of_inputs_and_outputs():
    x64 = ta.Tensor(np.ones(2), requires_grad=True)
    x32 = ta.Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    assert precision([x64], [x64]) == np.float64
    assert precision([x64], [x32]) == np.float32
    assert tolerances(np.float16) == DEFAULTS["float32"]
    assert tolerances(np.float64, rtol=1e-3).rtol == 1e-3
    assert tolerances(np.float64, rtol=1e-3).atol == DEFAULTS["float64"].atol


# ----------------------------------------------------------------------------- floors

def test_saturating_cosine_attention_is_undecided_by_finite_differences_not_failed():
    """At tau = 1e-3 finite differences are at their float64 rounding floor: undecided,
    with the condition of L, never a bare FAIL."""
    fn, inputs = close_keys(1e-3, 1e-3)
    report = ta.gradcheck(fn, *inputs)
    assert report.status == "UNDECIDED" and not report.ok
    q = report.inputs[0]
    assert q.fd.status == "undecided" and q.fd.max_abs_err > 1e-8  # beyond atol + rtol|FD|
    note = next(n for n in report.notes if n.startswith("q: finite differences cannot"))
    assert "rounding error" in note and "times u |L|" in note
    assert "rerun with symbolic=True" in note


def test_saturating_cosine_attention_passes_when_sympy_decides():
    fn, inputs = close_keys(1e-3, 1e-3)
    report = ta.gradcheck(fn, *inputs, symbolic=True)
    assert report.status == "PASSED", str(report)
    q = report.inputs[0]
    assert q.fd.status == "undecided" and q.sym.status == "ok"
    assert any("SymPy decides: the engine agrees with it" in n for n in report.notes)


def test_a_wrong_backward_at_the_rounding_floor_still_fails_against_sympy():
    """Negative control: 1e-7 relative in one element, invisible to finite differences at
    this point, is FAILED by SymPy and named at its element."""
    fn, inputs = close_keys(1e-3, 1e-3)
    wrong = tap((0, 3), 1e-7)
    report = ta.gradcheck(lambda q, k, v: fn(wrong.apply(q), k, v), *inputs, symbolic=True)
    q = report.inputs[0]
    assert report.status == "FAILED" and q.fd.status != "FAIL" and q.sym.status == "FAIL"
    assert q.sym.worst_index == (0, 3) and q.sym.where == "query 0"


def test_an_ill_conditioned_gradient_is_undecided_against_sympy():
    """At tau = 1e-8 the float64 gradient itself moves under a few ulps: the disagreement
    with SymPy is within that floor, and a real error far above it still fails."""
    fn, inputs = close_keys(1e-8, 1e-7, seed=0)
    report = ta.gradcheck(fn, *inputs, symbolic=True)
    assert report.status == "UNDECIDED", str(report)
    assert "FAIL" not in {r.status for r in report.inputs}
    assert any(r.sym.status == "undecided" for r in report.inputs)
    assert any("within the float floor of this gradient" in n for n in report.notes)
    wrong = tap((1, 4), 1e-4)
    bad = ta.gradcheck(lambda q, k, v: fn(q, wrong.apply(k), v), *inputs, symbolic=True)
    k = bad.inputs[1]
    assert bad.status == "FAILED" and k.sym.status == "FAIL" and k.sym.worst_index == (1, 4)


def test_the_rounding_estimate_sees_cancellation():
    """(x + 1e8) - 1e8 is x, computed through a value 1e8 times larger: condition ~1e8."""
    x = ta.Tensor(np.array([0.3, -0.7]), requires_grad=True)
    out = (x + 1e8) - 1e8
    r = floors.rounding_error([out], [np.ones(2)])
    assert r.nodes == 2 and r.condition > 1e7
    assert r.error == pytest.approx(floors.unit_roundoff(np.float64) * (2e8 + 1.0), rel=0.1)
    well = floors.rounding_error([x * 2.0], [np.ones(2)])
    assert well.condition < 10


def test_classify_and_truncation():
    err, tol = np.array([0.5, 2.0, 5.0, np.nan]), np.ones(4)
    assert list(floors.classify(err, tol, 3.0)) == [floors.OK, floors.UNDECIDED, floors.FAIL,
                                                    floors.FAIL]
    assert floors.truncation_error(np.array([1.0]), np.array([1.3]))[0] == pytest.approx(0.1)


# ----------------------------------------------------------------------------- worst elements

class SoftplusOff(ta.Function):
    """softplus with a backward off by 1e-7 relative everywhere (the tutorial's example)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return ctx.xp.log(1 + ctx.xp.exp(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.xp.sigmoid(x) * (1 + 1e-7)


def test_each_reference_shows_its_own_worst_element_with_its_own_values():
    """The output carries an offset of 1e3, so finite differences are noisiest at another
    element than the one where the engine is furthest from SymPy: each line shows its own
    element and the values there."""
    x = ta.Tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True, name="x")
    report = ta.gradcheck(lambda x: SoftplusOff.apply(x) + 1e3, x, symbolic=True)
    (row,) = report.inputs
    g = np.random.default_rng(0).standard_normal(3)     # the upstream gradient (seed 0)
    exact = g / (1 + np.exp(-x.data))
    j = row.sym.worst_index
    assert j == (int(np.argmax(np.abs(exact))),)        # where 1e-7 relative is largest
    assert row.fd.worst_index != j                      # FD's worst is another element
    assert row.sym.symbolic == pytest.approx(exact[j], rel=1e-14)
    assert row.sym.engine == pytest.approx(exact[j] * (1 + 1e-7), rel=1e-14)
    assert abs(row.sym.engine - row.sym.symbolic) == pytest.approx(row.sym.max_abs_err)
    i = row.fd.worst_index
    assert row.fd.symbolic == pytest.approx(exact[i], rel=1e-14)
    lines = str(report).splitlines()
    fd_line = next(s for s in lines if "|engine-FD|" in s)
    sym_line = next(s for s in lines if "|engine-sympy|" in s)
    assert f"[{i[0]}]" in fd_line and f"{row.fd.numerical:.10g}" in fd_line
    assert f"[{j[0]}]" in sym_line and f"{row.sym.symbolic:.10g}" in sym_line
    assert sym_line.rstrip().endswith("FAIL") and fd_line.rstrip().endswith("ok")


# ----------------------------------------------------------------------------- relative error

def test_relative_error_is_floored_and_zero_for_exact_zeros():
    assert relative_error(np.array(0.0), np.array(0.0), 1e-8, 1e-6) == 0.0
    assert relative_error(np.array(1e-300), np.array(0.0), 1e-8, 1e-6) == pytest.approx(1e-298)
    assert relative_error(np.array(1e-7), np.array(10.0), 1e-8, 1e-6) == pytest.approx(1e-8,
                                                                                      rel=1e-2)
    rng = np.random.default_rng(0)
    e, r = rng.standard_normal(1000) * 1e-7, rng.standard_normal(1000) * 10.0 ** \
        rng.integers(-6, 2, 1000)
    passes = np.abs(e) <= 1e-8 + 1e-6 * np.abs(r)
    assert np.array_equal(relative_error(np.abs(e), r, 1e-8, 1e-6) <= 1e-6, passes)


def test_a_saturated_attention_never_reports_a_huge_relative_error():
    """Regression: weights of 1e-303 made rows that were ok read 'max rel err 8e+245'."""
    rng = np.random.default_rng(0)
    q, k, v = tensors(rng, [("q", (2, 4)), ("k", (3, 4)), ("v", (3, 2))])
    report = ta.gradcheck(lambda q, k, v: A.content(q, k, v, beta=1000.0)[0], q, k, v,
                          symbolic=True)
    assert report.ok, str(report)
    assert all(c.max_rel_err <= 1e-6 for r in report.inputs for c in (r.fd, r.sym))
    assert "saturated" in report.inputs[0].fd.where


def test_exact_zero_gradients_have_zero_relative_error():
    """A fully masked query row: its gradient is exactly zero for engine and FD."""
    rng = np.random.default_rng(0)
    q, k, v = tensors(rng, [("q", (3, 4)), ("k", (4, 4)), ("v", (4, 2))])
    mask = np.ones((3, 4), dtype=bool)
    mask[1] = False
    report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, k, v, mask=mask)[0],
                          q, k, v)
    assert report.ok
    rel = report.inputs[0].fd.relative
    assert np.all(rel[1] == 0.0) and np.all(np.isfinite(rel))


# ----------------------------------------------------------------------------- locations, tags

def test_a_wrong_batched_masked_backward_is_named_in_the_mechanism_terms():
    rng = np.random.default_rng(3)
    q, k, v = tensors(rng, [("q", (2, 3, 4)), ("k", (2, 5, 4)), ("v", (2, 5, 3))])
    mask = np.ones((2, 3, 5), dtype=bool)
    mask[1, :, 4] = False                                       # key 4 of batch 1: padding
    cases = [(0, (1, 2, 0), "batch 1, query 2"), (1, (0, 3, 1), "batch 0, key 3"),
             (2, (1, 0, 2), "batch 1, key 0 (value)")]
    for which, index, where in cases:
        wrong = tap(index, 0.01)

        def fn(q, k, v, which=which, wrong=wrong):
            args = [q, k, v]
            args[which] = wrong.apply(args[which])
            return A.scaled_dot_product(*args, mask=mask)[0]

        report = ta.gradcheck(fn, q, k, v)
        row = report.inputs[which]
        assert report.status == "FAILED" and row.status == "FAIL", str(report)
        assert row.fd.worst_index == index and row.fd.where == where


def test_a_masked_key_is_tagged_and_a_gradient_leaking_into_it_fails():
    """Negative control: a backward that puts gradient on a padded key."""
    rng = np.random.default_rng(3)
    q, k, v = tensors(rng, [("q", (3, 4)), ("k", (5, 4)), ("v", (5, 3))])
    mask = np.ones((3, 5), dtype=bool)
    mask[:, 4] = False

    class Leak(ta.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            g = np.array(g)
            g[4, 1] += 0.5
            return g

    report = ta.gradcheck(lambda q, k, v: A.scaled_dot_product(q, Leak.apply(k), v,
                                                               mask=mask)[0], q, k, v)
    row = report.inputs[1]
    assert row.status == "FAIL" and row.fd.worst_index == (4, 1)
    assert row.fd.where == "key 4 [masked (zero weight)]"


@pytest.mark.parametrize("fused", [True, False])
def test_multi_head_parameters_and_self_attention_positions_are_named(fused):
    rng = np.random.default_rng(4)
    x, Wq, Wk, Wv, Wo = tensors(rng, [("x", (2, 4, 8)), ("W_q", (8, 8)), ("W_k", (8, 8)),
                                      ("W_v", (8, 8)), ("W_o", (8, 8))])
    for param, index, where in [(1, (2, 5), "head 1"), (1, (6, 3), "head 0"),
                                (0, (1, 2, 3), "batch 1, position 2")]:
        wrong = tap(index, 0.01)

        def fn(x, *W, param=param, wrong=wrong):
            args = [x, *W]
            args[param] = wrong.apply(args[param])
            return A.multi_head(args[0], args[0], *args[1:], num_heads=2, fused=fused)[0]

        report = ta.gradcheck(fn, x, Wq, Wk, Wv, Wo)
        row = report.inputs[param]
        assert row.status == "FAIL" and row.fd.worst_index == index
        assert row.fd.where.split(" [")[0] == where


def test_an_element_near_a_relu_kink_is_tagged_and_undecided_not_failed():
    rng = np.random.default_rng(0)
    s, v = tensors(rng, [("scores", (3, 5)), ("values", (5, 2))])
    s.data[1, 2] = 3e-7                                         # within the step of 0
    fn = lambda s, v: A.attend(s.relu(), v)[0]                  # noqa: E731
    report = ta.gradcheck(fn, s, v)
    row = report.inputs[0]
    assert report.status == "UNDECIDED" and row.fd.status == "undecided"
    assert row.fd.worst_index == (1, 2)
    assert row.fd.where == "query 1, key 2 [near a kink (relu)]"
    assert any("of a kink (relu)" in n for n in report.notes)
    assert ta.gradcheck(fn, s, v, symbolic=True).ok
    s.data[1, 2] = 0.3                                          # away from it: no tag
    far = ta.gradcheck(fn, s, v)
    assert far.ok and "kink" not in str(far)


def test_a_function_without_attention_has_no_where_column():
    x = ta.Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    report = ta.gradcheck(lambda x: (x * x).tanh(), x)
    assert "where" not in str(report).splitlines()[1]


# ----------------------------------------------------------------------------- outputs

def test_report_dir_writes_one_heat_map_per_input(tmp_path):
    rng = np.random.default_rng(0)
    q, k, v = tensors(rng, [("q", (2, 3, 4)), ("k", (2, 5, 4)), ("v", (2, 5, 3))])
    report = ta.gradcheck(sdpa, q, k, v, report_dir=tmp_path / "maps")
    names = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert names == ["gradcheck_k.png", "gradcheck_q.png", "gradcheck_v.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (tmp_path / "maps").iterdir())
    assert len(report.files) == 3 and "written: " in str(report)


def test_heat_maps_leave_pyplot_and_import_time_alone(tmp_path):
    code = ("import numpy as np, sys, tinygrad_attn as ta\n"
            "assert 'matplotlib' not in sys.modules\n"
            "x = ta.Tensor(np.ones((2, 2)), requires_grad=True, name='a/b')\n"
            f"r = ta.gradcheck(lambda x: x * x, x, report_dir={str(tmp_path)!r})\n"
            "print('matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules, r.files)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("True False") and "gradcheck_a_b.png" in out


def test_repr_is_the_table_and_html_is_a_table():
    x = ta.Tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True, name="x<1>")
    report = ta.gradcheck(lambda x: SoftplusOff.apply(x), x, symbolic=True)
    assert repr(report) == str(report) and repr(report).startswith("gradcheck: FAILED")
    assert "InputReport(name=" not in repr(report)
    assert repr(report.inputs[0]).startswith("InputReport(x<1> 3: FAIL;")
    page = report._repr_html_()
    assert page.count("<table>") == 1 and page.count("<tr") == 3   # head, FD, SymPy
    assert "x&lt;1&gt;" in page and "x<1>" not in page
    assert "#c0392b" in page and "<li>" in page
    failing = [r for r in ([report.inputs[0].fd, report.inputs[0].sym]) if r.status == "FAIL"]
    assert failing and page.count('<tr class="fail"') == len(failing)   # whole lines marked
    passing = ta.gradcheck(lambda x: (x * x).sum(), x)._repr_html_()
    assert passing.count("<tr") == 2 and 'class="fail"' not in passing


def test_undecided_raises_and_says_so():
    fn, inputs = close_keys(1e-3, 1e-3)
    with pytest.raises(ta.GradcheckError, match="UNDECIDED"):
        ta.gradcheck(fn, *inputs, raise_exception=True)
    with pytest.raises(AssertionError, match="could not be decided"):
        assert_gradients_match(fn, *inputs)


def test_the_historical_fields_still_read_the_finite_difference_comparison():
    x = ta.Tensor(np.array([0.3, -1.2, 2.0]), requires_grad=True, name="x")
    (row,) = ta.gradcheck(lambda x: SoftplusOff.apply(x), x, symbolic=True).inputs
    assert (row.ok, row.worst_index, row.numerical, row.analytical, row.symbolic) == (
        row.fd.ok, row.fd.worst_index, row.fd.numerical, row.fd.engine, row.fd.symbolic)
    assert (row.sym_ok, row.sym_max_abs_err, row.sym_worst_index) == (
        False, row.sym.max_abs_err, row.sym.worst_index)


def test_float64_defaults_are_unchanged_and_warn_nothing():
    x = ta.Tensor(np.array([0.3, -1.2]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = ta.gradcheck(lambda x: x.exp(), x)
    assert (report.eps, report.atol, report.rtol) == (1e-6, 1e-8, 1e-6) and not report.notes


# ----------------------------------------------------------------------------- the tutorial

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def printed_reports() -> list[tuple[str, str]]:
    """(code, output) for each Python block of docs/tutorial.md that prints a gradcheck
    report, with the text block that follows it."""
    blocks = re.findall(r"```python\n(.*?)```\s*```\n(.*?)```", TUTORIAL.read_text(), re.S)
    return [(code, out) for code, out in blocks if "print(ta.gradcheck(" in code]


def test_the_tutorial_shows_what_gradcheck_prints_now():
    """The reports pasted into docs/tutorial.md are the ones the code prints."""
    found = printed_reports()
    assert len(found) == 3
    for code, shown in found:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(code, str(TUTORIAL), "exec"), {"__name__": "tutorial"})
        assert out.getvalue().strip() == shown.strip(), code
