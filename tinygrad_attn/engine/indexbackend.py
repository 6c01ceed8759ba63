r"""The index-notation array namespace: arrays of *symbolic* size, for proofs at every size.

A third ``xp`` beside :data:`~tinygrad_attn.engine.backend.numeric` and
:data:`~tinygrad_attn.engine.backend.symbolic`.  An :class:`IndexArray` is a shape of
SymPy sizes ($m$, $n$, $d_k$, ...) and **one** SymPy expression in free index variables,
one per axis: ``Q @ K.T`` of shapes $(m, d_k)$ and $(n, d_k)$ is the array $(m, n)$ whose
element $(i, j)$ is $\sum_{a=0}^{d_k-1} Q_{ia} K_{ja}$.  Inputs are ``sympy.IndexedBase``
entries (:func:`index_input`); the op code of the engine (forward and VJP) runs on them
unchanged, so the gradient it returns is an index expression that
:mod:`tinygrad_attn.verify.ownbackward` compares, for every size, with ``sympy.diff``.

How the engine's Python code meets symbolic sizes: ``IndexArray.shape`` gives each size
symbol a *stand-in* integer, a distinct prime >= 11 (a product of sizes: the product of
theirs), so the engine's shape checks, ``np.empty(shape)`` probes and size arithmetic
run as they do on numbers; wherever an integer comes back into this namespace (a target
shape, ``xp.constant(d_k)``) it is read back as its size by factorisation.  The engine
branches on ranks and on size equalities only, which the stand-ins decide as the symbols
do when the sizes are distinct and > 1 (the generic case; literal sizes must be < 11).

What each operation means (all exact, SymPy imported lazily):

* element-wise ops and broadcasting: the expressions combined at the same indices (an
  axis of size 1 never depends on its index);
* ``np.sum`` over an axis: a ``Sum`` over a fresh bound index; ``matmul``: a ``Sum``
  over the contracted index; transposes, ``broadcast_to``: indices permuted or dropped;
* ``reshape``: inserting or removing axes of size 1, or splitting one axis of size
  $A B$ into $(A, B)$ (index $a B + b$); merging axes would need ``floor`` and ``Mod``
  of an index, which the prover does not reason about, so it raises;
* ``where(M, a, b)`` with ``M`` a 0/1 mask input (:func:`index_input` with
  ``mask=True``): $M a + (1 - M) b$, and $a + \log M$ when $b = -\infty$, so that
  ``exp`` gives $M e^{a}$ (:meth:`IndexBackend.exp` turns $e^{\log M}$ into $M$), and
  $M a = a$ when $a$ has the factor $M$ already (a 0/1 mask is idempotent, $M^2 = M$);
* softmax is the plain $e^x / \sum e^x$ (``stability_shift`` is 0), as symbolically;
* ``is_zero`` is structural: an array is zero only if its expression is 0.  A row of
  masked scores whose normaliser is 0 is assumed away, as the prover assumes every
  $1/Z$ defined.

Anything else (concatenation, slicing with offsets, ``max``, setting items) raises
:class:`IndexUnsupported` naming the operation.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .backend import SymbolicUnsupported, exact_constant
from .symcache import free_symbols, is_renaming, keep_facts

#: The smallest stand-in prime: literal sizes (1, a head count) stay below it.
FIRST_STAND_IN = 11


class IndexUnsupported(SymbolicUnsupported):
    """An operation the index-notation namespace cannot represent (the message names it)."""


def _sp():
    import sympy

    return sympy


# ----------------------------------------------------------------------------- sizes

_STAND_INS: dict[Any, int] = {}      # size symbol -> prime
_SIZES: dict[int, Any] = {}          # prime -> size symbol


def size_symbol(name: str) -> Any:
    """The size ``name`` as a positive integer SymPy symbol (the project's convention)."""
    return _sp().Symbol(name, positive=True, integer=True)


def parse_size(size: Any) -> Any:
    """A size from its name (``"d_k"``), a formula of names (``"H*d_h"``, ``"1"``) or a
    SymPy expression; every name is a positive integer symbol (:func:`size_symbol`)."""
    sp = _sp()
    if not isinstance(size, str):
        return sp.sympify(size)
    if size.isidentifier():
        return size_symbol(size)
    expr = sp.sympify(size)
    return expr.xreplace({s: size_symbol(s.name) for s in expr.free_symbols})


def stand_in(size: Any) -> int:
    """The integer that stands for ``size`` in the engine's shape arithmetic."""
    sp = _sp()
    size = sp.sympify(size)
    if size.is_Integer:
        if not 0 <= int(size) < FIRST_STAND_IN:
            raise IndexUnsupported(f"a literal size must lie in [0, {FIRST_STAND_IN}), "
                                   f"got {size}")
        return int(size)
    if size.is_Symbol:
        if size not in _STAND_INS:
            prime = sp.nextprime(max(_SIZES, default=FIRST_STAND_IN - 1))
            _STAND_INS[size], _SIZES[prime] = prime, size
        return _STAND_INS[size]
    if size.is_Mul:
        return math.prod(stand_in(f) for f in size.args)
    if size.is_Pow and size.exp.is_Integer and size.exp > 0:
        return stand_in(size.base) ** int(size.exp)
    raise IndexUnsupported(f"size {size} is not a product of sizes")


def size_of(value: int) -> Any:
    """The size an integer of the engine's shape arithmetic stands for (its prime
    factors >= 11 read back as their symbols, smaller ones as literals)."""
    sp = _sp()
    value = int(value)
    if value < FIRST_STAND_IN:
        return sp.Integer(value)
    out = sp.Integer(1)
    for prime, power in sp.factorint(value).items():
        if prime >= FIRST_STAND_IN and prime not in _SIZES:
            raise IndexUnsupported(f"the integer {value} stands for no size (its factor "
                                   f"{prime} is not a size's stand-in)")
        out *= (_SIZES.get(prime, sp.Integer(prime))) ** power
    return out


# ----------------------------------------------------------------------------- arrays

def _fresh(name: str = "i") -> Any:
    return _sp().Dummy(name, integer=True)


def substitute(expr: Any, mapping: dict, guard: Any = None) -> Any:
    """Replace sub-expressions at once (symbols, or, with ``guard``, any sub-expressions
    that all contain the symbol ``guard``); functions are rebuilt without evaluating
    them again (re-evaluating ``tanh`` of a ``Sum`` queries SymPy's assumptions at a cost
    out of all proportion to a renaming), Kronecker deltas are.  When ``mapping`` renames
    symbols to symbols the expression does not contain, each rebuilt node keeps the facts
    SymPy knew of the node it renames (:func:`~tinygrad_attn.engine.symcache.keep_facts`)."""
    renaming = guard is None and is_renaming(mapping) and not expr.has(*mapping.values())
    return _substitute(expr, mapping, guard, renaming)


def _substitute(expr: Any, mapping: dict, guard: Any, renaming: bool) -> Any:
    sp = _sp()
    if expr in mapping:
        return mapping[expr]
    keys = {guard} if guard is not None else set(mapping)
    if not expr.args or not (free_symbols(expr) & keys):
        return expr
    args = tuple(_substitute(a, mapping, guard, renaming) for a in expr.args)
    if isinstance(expr, sp.Function) and not isinstance(expr, sp.KroneckerDelta):
        out = expr.func(*args, evaluate=False)
    else:
        out = expr.func(*args)
    if renaming:
        keep_facts(expr, out)
    return out


class IndexArray:
    """A symbolic-size array: ``sizes`` (SymPy), free indices ``idx`` (one per axis) and
    the element ``expr`` at those indices.  ``dtype`` is ``object`` (values) or ``bool``
    (a 0/1 mask).  Immutable: every operation returns a new array."""

    __array_ufunc__ = None          # NumPy defers ``ndarray * IndexArray`` to us

    def __init__(self, sizes: Sequence[Any], expr: Any, idx: Sequence[Any] | None = None,
                 dtype: Any = object) -> None:
        sp = _sp()
        self.sizes = tuple(sp.sympify(s) for s in sizes)
        idx = tuple(_fresh() for _ in self.sizes) if idx is None else tuple(idx)
        ones = {v: sp.Integer(0) for v, s in zip(idx, self.sizes) if s == 1}
        expr = sp.sympify(expr)
        self.idx, self.expr = idx, substitute(expr, ones) if ones else expr
        self.dtype = np.dtype(dtype)

    @property
    def __xp__(self) -> IndexBackend:
        return index

    # -- array facts, in stand-in integers for the engine's Python code
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(stand_in(s) for s in self.sizes)

    @property
    def ndim(self) -> int:
        return len(self.sizes)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def at(self, *indices: Any) -> Any:
        """The element at ``indices`` (expressions): the expression with its free
        indices replaced."""
        if len(indices) != self.ndim:
            raise IndexError(f"at: {len(indices)} indices for an array of {self.ndim} axes")
        return substitute(self.expr, dict(zip(self.idx, indices)))

    def __repr__(self) -> str:
        """The sizes and ``[free indices] -> element``, every index given its own name."""
        sp = _sp()
        names: dict[Any, Any] = {}
        for d in list(self.idx) + sorted(self.expr.atoms(sp.Dummy), key=sp.default_sort_key):
            names.setdefault(d, sp.Symbol(f"{d.name}{len(names)}"))
        shown = substitute(self.expr, names)
        return f"IndexArray(sizes={self.sizes}, [{', '.join(str(names[v]) for v in self.idx)}]" \
               f" -> {shown})"

    # -- arithmetic
    def _binary(self, other: Any, fn: Any, reflected: bool = False) -> IndexArray:
        a, b = (lift(other), self) if reflected else (self, lift(other))
        return elementwise(lambda x, y: fn(x, y), a, b)

    def __add__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x + y)

    def __radd__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x + y, True)

    def __sub__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x - y)

    def __rsub__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x - y, True)

    def __mul__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x * y)

    def __rmul__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x * y, True)

    def __truediv__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x / y)

    def __rtruediv__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x / y, True)

    def __pow__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x ** y)

    def __rpow__(self, o: Any) -> IndexArray:
        return self._binary(o, lambda x, y: x ** y, True)

    def __neg__(self) -> IndexArray:
        return IndexArray(self.sizes, -self.expr, self.idx)

    def __matmul__(self, o: Any) -> IndexArray:
        return matmul(self, lift(o))

    def __rmatmul__(self, o: Any) -> IndexArray:
        return matmul(lift(o), self)

    # -- the array methods the engine calls
    def sum(self, axis: Any = None, keepdims: bool = False) -> IndexArray:
        return reduce_sum(self, axis, keepdims)

    def reshape(self, *shape: Any) -> IndexArray:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return reshape(self, shape)

    def copy(self) -> IndexArray:
        return self

    def __getitem__(self, index: Any) -> IndexArray:
        return getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise IndexUnsupported("setting items (scatter) is not representable: an index "
                               "array is one expression, not a table")

    def __bool__(self) -> bool:
        raise TypeError("IndexArray: the truth value of a symbolic array is undefined")

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        impl = _NUMPY.get(func.__name__)
        if impl is None:
            raise IndexUnsupported(f"numpy.{func.__name__} is not supported on index arrays; "
                                   f"supported: {', '.join(sorted(_NUMPY))}")
        return impl(*args, **kwargs)


