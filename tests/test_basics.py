"""The basics (tinygrad_attn/study/basics.py): why 1/sqrt(d_k), and the weights of every
mechanism on the same queries and keys (docs/mechanisms.md)."""
from __future__ import annotations

import numpy as np

from tinygrad_attn.study import basics


def _flat(values: list[float], tol: float) -> bool:
    """The check the scaled scores must pass: a quantity that does not drift with d_k."""
    return max(values) / min(values) < tol


def test_scaled_scores_keep_unit_variance_and_unscaled_grow_as_d_k():
    """Vaswani et al. 2017, sec. 3.2.1, footnote 4: q . k of unit-variance entries has
    variance d_k; dividing by sqrt(d_k) brings it back to 1."""
    r = basics.scaling(widths=(4, 64, 1024), rows=400)
    assert _flat(r["variance_scaled"], 1.5)
    assert not _flat(r["variance_unscaled"], 1.5)                    # negative control
    ratio = np.array(r["variance_unscaled"]) / np.array(r["d_k"])
    assert np.all((ratio > 0.7) & (ratio < 1.3))


def test_unscaled_softmax_saturates_and_its_gradient_shrinks():
    r = basics.scaling(widths=(4, 1024), rows=400)
    assert r["max_weight_unscaled"][1] > 0.9 > 0.35 > r["max_weight_scaled"][1]
    assert r["gradient_unscaled"][1] < 0.6 * r["gradient_scaled"][1]


def test_every_mechanism_gives_row_stochastic_weights_on_the_same_inputs():
    weights = basics.mechanism_weights()
    assert len(weights) == len(basics.MECHANISMS) == 6
    for name, w in weights.items():
        assert w.shape == (4, 6), name
        assert np.allclose(w.sum(axis=1), 1) and (w >= 0).all(), name
    # the mechanisms differ: no two heat maps are the same picture
    names = list(weights)
    assert all(not np.allclose(weights[a], weights[b]) for i, a in enumerate(names)
               for b in names[i + 1:])
