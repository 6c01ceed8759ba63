"""engine/symcache: remembered free symbols agree with SymPy's; a renaming keeps facts only
when it is one (fresh targets, same assumptions)."""
import sympy as sp

from tinygrad_attn.engine.symcache import free_symbols, is_renaming, keep_facts, srepr
from tinygrad_attn.verify.indexcalc import freshen

i, j, a, b = sp.symbols("i j a b", integer=True)
n, d = sp.symbols("n d", positive=True, integer=True)
Q, K = sp.IndexedBase("Q"), sp.IndexedBase("K")


def _examples() -> list:
    score = sp.Sum(Q[i, a] * K[j, a], (a, 0, d - 1))
    z = sp.Sum(sp.exp(score.subs(j, b)), (b, 0, n - 1))
    return [score, z, sp.exp(score) / z, sp.Sum(sp.Sum(Q[a, b], (b, 0, a)), (a, 0, n - 1)),
            sp.KroneckerDelta(i, j) * Q[i, j] + sp.tanh(z), sp.Sum(Q[a, a], (a, 0, n - 1),
                                                                   (j, 0, d - 1))]


def test_free_symbols_agree_with_sympy():
    for ex in _examples():
        assert free_symbols(ex) == frozenset(ex.free_symbols)
        assert srepr(ex) == sp.srepr(ex)


def test_a_bound_variable_is_not_free_but_a_bound_in_a_limit_is():
    inner = sp.Sum(Q[a, b], (b, 0, a))      # b bound, a free (in the body and the limit)
    assert a in free_symbols(inner) and b not in free_symbols(inner)


def test_is_renaming_refuses_what_is_not_a_renaming():
    fresh = sp.Dummy("a", integer=True)
    assert is_renaming({a: fresh})
    assert not is_renaming({a: sp.Dummy("a")})                 # other assumptions
    assert not is_renaming({a: fresh, b: fresh})               # not one to one
    assert not is_renaming({a: fresh + 1})                     # not a symbol


def test_keep_facts_hands_over_known_facts_and_freshen_keeps_the_value():
    x = sp.Symbol("x", positive=True)
    old = x + 1
    assert old.is_positive                                     # a fact SymPy derived
    new = sp.Add(sp.Dummy("y", positive=True), 1)
    keep_facts(old, new)
    assert new._assumptions.get("positive") is True
    for ex in _examples()[:3]:
        renamed = freshen(ex)                    # bound variables renamed, facts kept
        assert renamed != ex
        def symbols(e):
            return {s for s in free_symbols(e) if isinstance(s, sp.Symbol)}
        assert symbols(renamed) == symbols(ex)
