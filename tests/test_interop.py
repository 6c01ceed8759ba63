"""tinygrad_attn.interop: a PyTorch or JAX implementation against its engine reference.

Correct implementations pass (scaled dot-product attention with masks, additive
attention, in both frameworks); each planted bug fails and is named at the right input
and element; float32 is judged with float32 tolerances; bad calls get clear errors.
Needs torch and jax (the extras ``[torch]`` and ``[jax]``, installed by CI).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import tinygrad_attn as ta
from tinygrad_attn import interop
from tinygrad_attn.cli import load_function, main
from tinygrad_attn.testing import assert_matches_reference

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "interop_torch_sdpa.py"
EXAMPLE_JAX = ROOT / "examples" / "interop_jax_sdpa.py"
SHAPES = {"q": (2, 4, 8), "k": (2, 5, 8), "v": (2, 5, 8), "mask": (4, 5)}
ADDITIVE = {"query": (3, 4), "keys": (5, 4), "values": (5, 2), "W_q": (4, 3), "W_k": (4, 3),
            "v": (3,), "mask": (3, 5)}


def example(name):
    return load_function(f"{EXAMPLE}:{name}")


def example_jax(name):
    return load_function(f"{EXAMPLE_JAX}:{name}")


def reference(q, k, v, mask):
    return ta.attention.scaled_dot_product(q, k, v, mask=mask)[0]


def additive_reference(query, keys, values, W_q, W_k, v, mask):
    return ta.attention.additive(query, keys, values, W_q, W_k, v, mask=mask)[0]


# ----------------------------------------------------------------------------- implementations

def torch_additive(query, keys, values, W_q, W_k, v, mask):
    scores = torch.tanh((query @ W_q)[..., :, None, :] + (keys @ W_k)[..., None, :, :]) @ v
    return safe_softmax_torch(scores, mask) @ values


def safe_softmax_torch(s, mask):
    return example("masked_softmax")(s, mask)


def jax_additive(query, keys, values, W_q, W_k, v, mask):
    scores = jnp.tanh((query @ W_q)[..., :, None, :] + (keys @ W_k)[..., None, :, :]) @ v
    return example_jax("masked_softmax")(scores, mask) @ values


def torch_unshifted(q, k, v, mask):
    """softmax as exp(s) / sum exp(s), no max shift: overflows in float32 at large logits."""
    e = torch.exp(q @ k.mT / q.shape[-1] ** 0.5) * mask
    return e / e.sum(-1, keepdim=True).clamp_min(1e-30) @ v


# ----------------------------------------------------------------------------- correct ones pass

def test_a_correct_torch_sdpa_passes_every_case_in_both_dtypes():
    report = assert_matches_reference(reference, example("sdpa"), SHAPES, framework="torch")
    assert report.ok and report.status in ("ok", "undecided")
    assert {c.case for c in report.cells} == set(interop.BUILTIN)
    assert {c.dtype for c in report.cells} == {"float64", "float32"}
    assert len(report.cells) == len(interop.BUILTIN) * 2 * 3
    assert not report.failures


def test_a_correct_torch_additive_attention_passes_with_the_logits_through_v():
    roles = interop.Roles(query="query", key="keys", value="values", mask="mask", logits="v")
    report = assert_matches_reference(additive_reference, torch_additive, ADDITIVE,
                                      roles=roles)
    assert "large_logits" in {c.case for c in report.cells}


def test_the_roles_are_read_from_the_parameter_names():
    assert interop.Roles.infer(list(ADDITIVE)) == interop.Roles(
        query="query", key="keys", value="values", mask="mask", logits="query")
    assert interop.Roles.infer(["x", "y"]) == interop.Roles()


def test_correct_jax_implementations_pass():
    report = assert_matches_reference(reference, example_jax("sdpa"), SHAPES, framework="jax")
    assert len(report.cells) == 36
    assert_matches_reference(additive_reference, jax_additive, ADDITIVE, framework="jax",
                             cases=["random", "masked_row"], dtypes=["float64"])


# ----------------------------------------------------------------------------- planted bugs

def failing(report, case, kind, dtype="float64"):
    cell = next(c for c in report.cells if (c.case, c.kind, c.dtype) == (case, kind, dtype))
    assert cell.status == "FAIL", str(report)
    return cell


def test_the_mask_applied_after_the_softmax_is_caught_at_a_query_with_a_masked_key():
    report = interop.compare(reference, example("sdpa_v1"), SHAPES)
    assert not report.ok
    worst = failing(report, "random", "output").worst
    b, i, _ = worst.index
    assert worst.where == f"batch {b}, query {i}"
    mask = interop.cases.random_inputs(list(SHAPES), SHAPES, interop.Roles.infer(
        list(SHAPES)), np.random.default_rng(0))["mask"]
    assert not mask[i].all()                # the row has a masked key: its weights leak
    single = [c for c in report.cells if c.case == "single_key"]
    assert all(c.ok for c in single)        # one key, never masked: the bug cannot show


def test_a_missing_scale_in_the_backward_is_caught_in_q_and_k_not_v():
    report = interop.compare(reference, example("sdpa_v2"), SHAPES, cases=["random"])
    assert all(c.ok for c in report.cells if c.kind == "output")
    cell = failing(report, "random", "VJP")
    assert sorted(cell.failed) == ["VJP of k", "VJP of q"]
    assert cell.worst.where.startswith("batch ") and "query" in cell.worst.where
    assert cell.worst.impl / cell.worst.ref == pytest.approx(np.sqrt(8), rel=1e-9)


def test_a_fully_masked_row_giving_nan_is_named_masked():
    report = interop.compare(reference, example("sdpa_v3"), SHAPES, cases=["masked_row"])
    out = failing(report, "masked_row", "output").worst
    assert np.isnan(out.impl) and out.ref == 0 and out.index[1] == 0
    assert out.where == f"batch {out.index[0]}, query 0"
    vjp = failing(report, "masked_row", "VJP").worst
    assert "masked (zero weight)" in vjp.where


def test_a_backward_autograd_cannot_differentiate_fails_the_hvp_only():
    report = interop.compare(reference, example("sdpa_v3"), SHAPES, cases=["random"])
    assert [c.kind for c in report.cells if not c.ok] == ["HVP", "HVP"]
    assert any("VJP of v does not depend on the inputs through autograd" in n
               for n in report.all_notes())
    assert "HVP of " in str(report)


def test_a_jax_backward_held_constant_fails_the_hvp_only():
    report = interop.compare(reference, example_jax("sdpa_custom_vjp"), SHAPES, framework="jax",
                             cases=["random"], dtypes=["float64"])
    assert [c.kind for c in report.cells if not c.ok] == ["HVP"]
    assert failing(report, "random", "HVP").worst.quantity in ("HVP of q", "HVP of k")


def test_float32_is_judged_with_float32_tolerances():
    """The correct float32 run differs from the float64 reference by far more than the
    float64 tolerance and passes; the unshifted softmax overflows in float32 only."""
    report = interop.compare(reference, example("sdpa"), SHAPES, cases=["random"])
    f32 = [c for c in report.cells if c.dtype == "float32"]
    assert report.tolerances == {"float64": (1e-12, 1e-10), "float32": (1e-5, 1e-3)}
    assert all(c.ok for c in f32) and max(c.max_error for c in f32) > 1e-8
    bad = interop.compare(reference, torch_unshifted, SHAPES, cases=["large_logits"])
    assert [c.ok for c in bad.cells if c.dtype == "float64"] == [True] * 3
    assert not np.isfinite(failing(bad, "large_logits", "output", "float32").worst.impl)


def test_an_implementation_that_raises_is_reported_with_its_line():
    def broken(q, k, v, mask):
        return q[..., 0, :] @ k.mT @ v if k.shape[-2] > 1 else q.squeeze(7)

    report = interop.compare(reference, broken, SHAPES, cases=["single_key"],
                             dtypes=["float64"])
    assert [c.status for c in report.cells] == ["error"] * 3
    assert "IndexError" in report.cells[0].problem
    assert f"test_interop.py:{broken.__code__.co_firstlineno + 1}" in report.cells[0].problem


# ----------------------------------------------------------------------------- cases and report

def test_a_user_case_runs_and_one_that_does_not_apply_is_noted():
    def tiny_values(inputs, rng):
        return {**inputs, "v": inputs["v"] * 1e-3}

    def never(inputs, rng):
        return None

    report = interop.compare(reference, example("sdpa"), SHAPES,
                             cases=["causal", tiny_values, never], dtypes=["float64"])
    assert [c.case for c in report.cells] == ["causal"] * 3 + ["tiny_values"] * 3
    assert "case never: does not apply" in str(report)
    no_mask = interop.compare(lambda q, k, v: reference(q, k, v, None),
                              lambda q, k, v: example("sdpa")(q, k, v, torch.ones(4, 5) > 0),
                              {"q": (4, 8), "k": (5, 8), "v": (5, 8)}, dtypes=["float64"])
    assert "case masked_row: does not apply (needs a mask parameter)" in str(no_mask)
    assert {c.case for c in no_mask.cells} == {"random", "large_logits", "single_key",
                                               "batch_heads"}


def test_a_scalar_temperature_and_a_single_query():
    def ref(q, k, v, beta):
        return ta.attention.dot_product(q * beta, k, v)[0]

    def impl(q, k, v, beta):
        return torch.softmax(k @ (q * beta), -1) @ v

    report = interop.compare(ref, impl, {"q": (8,), "k": (5, 8), "v": (5, 3), "beta": ()})
    assert report.ok and report.shapes["beta"] == ()
    assert {c.case for c in report.cells} == {"random", "large_logits", "single_key"}
    wrong = interop.compare(ref, lambda q, k, v, beta: impl(q, k, v, beta * 1.001), {
        "q": (8,), "k": (5, 8), "v": (5, 3), "beta": ()}, cases=["random"])
    assert "VJP of beta" in failing(wrong, "random", "VJP").failed


def test_the_report_reads_as_text_and_marks_failing_cells_in_html():
    report = interop.compare(reference, example("sdpa_v2"), SHAPES, cases=["random"],
                             dtypes=["float64"])
    text = repr(report)
    assert text.splitlines()[0].endswith("FAIL (2 of 3 comparisons)")
    assert "random        float64  ok         FAIL       FAIL" in text
    html = report._repr_html_()
    assert html.count("background:#f8d7da") == 2 and "<table>" in html
    assert "VJP of q[" in html


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("call, message", [
    (lambda: interop.compare(reference, lambda q, k, v: q, SHAPES),
     "the signatures differ: the reference is reference(q, k, v, mask)"),
    (lambda: interop.compare(reference, example("sdpa"), {**SHAPES, "x": (2,)}),
     "shapes for ['x'] name no parameter of the reference reference(q, k, v, mask)"),
    (lambda: interop.compare(reference, example("sdpa"), {"q": (4, 8)}),
     "no shape for parameter 'k'"),
    (lambda: interop.compare(reference, example("sdpa"), {**SHAPES, "k": (2, 5, 7)}),
     "the reference reference fails at q=(2, 4, 8), k=(2, 5, 7)"),
    (lambda: interop.compare(reference, example("sdpa"), {**SHAPES, "q": (4, 0)}),
     "shapes['q'] = (4, 0): expected a tuple of positive ints"),
    (lambda: interop.compare(reference, example("sdpa"), SHAPES, framework="tf"),
     "framework must be one of torch, jax"),
    (lambda: interop.compare(reference, example("sdpa"), SHAPES, cases=["nope"]),
     "no built-in case 'nope'"),
    (lambda: interop.compare(lambda q, k, v, mask: ta.attention.scaled_dot_product(
        q, k, v, mask=mask), example("sdpa"), SHAPES), "return one Tensor"),
    (lambda: interop.compare(reference, example("sdpa"), SHAPES,
                             roles=interop.Roles(mask="m")),
     "roles: mask='m' is not a parameter of the reference"),
])
def test_bad_calls_get_clear_errors(call, message):
    with pytest.raises((ValueError, TypeError)) as err:
        call()
    assert message in str(err.value)


def test_the_pytest_helper_fails_with_the_report():
    with pytest.raises(AssertionError) as err:
        assert_matches_reference(reference, example("sdpa_v2"), SHAPES, cases=["random"])
    assert "sdpa_v2 does not match the reference" in str(err.value)
    assert "VJP of q[" in str(err.value)


# ----------------------------------------------------------------------------- command line

ARGS = ["--shape", "q=2x4x8", "--shape", "k=2x5x8", "--shape", "v=2x5x8",
        "--shape", "mask=4x5", "--case", "random", "--case", "masked_row"]


def test_the_cli_exit_codes(capsys):
    ref = f"{EXAMPLE}:reference"
    assert main(["compare", ref, f"{EXAMPLE}:sdpa", *ARGS]) == 0
    assert "(torch) against the reference reference" in capsys.readouterr().out
    assert main(["compare", ref, f"{EXAMPLE}:sdpa_v3", *ARGS]) == 1
    assert "masked_row, output (float64, float32): output[0, 0, 0]" in capsys.readouterr().out
    assert main(["compare", ref, f"{EXAMPLE}:sdpa", "--shape", "q=4x8"]) == 2
    assert "no shape for parameter 'k'" in capsys.readouterr().err


def test_the_cli_tells_the_framework_or_asks_for_it(tmp_path, capsys):
    plain = tmp_path / "plain.py"
    plain.write_text("def f(q, k, v, mask):\n    return q\n")
    assert main(["compare", f"{EXAMPLE}:reference", f"{plain}:f", *ARGS]) == 2
    assert "give --framework torch or --framework jax" in capsys.readouterr().err


def test_the_cli_takes_the_roles(tmp_path, capsys):
    """Additive attention: the logits are linear in its scoring vector v (--logits v)."""
    ref, impl = tmp_path / "ref.py", tmp_path / "impl.py"
    ref.write_text("import tinygrad_attn as ta\n\n"
                   "def additive(query, keys, values, W_q, W_k, v, mask):\n"
                   "    return ta.attention.additive(query, keys, values, W_q, W_k, v, mask)[0]\n")
    impl.write_text("import torch\n\n"
                    "def additive(query, keys, values, W_q, W_k, v, mask):\n"
                    "    s = torch.tanh((query @ W_q)[:, None] + (keys @ W_k)[None]) @ v\n"
                    "    s = s.masked_fill(~mask, float('-inf'))\n"
                    "    return torch.softmax(s, -1) @ values\n")
    shapes = [f"--shape={n}={'x'.join(map(str, s))}" for n, s in ADDITIVE.items()]
    argv = ["compare", f"{ref}:additive", f"{impl}:additive", *shapes, "--case", "large_logits"]
    assert main([*argv, "--logits", "v"]) == 0
    assert "large_logits  float64  ok" in capsys.readouterr().out
    assert main([*argv, "--logits", "w"]) == 2
    assert "roles: logits='w' is not a parameter of the reference" in capsys.readouterr().err


def test_a_case_the_reference_rejects_is_noted():
    def picky(q, k, v, mask):
        if k.shape[-2] < 2:
            raise ValueError("needs two keys")
        return reference(q, k, v, mask)

    report = interop.compare(picky, example("sdpa"), SHAPES, cases=["random", "single_key"],
                             dtypes=["float64"])
    assert {c.case for c in report.cells} == {"random"}
    assert "case single_key: the reference rejects it (ValueError: needs two keys (" in \
        str(report)


def test_importing_the_package_or_interop_loads_neither_torch_nor_jax():
    code = ("import sys, tinygrad_attn as ta\nfrom tinygrad_attn import interop\n"
            "import tinygrad_attn.testing\nprint(sorted(m for m in ('torch', 'jax') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_the_guide_shows_what_the_command_prints(capsys):
    """docs/interop.md: each pasted run of `tinygrad-attn compare` is its output now."""
    import re
    import shlex

    page = (ROOT / "docs" / "interop.md").read_text()
    runs = re.findall(r"```console\n\$ (tinygrad-attn compare (?:[^\n]*\\\n)*[^\n]*)\n"
                      r"(.*?)\nexit code (\d)\n```", page, flags=re.S)
    assert len(runs) == 5
    for command, shown, code in runs:
        argv = shlex.split(command.replace("\\\n", " "))[1:]
        argv[1:3] = [str(ROOT / a) for a in argv[1:3]]
        assert main(argv) == int(code)
        printed = capsys.readouterr().out.rstrip("\n")
        assert settled(printed) == settled(shown), command


def settled(text):
    """A report without what rounding decides: numbers below 1e-9, and whether a cell
    within its float floor is ok or undecided (the verdicts, failures and values stay)."""
    import re

    text = re.sub(r"\n\nundecided \(.*?(?=\nnote: |\Z)", "", text, flags=re.S)
    text = re.sub(r": ok \(.*\)$", ": ok", text, flags=re.M).replace("undecided", "ok       ")
    return re.sub(r"-?\d\.\d+e-(?:09|[1-9]\d\d?)", "~0", text)