def index_input(name: str, sizes: Sequence[Any], mask: bool = False) -> IndexArray:
    """The input ``name`` of shape ``sizes`` (size names or SymPy sizes): element
    ``name[i, j, ...]`` of an ``IndexedBase``; ``mask=True``: a 0/1 mask (dtype bool)."""
    sizes = tuple(parse_size(s) for s in sizes)
    for s in sizes:
        stand_in(s)
    idx = tuple(_fresh() for _ in sizes)
    sp = _sp()
    expr = sp.IndexedBase(name)[idx] if sizes else sp.Symbol(name)
    return IndexArray(sizes, expr, idx, dtype=bool if mask else object)


def lift(x: Any) -> IndexArray:
    """An IndexArray from an IndexArray, a number, a SymPy expression or a 0-d array."""
    if isinstance(x, IndexArray):
        return x
    sp = _sp()
    if isinstance(x, sp.Basic):
        return IndexArray((), x, ())
    arr = np.asarray(x)
    if arr.ndim:
        raise IndexUnsupported(f"a concrete array of shape {arr.shape} has no meaning at "
                               f"symbolic sizes; give it as an index input")
    v = arr.item()
    if isinstance(v, sp.Basic):
        return IndexArray((), v, ())
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return IndexArray((), size_of(int(v)) if v > 0 else sp.Integer(int(v)), ())
    return IndexArray((), exact_constant(float(v)), ())


