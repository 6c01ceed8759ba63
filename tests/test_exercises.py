"""The exercises: every solution passes, wrong answers are rejected with a hint that
locates the error and never prints the solution, and the command line works."""
from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest

from tinygrad_attn.cli import main
from tinygrad_attn.study.derivations import NAMES
from tinygrad_attn.study.exercises import EXERCISES, check, exercises_for, template
from tinygrad_attn.study.solutions import SOLUTIONS, handout


def test_at_least_twelve_exercises_each_on_a_derivation_page_with_a_solution():
    assert len(EXERCISES) >= 12
    assert set(SOLUTIONS) == set(EXERCISES)
    assert all(ex.page in NAMES for ex in EXERCISES.values())
    assert sum(len(exercises_for(p)) for p in NAMES) == len(EXERCISES)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_solution_passes_its_check(name):
    verdict = check(name, SOLUTIONS[name])
    assert verdict.ok, str(verdict)


def sdpa_dQ_without_the_rowsum(Q, K, V, G):
    P = (Q @ K.mT / math.sqrt(3)).softmax(-1)
    return (P * (G @ V.mT)) @ K / math.sqrt(3)


def sdpa_dV_unscaled(Q, K, V, G):
    return (Q @ K.mT).softmax(-1).mT @ G


def sdpa_dV_times_two(Q, K, V, G):
    return SOLUTIONS["sdpa_dV"](Q, K, V, G) * 2


def sdpa_dK_of_the_wrong_shape(Q, K, V, G):
    return Q.mT @ G


def jacobian_without_the_outer_product(s, G):
    p = s.softmax(-1).reshape(3, 1)
    return p * np.eye(3)


def general_dW_transposed(Q, K, V, W, G):
    return SOLUTIONS["general_dW"](Q, K, V, W, G).mT


def sdpa_dV_forgetting_G(Q, K, V, G):
    return (Q @ K.mT / math.sqrt(3)).softmax(-1).mT @ V[:2]


@pytest.mark.parametrize("name, answer, hint", [
    ("sdpa_dQ", sdpa_dQ_without_the_rowsum, "6 of 6 elements differ"),
    ("sdpa_dV", sdpa_dV_unscaled, "at a random point, your V[0, 0] ="),
    ("sdpa_dV", sdpa_dV_times_two, "times a constant 2:"),
    ("sdpa_dK", sdpa_dK_of_the_wrong_shape, "has shape (3, 2); the gradient of K must give "
                                            "K's shape (3, 3)"),
    ("softmax_jacobian", jacobian_without_the_outer_product, "elements differ from the "
                                                              "exact gradient: J[0, 0]"),
    ("general_dW", general_dW_transposed, "the transpose of the gradient"),
    ("sdpa_dV", sdpa_dV_forgetting_G, "does not depend on G"),
])
def test_a_wrong_answer_is_rejected_with_a_hint_and_no_solution(name, answer, hint):
    verdict = check(name, answer)
    assert not verdict.ok
    text = str(verdict)
    assert hint in text, text
    hints = text.partition("\n")[2]
    assert "softmax" not in hints and "@" not in hints   # no formula of the solution


def test_a_wrong_crossover_names_the_wrong_values():
    verdict = check("cost_crossover", lambda d: d + 1)
    assert not verdict.ok and "crossover(2) = 3 is too small" in str(verdict)


def test_an_answer_that_raises_says_what_and_where():
    def broken(Q, K, V, G):
        return K.mT @ V.mT                 # (3, 3) @ (2, 3): the shapes do not chain

    text = str(check("sdpa_dV", broken))
    assert "not yet" in text and "raised ValueError: matmul" in text
    assert f"{__file__}, line " in text


def test_derivation_pages_end_with_their_exercises():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "derivations"
    for page in {ex.page for ex in EXERCISES.values()}:
        text = (root / f"{page}.md").read_text(encoding="utf-8")
        assert "## Exercises" in text
        for ex in exercises_for(page):
            assert f"(`{ex.name}`)" in text


def test_the_handout_has_every_solution_and_the_pages_have_none():
    text = handout()
    for name, fn in SOLUTIONS.items():
        assert f"def {fn.__name__}(" in text and f"`{name}`" in text


def test_cli_lists_shows_checks_and_writes_solutions(tmp_path, capsys):
    assert main(["exercise"]) == 0
    assert "sdpa_dQ" in capsys.readouterr().out
    assert main(["exercise", "sdpa_dQ"]) == 0
    assert template("sdpa_dQ") in capsys.readouterr().out
    good = tmp_path / "good.py"
    good.write_text(textwrap.dedent("""
        import math
        def dV(Q, K, V, G):
            return (Q @ K.mT / math.sqrt(3)).softmax(-1).mT @ G
    """), encoding="utf-8")
    assert main(["exercise", "sdpa_dV", f"{good}:dV"]) == 0
    assert "correct" in capsys.readouterr().out
    assert main(["exercise", "sdpa_dK", f"{good}:dV"]) == 1
    assert "not yet" in capsys.readouterr().out
    assert main(["exercise", "nope"]) == 2
    out = tmp_path / "solutions.md"
    assert main(["exercise", "--solutions", str(out)]) == 0
    assert "# Solutions" in out.read_text(encoding="utf-8")


def test_the_exercises_page_shows_real_output():
    """docs/exercises.md: both answers it shows give exactly the verdicts it prints."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs/exercises.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    answers = [b for b in blocks if "def dQ" in b]
    assert len(answers) == 2
    for code in answers:
        space: dict = {}
        exec(code, space)
        assert str(check("sdpa_dQ", space["dQ"])) in page
