"""Helpers for a user's own test suite (pytest or unittest): ``tinygrad_attn.testing``."""
from __future__ import annotations

from typing import Any, Callable

from .verify.gradcheck import GradcheckReport, gradcheck
from .engine import Tensor


def assert_gradients_match(fn: Callable[..., Any], *inputs: Tensor, symbolic: bool = False,
                           **options: Any) -> GradcheckReport:
    """Assert that the engine's gradient of ``fn`` at ``inputs`` matches central finite
    differences (and SymPy's exact gradient with ``symbolic=True``).

    The assertion message is the gradcheck report: each input, its worst element, the
    numerical, engine (and SymPy) values.  A check that is undecided (the references
    cannot resolve the difference at this point) fails the assertion too, with a message
    that says so.  Returns the report when it passes.

    >>> def test_my_attention():
    ...     assert_gradients_match(my_attention, q, k, v, symbolic=True)
    """
    report = gradcheck(fn, *inputs, symbolic=symbolic, **options)
    if report.status == "UNDECIDED":
        raise AssertionError("gradients could not be decided at this point (see the notes)\n"
                             + str(report))
    if not report.ok:
        raise AssertionError("gradients do not match\n" + str(report))
    return report