def _broadcast(*arrays: IndexArray) -> tuple[Any, ...]:
    """The broadcast sizes (NumPy's rule, sizes compared as expressions)."""
    ndim = max(a.ndim for a in arrays)
    out = []
    for k in range(ndim):
        sizes = {a.sizes[a.ndim - ndim + k] for a in arrays if a.ndim - ndim + k >= 0}
        sizes.discard(_sp().Integer(1))
        if len(sizes) > 1:
            raise ValueError(f"index arrays of sizes {[a.sizes for a in arrays]} cannot be "
                             f"broadcast together")
        out.append(sizes.pop() if sizes else _sp().Integer(1))
    return tuple(out)


def _aligned(a: IndexArray, idx: Sequence[Any]) -> Any:
    """``a``'s element at the trailing indices of ``idx`` (broadcasting)."""
    return a.at(*idx[len(idx) - a.ndim:]) if a.ndim else a.expr


def elementwise(fn: Any, *arrays: IndexArray) -> IndexArray:
    """``fn`` of the arrays' elements at the same (broadcast) indices."""
    sizes = _broadcast(*arrays)
    idx = tuple(_fresh() for _ in sizes)
    return IndexArray(sizes, fn(*[_aligned(a, idx) for a in arrays]), idx)


def matmul(a: IndexArray, b: IndexArray) -> IndexArray:
    """NumPy's matmul: a ``Sum`` over the contracted index (1-D operands promoted, batch
    axes broadcast)."""
    sp = _sp()
    one = sp.Integer(1)
    a2 = IndexArray((one,) + a.sizes, a.expr, (_fresh(),) + a.idx) if a.ndim == 1 else a
    b2 = IndexArray(b.sizes + (one,), b.expr, b.idx + (_fresh(),)) if b.ndim == 1 else b
    if a2.ndim < 2 or b2.ndim < 2 or a2.sizes[-1] != b2.sizes[-2]:
        raise ValueError(f"matmul: index arrays of sizes {a.sizes} and {b.sizes} do not "
                         f"match")
    batch = _broadcast(IndexArray(a2.sizes[:-2], 0), IndexArray(b2.sizes[:-2], 0))
    idx = tuple(_fresh() for _ in batch) + (_fresh("r"), _fresh("c"))
    t, k = _fresh("t"), a2.sizes[-1]
    body = _aligned(a2, idx[:-1] + (t,)) * _aligned(b2, idx[:-2] + (t, idx[-1]))
    expr = substitute(body, {t: sp.Integer(0)}) if k == 1 else split_sum(body, t, k)
    out = IndexArray(batch + (a2.sizes[-2], b2.sizes[-1]), expr, idx)
    if a.ndim == 1:
        out = _drop_axis(out, out.ndim - 2)
    if b.ndim == 1:
        out = _drop_axis(out, out.ndim - 1)
    return out


