"""Verifiers: is the engine's gradient right, and are the closed forms true?

* ``gradcheck.py`` -- ``ta.gradcheck``: the engine's backward against central finite
  differences and, with ``symbolic=True``, SymPy's exact gradient; ``report.py`` its table,
  ``judge.py`` the verdicts (failed, undecided), ``floors.py`` what finite differences and
  float64 can resolve, ``locate.py`` the worst element in attention terms and its tags,
  ``heatmap.py`` the error heat maps, ``progress.py`` the one progress bar;
  ``directional.py`` its fast mode (random directions, bisection to the wrong element).
* ``symbolic.py`` -- ``ta.symbolic``: exact gradients of engine functions (``derive``) and
  proofs of the engine's backward at explicit sizes; ``equivalence.py`` decides that two
  arrays of expressions are equal, ``evaluation.py`` evaluates expressions numerically,
  ``latex.py`` writes a derivation as LaTeX (notebooks).
* ``indexcalc.py`` -- a normal form for sums in index notation, a prover for every size;
  ``indexforms.py`` the mechanisms in that notation, ``everysize.py`` the claims proven
  with it and the sections the derivation documents embed; ``ownbackward.py`` the
  engine's own forward and backward run on index arrays of symbolic size
  (``engine/indexbackend.py``) and proven for every size.
* ``atoms.py``, ``field.py``, ``bounds.py``, ``identity.py`` -- the exact decision: the
  transcendental atoms lifted to independent variables, identity testing in random prime
  fields with a degree and height bound; ``dag.py`` the reference derivative (reverse
  mode over the SymPy expression graph); ``estimate.py`` the size and time of a run.
* ``proof.py`` -- ``Proof``, the one result type of both provers, and its verdicts.
* ``interop/`` -- ``ta.interop``: a PyTorch or JAX implementation against its engine
  reference (outputs, VJPs, Hessian-vector products; the edge cases of attention);
  PyTorch and JAX load only when a comparison runs (the extras ``[torch]``, ``[jax]``).

Only ``gradcheck`` and the modules of its report load with ``import tinygrad_attn``; everything that
needs SymPy loads on first use.  The pytest helpers are in ``tinygrad_attn.testing``.
"""
