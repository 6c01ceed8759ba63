"""Before long symbolic work: the estimate line, then a progress bar over the phases.

On a terminal (a StringIO whose ``isatty`` says so) a run estimated at
``ANNOUNCE_SECONDS`` or more prints ``symbolic check: ...`` and redraws one bar per call;
elsewhere nothing is printed unless ``progress=True``; ``progress=False`` and the CLI's
``--no-progress`` turn it off.  No timing: the threshold is moved instead of the clock.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn import attention as A
from tinygrad_attn import cli
from tinygrad_attn.study import derivations
from tinygrad_attn.verify import estimate as E
from tinygrad_attn.verify.progress import Progress
from tinygrad_attn.verify.symbolic import PHASES, derive, exact_gradients

SHAPES = {"Q": (3, 2), "K": (4, 2), "V": (4, 2)}


def sdpa(Q, K, V):
    return A.scaled_dot_product(Q, K, V, fused=False)[0]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def long_runs(monkeypatch):
    """Every run counts as long (the threshold at zero seconds), and no other test's
    bar is left drawing."""
    monkeypatch.setattr(E, "ANNOUNCE_SECONDS", 0.0)
    monkeypatch.setattr(Progress, "drawing", False)


def _bars(text: str) -> list[str]:
    """The bar lines drawn, in order (redraws split on carriage returns)."""
    return [p for line in text.splitlines() for p in line.split("\r")
            if p.startswith("symbolic ") and not p.startswith("symbolic check")]


def test_on_a_terminal_a_long_run_prints_the_estimate_then_a_bar_to_the_end(long_runs):
    out = Terminal()
    der = derive(sdpa, SHAPES, stream=out)
    proof = der.prove_engine()
    text = out.getvalue()
    est = E.estimate(sdpa, SHAPES)
    assert text.splitlines()[0] == E.announcement(est)
    assert text.splitlines()[0].startswith(f"symbolic check: {est.symbols} symbols, ~")
    bars = _bars(text)
    assert bars[0].startswith(f"symbolic 0/{len(PHASES)} [") and "forward" in bars[0]
    assert bars[-1].startswith(f"symbolic {len(PHASES)}/{len(PHASES)} [{'=' * 24}]")
    assert proof.verdict in bars[-1]
    assert text.count("\n") == 3                 # the estimate, derive's line, the proof's
    assert not Progress.drawing


def test_a_short_run_on_a_terminal_prints_nothing():
    out = Terminal()
    derive(sdpa, SHAPES, stream=out).prove_engine()
    assert E.estimate(sdpa, SHAPES).seconds < E.ANNOUNCE_SECONDS
    assert out.getvalue() == ""


def test_nothing_is_printed_when_the_stream_is_not_a_terminal(long_runs):
    out = io.StringIO()
    derive(sdpa, SHAPES, stream=out).prove_engine()
    assert out.getvalue() == ""


def test_progress_false_is_silent_even_on_a_terminal(long_runs):
    out = Terminal()
    derive(sdpa, SHAPES, stream=out, progress=False).prove_engine()
    assert out.getvalue() == ""


def test_progress_true_writes_plain_lines_anywhere_counting_every_phase():
    out = io.StringIO()
    derive(sdpa, SHAPES, stream=out, progress=True).prove_engine()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("symbolic check: ")
    counts = [line.split()[1] for line in lines[1:]]
    assert counts == ["0/3", "1/3", "1/3", "2/3", "3/3"]
    assert "\r" not in out.getvalue()


def test_no_bar_inside_another_bar(long_runs):
    outer, inner = Terminal(), Terminal()
    with Progress(2, stream=outer) as bar:
        bar.update(1, "outer work")
        derive(sdpa, SHAPES, stream=inner).prove_engine()
    assert inner.getvalue() == ""
    derive(sdpa, SHAPES, stream=inner)
    assert inner.getvalue().startswith("symbolic check: ")


def test_exact_gradients_counts_its_phases_and_the_sampled_proof():
    rng = np.random.default_rng(0)
    xs = [ta.Tensor(rng.standard_normal(s), requires_grad=True) for s in SHAPES.values()]
    gs = [rng.standard_normal((3, 2))]
    out = io.StringIO()
    exact_gradients(sdpa, xs, gs, progress=True, stream=out)
    assert [line.split()[1] for line in out.getvalue().splitlines()[1:]][-1] == "2/2"
    out = io.StringIO()
    exact_gradients(sdpa, xs, gs, progress=True, stream=out, sample=3)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith(f"symbolic 4/4 [{'=' * 24}]") and "proven" in last


def test_gradcheck_progress_goes_to_stderr_and_is_off_by_default(capsys):
    rng = np.random.default_rng(0)
    xs = [ta.Tensor(rng.standard_normal(s), requires_grad=True) for s in SHAPES.values()]
    ta.gradcheck(sdpa, *xs, symbolic=True)
    assert capsys.readouterr().err == ""          # pytest's stderr is not a terminal
    report = ta.gradcheck(sdpa, *xs, symbolic=True, progress=True)
    err = capsys.readouterr().err
    assert report.ok and err.startswith("symbolic check: ") and "2/2" in err


def test_cli_check_and_derive_accept_no_progress(tmp_path, capsys):
    src = tmp_path / "mine.py"
    src.write_text("def f(q, k):\n    return (q @ k.mT).softmax(axis=-1)\n")
    code = cli.main(["check", f"{src}:f", "--shape", "q=2x2", "--shape", "k=3x2",
                     "--symbolic", "--no-progress"])
    assert code == 0 and capsys.readouterr().err == ""
    assert cli.main(["derive", "softmax", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_derive_draws_one_line_per_document_on_a_terminal():
    out, echoed = Terminal(), []
    assert derivations.report(["softmax"], echo=echoed.append, stream=out) == 0
    lines = out.getvalue().split("\n")
    assert lines[0].endswith(lines[0].split("\r")[-1])
    assert lines[0].split("\r")[-1].startswith("derive 0/1 [") and "softmax" in lines[0]
    assert lines[1].split("\r")[-1].startswith(f"derive 1/1 [{'=' * 24}] done")
    assert len(echoed) == 1