def _drop_axis(a: IndexArray, axis: int) -> IndexArray:
    """``a`` without its axis ``axis`` of size 1."""
    return IndexArray(a.sizes[:axis] + a.sizes[axis + 1:], a.expr, a.idx[:axis] + a.idx[axis + 1:])


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return tuple(int(x) % max(ndim, 1) for x in (axis if isinstance(axis, (tuple, list))
                                                  else (axis,)))


def reduce_sum(a: IndexArray, axis: Any = None, keepdims: bool = False) -> IndexArray:
    """The sum over ``axis``: a ``Sum`` over a fresh bound index per summed axis."""
    sp = _sp()
    axes = _axes(axis, a.ndim)
    bound = {a.idx[k]: (_fresh("s"), a.sizes[k]) for k in axes if a.sizes[k] != 1}
    expr = substitute(a.expr, {v: u for v, (u, _) in bound.items()})
    for u, size in bound.values():
        expr = split_sum(expr, u, size)
    if keepdims:
        sizes = tuple(sp.Integer(1) if k in axes else s for k, s in enumerate(a.sizes))
        return IndexArray(sizes, expr, tuple(_fresh() if k in axes else v
                                             for k, v in enumerate(a.idx)))
    keep = [k for k in range(a.ndim) if k not in axes]
    return IndexArray([a.sizes[k] for k in keep], expr, [a.idx[k] for k in keep])


