"""Helpers for a user's own test suite (pytest or unittest): ``tinygrad_attn.testing``.

``assert_gradients_match`` checks an engine function's gradients;
``assert_matches_reference`` checks a PyTorch or JAX function against an engine
reference (PyTorch or JAX load only when it runs)."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

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


def assert_matches_reference(reference: Callable[..., Any], implementation: Callable[..., Any],
                             shapes: Mapping[str, Sequence[int]], framework: str = "torch",
                             **options: Any) -> Any:
    """Assert that a PyTorch or JAX ``implementation`` computes what the engine
    ``reference`` computes: outputs, VJPs and Hessian-vector products, in float64 and
    float32, on random inputs of ``shapes`` and on the edge cases of attention
    (:func:`tinygrad_attn.interop.compare`, whose ``options`` -- ``dtypes``, ``cases``,
    ``roles``, ``seed`` -- pass through).

    The assertion message is the comparison's report: each failing case, dtype and
    quantity with its worst element named (input, batch, head, query, key).  A cell
    beyond the tolerance but within the reference's own float floor (undecided) does
    not fail.  Returns the report when it passes.

    >>> def test_my_torch_attention():
    ...     assert_matches_reference(reference, my_attention,
    ...                              {"q": (2, 4, 8), "k": (2, 5, 8), "v": (2, 5, 8)})
    """
    from .verify.interop import compare

    report = compare(reference, implementation, shapes, framework=framework, **options)
    if not report.ok:
        raise AssertionError(f"{implementation.__name__} does not match the reference\n"
                             + str(report))
    return report