def transpose(a: IndexArray, axes: Any = None) -> IndexArray:
    """Axes permuted (``numpy.transpose``): the same expression, indices reordered."""
    axes = tuple(range(a.ndim))[::-1] if axes is None else _axes(axes, a.ndim)
    return IndexArray([a.sizes[k] for k in axes], a.expr, [a.idx[k] for k in axes])


def swapaxes(a: IndexArray, i: int, j: int) -> IndexArray:
    axes = list(range(a.ndim))
    i, j = i % a.ndim, j % a.ndim
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(a, axes)


def broadcast_to(a: IndexArray, shape: Sequence[int]) -> IndexArray:
    """``a`` broadcast to ``shape`` (stand-in integers)."""
    sizes = tuple(size_of(s) for s in shape)
    if _broadcast(a, IndexArray(sizes, 0)) != sizes:
        raise ValueError(f"broadcast_to: sizes {a.sizes} do not broadcast to {sizes}")
    idx = tuple(_fresh() for _ in sizes)
    return IndexArray(sizes, _aligned(a, idx), idx)


def reshape(a: IndexArray, shape: Sequence[int]) -> IndexArray:
    r"""Axes of size 1 inserted or removed; one axis of size $A B$ split into $(A, B)$
    (old index $t B + c$); two axes $(A, B)$ merged into one of size $A B$ (old indices
    $\lfloor y / B \rfloor$ and $y \bmod B$, which a sum over $y$ turns back into two
    sums, :func:`split_sum`)."""
    sp = _sp()
    if -1 in tuple(shape):
        raise IndexUnsupported("reshape with -1 is not supported on index arrays")
    sizes = tuple(size_of(s) for s in shape)
    new_idx = tuple(_fresh() for _ in sizes)
    old = [(s, v) for s, v in zip(a.sizes, a.idx) if s != 1]
    new = [(s, v) for s, v in zip(sizes, new_idx) if s != 1]
    mapping, i, j = {}, 0, 0
    while i < len(old) and j < len(new):
        (so, vo), (sn, vn) = old[i], new[j]
        if so == sn:
            mapping[vo], i, j = vn, i + 1, j + 1
        elif j + 1 < len(new) and sp.expand(sn * new[j + 1][0] - so) == 0:
            mapping[vo], i, j = vn * new[j + 1][0] + new[j + 1][1], i + 1, j + 2   # split
        elif i + 1 < len(old) and sp.expand(so * old[i + 1][0] - sn) == 0:
            b = old[i + 1][0]                                                       # merge
            mapping[vo], mapping[old[i + 1][1]] = sp.floor(vn / b), sp.Mod(vn, b)
            i, j = i + 2, j + 1
        else:
            break
    if i != len(old) or j != len(new):
        raise IndexUnsupported(
            f"reshape from sizes {a.sizes} to {sizes}: only axes of size 1, the split of "
            f"one axis A*B into (A, B) and the merge of (A, B) into A*B are representable")
    return IndexArray(sizes, substitute(a.expr, mapping), new_idx)


def split_sum(body: Any, u: Any, size: Any) -> Any:
    r"""$\sum_{u=0}^{AB-1}$ body, as two sums $\sum_{t<A}\sum_{c<B}$ over $u = t B + c$
    when the body reads ``u`` through $\lfloor u/B \rfloor$ or $u \bmod B$ (a merged
    axis): exact, since $u \mapsto (\lfloor u/B \rfloor, u \bmod B)$ is a bijection of
    $[0, AB)$ onto $[0, A) \times [0, B)$; the floors and remainders become $t$ and $c$."""
    sp = _sp()
    b = next((f.args[1] for f in body.atoms(sp.Mod) if f.args[0] == u), None)
    if b is None:
        b = next((sp.fraction(f.args[0])[1] for f in body.atoms(sp.floor)
                  if sp.fraction(f.args[0])[0] == u), None)
    if b is None or size == b:
        return sp.Sum(body, (u, 0, size - 1))
    t, c = _fresh("t"), _fresh("c")
    swap = {sp.floor(u / b): t, sp.Mod(u, b): c}
    body = substitute(body, swap, guard=u)
    body = substitute(body, {u: t * b + c})
    return sp.Sum(body, (c, 0, b - 1), (t, 0, sp.cancel(size / b) - 1))


def getitem(a: IndexArray, index: Any) -> IndexArray:
    """Basic indexing with full slices, ``None``, ``...`` and literal integers."""
    sp = _sp()
    parts = list(index) if isinstance(index, tuple) else [index]
    if Ellipsis in parts:
        k = parts.index(Ellipsis)
        rest = sum(p is not None for p in parts if p is not Ellipsis)
        parts[k:k + 1] = [slice(None)] * (a.ndim - rest)
    parts += [slice(None)] * (a.ndim - sum(p is not None for p in parts))
    sizes, idx, mapping, axis = [], [], {}, 0
    for p in parts:
        if p is None:
            sizes.append(sp.Integer(1))
            idx.append(_fresh())
        elif isinstance(p, slice) and p == slice(None):
            sizes.append(a.sizes[axis])
            idx.append(a.idx[axis])
            axis += 1
        elif isinstance(p, (int, np.integer)) and not isinstance(p, bool) and 0 <= p < 11:
            mapping[a.idx[axis]] = sp.Integer(int(p))
            axis += 1
        else:
            raise IndexUnsupported(f"indexing with {_shown(p)} (only full slices, None, ... "
                                   f"and small non-negative integers are representable)")
    return IndexArray(sizes, substitute(a.expr, mapping), idx)


def _shown(part: Any) -> str:
    """An index part with its integers read back as sizes: ``slice(0, d_h, None)``."""
    def size(v: Any) -> Any:
        return size_of(v) if isinstance(v, (int, np.integer)) and v >= 0 else v
    if isinstance(part, slice):
        return f"slice({size(part.start)}, {size(part.stop)}, {size(part.step)})"
    return repr(size(part))


def _unsupported(name: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise IndexUnsupported(f"numpy.{name} is not representable on index arrays: "
                               f"joining arrays of symbolic size needs a piecewise index")
    return refuse


_NUMPY: dict[str, Any] = {
    "sum": lambda a, axis=None, keepdims=False, **_: reduce_sum(lift(a), axis, keepdims),
    "reshape": lambda a, shape=None, newshape=None, **_: reshape(
        a, (shape if shape is not None else newshape)
        if isinstance(shape if shape is not None else newshape, (tuple, list))
        else (shape if shape is not None else newshape,)),
    "transpose": lambda a, axes=None: transpose(a, axes),
    "swapaxes": swapaxes,
    "broadcast_to": lambda a, shape, subok=False: broadcast_to(a, shape),
    "shape": lambda a: a.shape,
    "ndim": lambda a: a.ndim,
    "size": lambda a, axis=None: a.size,
    "expand_dims": lambda a, axis: reshape(
        a, a.shape[:axis % (a.ndim + 1)] + (1,) + a.shape[axis % (a.ndim + 1):]),
    "concatenate": _unsupported("concatenate"),
    "stack": _unsupported("stack"),
}


# ----------------------------------------------------------------------------- xp

class IndexBackend:
    """The ``xp`` of index arrays: element math as SymPy functions of the element
    expression (``tanh``, ``exp``, ...), structure as index manipulation."""

    name = "index"
    symbolic = True

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise IndexUnsupported(f"the index-notation backend has no operation {attr!r}")

    @staticmethod
    def _map(fn: str, x: Any) -> IndexArray:
        f = getattr(_sp(), fn)
        a = lift(x)
        return IndexArray(a.sizes, f(a.expr, evaluate=False), a.idx)

    def exp(self, x: Any) -> IndexArray:
        """$e^x$, with $e^{a + \\log M} = M e^a$ (the masked scores of :meth:`where`)."""
        sp, a = _sp(), lift(x)
        terms = sp.Add.make_args(a.expr)
        logs = [t.args[0] for t in terms if isinstance(t, sp.log)]
        rest = sp.Add(*[t for t in terms if not isinstance(t, sp.log)])
        return IndexArray(a.sizes, sp.Mul(*logs) * sp.exp(rest, evaluate=False), a.idx)

    def log(self, x: Any) -> IndexArray:
        return self._map("log", x)

    def tanh(self, x: Any) -> IndexArray:
        return self._map("tanh", x)

    def sqrt(self, x: Any) -> IndexArray:
        a = lift(x)
        return IndexArray(a.sizes, _sp().sqrt(a.expr), a.idx)

    def sigmoid(self, x: Any) -> IndexArray:
        sp, a = _sp(), lift(x)
        return IndexArray(a.sizes, 1 / (1 + sp.exp(-a.expr, evaluate=False)), a.idx)

    def power(self, x: Any, p: Any) -> IndexArray:
        return elementwise(lambda u, e: u ** e, lift(x), lift(p))

    def matmul(self, a: Any, b: Any) -> IndexArray:
        return matmul(lift(a), lift(b))

    def where(self, cond: Any, a: Any, b: Any) -> IndexArray:
        """``cond ? a : b`` for a 0/1 mask ``cond``: $M a + (1 - M) b$; with
        $b = -\\infty$, $a + \\log M$ ($\\log 0 = -\\infty$); with $b = 0$, $M a$, or
        $a$ itself when $M$ is already a factor of it ($M^2 = M$)."""
        sp = _sp()
        a, b = lift(a), lift(b)
        if not isinstance(cond, IndexArray):
            c = np.asarray(cond)
            if c.dtype == np.bool_ and c.size and (c.all() or not c.any()):
                return elementwise(lambda u, v: u if c.all() else v, a, b)
            raise IndexUnsupported("where: a concrete boolean mask has no meaning at "
                                   "symbolic sizes; give the mask as index_input(..., "
                                   "mask=True)")
        if b.ndim == 0 and b.expr == -sp.oo:
            return elementwise(lambda m, u: u + sp.log(m), cond, a)
        if a.ndim == 0 and a.expr == -sp.oo:
            return elementwise(lambda m, v: v + sp.log(1 - m), cond, b)
        if b.ndim == 0 and b.expr == 0:  # M a, and M a = a if a has the factor M (M^2 = M)
            return elementwise(lambda m, u: u if m in sp.Mul.make_args(u) else m * u, cond, a)
        return elementwise(lambda m, u, v: m * u + (1 - m) * v, cond, a, b)

    @staticmethod
    def stability_shift(x: Any, axis: int) -> IndexArray:
        """0: the softmax is the plain $e^x / \\sum e^x$."""
        return IndexArray((), _sp().Integer(0), ())

    @staticmethod
    def zeros(shape: Sequence[int], like: Any) -> IndexArray:
        return IndexArray(tuple(size_of(s) for s in shape), _sp().Integer(0))

    @staticmethod
    def constant(value: Any, like: Any) -> IndexArray:
        """A number (an integer: the size it stands for; a float: its exact value)."""
        return lift(value)

    @staticmethod
    def is_zero(x: Any) -> np.bool_:
        """Structurally zero (the whole expression is 0); see the module docstring."""
        return np.bool_(lift(x).expr == 0)

    @staticmethod
    def is_nonnegative(x: Any) -> np.bool_:
        return np.bool_(bool(lift(x).expr.is_nonnegative))


#: The namespace of index arrays.
index = IndexBackend()
