r"""Exact gradients of functions written with the engine, and proofs of its backward.

Run a function on *symbolic* Tensors (NumPy object arrays of SymPy symbols, named after
the input and the index: ``Q_0_1``) and the engine's own op code yields exact
expressions.  Contract the outputs with an upstream gradient :math:`\bar O` (symbols
``dO_0_1``, or random rationals),

.. math::  L = \sum_k \langle \bar O_k, f_k(x) \rangle ,

and ``sympy.diff(L, x_i)`` is the exact vector-Jacobian product for every input element.
Running the engine's backward on the same symbolic graph gives its VJP as expressions too;
:meth:`Derivation.prove_engine` shows the two equal element by element.

Zero-equivalence of two expressions is decided in one of two ways, and every
:class:`Proof` says which:

* ``"simplification"``: ``sympy.cancel`` (exact for rational functions) then
  ``sympy.simplify``; used by ``method="auto"`` when no exp/log/tanh/... appears;
* ``"evaluation"``: the difference evaluated with mpmath at several random points with
  50 significant digits, after common-subexpression elimination (``lambdify(cse=True)``).
  A nonzero analytic difference vanishes at a random point with probability 0, so
  agreement to 40 digits at 3 points is a proof in the probabilistic sense -- and it is
  far faster than ``simplify`` when exp/tanh/log appear (seconds, not minutes).

Public names: :func:`derive`, :class:`Derivation`, :func:`symbols`, :func:`equivalent`,
:class:`Proof`, :func:`exact_gradients` (used by ``gradcheck(symbolic=True)``),
:data:`MAX_SYMBOLS`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from ..engine.backend import symbolic as _xp
from ..engine import Tensor, enable_grad, grad
from .proof import Proof

__all__ = ["MAX_SYMBOLS", "Derivation", "Proof", "derive", "equivalent", "exact_gradients",
           "symbols"]

#: Most input symbols a symbolic run accepts. Differentiation cost grows much faster than
#: the number of symbols: attention at n = d = 3 (27 symbols) is proven in ~1 s, at
#: n = d = 6 (108 symbols) in ~40 s, so 200 is minutes, not hours.
MAX_SYMBOLS = 200

#: Interval random evaluation points are drawn from, unless an input says otherwise.
DEFAULT_DOMAIN = (-1.5, 1.5)
POSITIVE_DOMAIN = (0.5, 2.0)

Shape = tuple[int, ...]


# ----------------------------------------------------------------------------- symbols

def _symbol_name(name: str, index: tuple[int, ...]) -> str:
    return name if not index else name + "_" + "_".join(map(str, index))


def symbols(name: str, shape: Sequence[int], positive: bool = False,
            requires_grad: bool = True) -> Tensor:
    """A symbolic Tensor of ``shape`` whose entries are the real symbols ``name_i_j``.

    ``symbols("Q", (2, 3)).data[0, 1]`` is ``Q_0_1``; a scalar shape ``()`` gives ``Q``.
    ``positive=True`` makes them positive (for log, sqrt, powers).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"symbols: name must be an identifier such as 'Q', got {name!r}")
    shape = _shape(name, shape)
    out = np.empty(shape, dtype=object)
    assumptions = {"positive": True} if positive else {"real": True}
    for index in np.ndindex(shape):
        out[index] = sp.Symbol(_symbol_name(name, index), **assumptions)
    return Tensor(out, requires_grad=requires_grad, name=name, _validated=True)


def _shape(name: str, shape: Any) -> Shape:
    try:
        if isinstance(shape, (str, bytes)):
            raise TypeError
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise TypeError(f"symbolic: the shape of {name!r} must be a tuple of ints, got "
                        f"{shape!r}") from None
    if any(n < 0 for n in shape):
        raise ValueError(f"symbolic: the shape of {name!r} has a negative size: {shape}")
    return shape


def _check_size(sizes: Mapping[str, Shape], max_symbols: int) -> None:
    total = sum(int(np.prod(s)) for s in sizes.values())
    if total > max_symbols:
        detail = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise ValueError(
            f"symbolic: {total} input symbols ({detail}) exceed the limit of {max_symbols}; "
            f"exact differentiation grows much faster than the number of symbols, so use "
            f"small shapes (n, d <= 4 prove the same formulas) or raise max_symbols")


def _latex_names(syms: Sequence[sp.Symbol], bar: bool = False) -> dict[sp.Symbol, str]:
    """``Q_0_1`` -> ``Q_{0,1}``, ``dO_0_1`` -> ``\\bar{O}_{0,1}`` (cotangents get a bar)."""
    out = {}
    for s in syms:
        parts = s.name.split("_")
        head = [p for p in parts if not p.isdigit()]
        idx = [p for p in parts if p.isdigit()]
        base = head[0]
        if len(base) > 1 and base.startswith("d") and bar:
            base = r"\bar{" + _latex_base(base[1:]) + "}"
        else:
            base = _latex_base(base)
        if len(head) > 1:
            base += "^{" + ",".join(head[1:]) + "}"
        out[s] = base + ("_{" + ",".join(idx) + "}" if idx else "")
    return out


def _latex_base(name: str) -> str:
    greek = {"alpha", "beta", "gamma", "delta", "mu", "sigma", "tau", "theta", "lambda"}
    return "\\" + name if name in greek else name if len(name) == 1 else \
        r"\mathrm{" + name + "}"


# ----------------------------------------------------------------------------- evaluation

def _heaviside(x: Any, h0: Any = 0.5) -> Any:
    import mpmath

    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0) if x < 0 else mpmath.mpf(h0)


def _dirac(x: Any, *k: Any) -> Any:
    import mpmath

    if x != 0:
        return mpmath.mpf(0)
    raise ZeroDivisionError("DiracDelta evaluated at 0 (a point where the function is "
                            "not differentiable)")


_MPMATH = [{"Heaviside": _heaviside, "DiracDelta": _dirac, "Max": max, "Min": min}, "mpmath"]
_NUMPY = [{"Heaviside": lambda x, h0=0.5: np.where(x > 0, 1.0, np.where(x < 0, 0.0, h0)),
           "DiracDelta": lambda x, *k: np.zeros_like(x),
           "Max": np.maximum, "Min": np.minimum}, "numpy"]


def _compile(syms: Sequence[sp.Symbol], exprs: Sequence[sp.Expr],
             modules: str = "mpmath") -> Callable[..., list]:
    """``lambdify`` with common-subexpression elimination: f(*values) -> list of values."""
    mods = _MPMATH if modules == "mpmath" else _NUMPY
    return sp.lambdify(list(syms), list(exprs), modules=mods, cse=True)


class _Evaluator:
    """Evaluate many expressions at one point with mpmath, each distinct subexpression
    once: SymPy expressions are hash-consed trees, so a dict keyed by subexpression is
    common-subexpression elimination for free (and, for a proof at a few points, much
    faster than ``cse`` + ``lambdify``, whose cost is in building the code)."""

    def __init__(self, env: Mapping[sp.Symbol, Any]) -> None:
        import mpmath

        self.mp = mpmath
        self.memo: dict[sp.Basic, Any] = dict(env)

    def __call__(self, expr: sp.Basic) -> Any:
        memo, mp = self.memo, self.mp
        stack = [expr]
        while stack:  # iterative post-order: deep expressions need no recursion
            e = stack[-1]
            if e in memo:
                stack.pop()
                continue
            if e.is_Number or e is sp.S.Pi or e is sp.S.Exp1:
                memo[e] = self._number(e)
                stack.pop()
                continue
            if e.is_Symbol:
                raise ValueError(f"evaluate: no value for the symbol {e}")
            pending = [a for a in e.args if a not in memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            memo[e] = self._apply(e, [memo[a] for a in e.args])
        return memo[expr]

    def _number(self, e: sp.Basic) -> Any:
        mp = self.mp
        if e.is_Rational:
            return mp.mpf(int(e.p)) / int(e.q)
        if e is sp.S.Infinity or e is sp.S.NegativeInfinity:
            return mp.inf if e.is_positive else -mp.inf
        if e is sp.S.Pi:
            return +mp.pi
        if e is sp.S.Exp1:
            return mp.e
        return mp.mpf(e.evalf(mp.mp.dps))

    def _apply(self, e: sp.Basic, v: list[Any]) -> Any:
        mp = self.mp
        if e.is_Add:
            return mp.fsum(v)
        if e.is_Mul:
            out = v[0]
            for x in v[1:]:
                out = out * x
            return out
        if e.is_Pow:
            return v[0] ** v[1]
        name = type(e).__name__
        unary = {"exp": mp.exp, "log": mp.log, "tanh": mp.tanh, "Abs": abs,
                 "sign": mp.sign, "sin": mp.sin, "cos": mp.cos}
        if name in unary and len(v) == 1:
            return unary[name](v[0])
        if name == "Heaviside":
            return _heaviside(*v)
        if name == "DiracDelta":
            return _dirac(*v)
        if name == "Max":
            return max(v)
        if name == "Min":
            return min(v)
        raise ValueError(f"evaluate: no numeric rule for {name} (in {e})")


def _random_points(syms: Sequence[sp.Symbol], domains: Mapping[sp.Symbol, tuple],
                   points: int, seed: int) -> list[list[Any]]:
    """``points`` lists of exact random rationals, one per symbol, none 0, no two equal
    (so Heaviside, sign and Max are evaluated away from their kinks)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < points:
        vals = []
        for s in syms:
            lo, hi = domains.get(s, DEFAULT_DOMAIN)
            k = int(rng.integers(0, 1_000_003))
            vals.append(sp.Rational(lo) + (sp.Rational(hi) - sp.Rational(lo))
                        * sp.Rational(2 * k + 1, 2_000_006))
        if all(v != 0 for v in vals) and len(set(vals)) == len(vals):
            out.append(vals)
    return out


def _mpf(value: Any) -> Any:
    import mpmath

    if isinstance(value, sp.Rational):
        return mpmath.mpf(int(value.p)) / int(value.q)
    return mpmath.mpf(value)


# ----------------------------------------------------------------------------- proofs

def _has_transcendental(exprs: Sequence[sp.Expr]) -> bool:
    for e in exprs:
        if e.atoms(sp.Function) or any(not p.exp.is_Integer for p in e.atoms(sp.Pow)):
            return True
    return False


def equivalent(lhs: Mapping[str, Any], rhs: Mapping[str, Any], *, subject: str = "claim",
               method: str = "auto", points: int = 3, digits: int = 50, seed: int = 0,
               domains: Mapping[sp.Symbol, tuple] | None = None) -> Proof:
    """Prove ``lhs[name] == rhs[name]`` element-wise for every name (arrays of expressions).

    ``method``: ``"simplification"``, ``"evaluation"`` (``points`` random points at
    ``digits`` significant digits) or ``"auto"`` (simplification when the expressions are
    rational functions, where ``sympy.cancel`` decides zero exactly; evaluation otherwise).
    ``domains`` maps symbols to the interval their random values come from.
    """
    if set(lhs) != set(rhs):
        raise ValueError(f"equivalent: lhs has {sorted(lhs)} but rhs has {sorted(rhs)}")
    if method not in ("auto", "simplification", "evaluation"):
        raise ValueError(f"equivalent: method must be 'auto', 'simplification' or "
                         f"'evaluation', got {method!r}")
    start = time.perf_counter()
    labels, diffs, scales, sides = [], [], [], []
    for name in lhs:
        a = np.asarray(_as_expr_array(lhs[name]), dtype=object)
        b = np.asarray(_as_expr_array(rhs[name]), dtype=object)
        if a.shape != b.shape:
            raise ValueError(f"equivalent: {name} has shape {a.shape} on the left but "
                             f"{b.shape} on the right")
        for index in np.ndindex(a.shape):
            labels.append((name, tuple(map(int, index))))
            diffs.append(sp.sympify(a[index] - b[index]))
            scales.append(sp.sympify(b[index]))
            sides.append(sp.sympify(a[index]))
    names = list(lhs)
    if method == "auto":
        # decided on both sides, not on their difference (which SymPy may or may not
        # have cancelled on construction), so the choice is deterministic
        method = "evaluation" if _has_transcendental(sides + scales) else "simplification"
    failures: list[tuple[str, tuple[int, ...], float]] = []
    max_res = 0.0
    if method == "simplification":
        for (name, index), d in zip(labels, diffs):
            if d != 0 and sp.cancel(d) != 0 and sp.simplify(d) != 0:
                failures.append((name, index, math.nan))
        return Proof(subject, not failures, "simplification", len(diffs), names,
                     failures=failures, seconds=time.perf_counter() - start)
    import mpmath

    syms = sorted(set().union(*(d.free_symbols for d in diffs + scales)) if diffs else set(),
                  key=lambda s: s.name)
    tol = mpmath.mpf(10) ** (-(digits - 10))
    worst: dict[int, float] = {}
    with mpmath.workdps(digits):
        for pt in _random_points(syms, domains or {}, points, seed):
            ev = _Evaluator({s: _mpf(v) for s, v in zip(syms, pt)})
            vals = [ev(e) for e in diffs + scales]
            for k, (d, s) in enumerate(zip(vals[:len(diffs)], vals[len(diffs):])):
                res = abs(d) / max(1, abs(s))
                max_res = max(max_res, float(res))
                if not res <= tol:  # also catches nan
                    worst[k] = max(worst.get(k, 0.0), float(res))
    failures = [(labels[k][0], labels[k][1], r) for k, r in sorted(worst.items())]
    return Proof(subject, not failures, "evaluation", len(diffs), names, points=points,
                 digits=digits, max_residual=max_res, failures=failures,
                 seconds=time.perf_counter() - start)


def _as_expr_array(x: Any) -> np.ndarray:
    """An object array of SymPy expressions; numbers become exact constants."""
    if isinstance(x, Tensor):
        x = x.data
    if isinstance(x, sp.Basic):
        return np.asarray(x, dtype=object)
    arr = np.asarray(x)
    if arr.dtype != object:
        return _xp.constant(arr, None)
    out = np.empty(arr.shape, dtype=object)
    for index in np.ndindex(arr.shape):
        e = arr[index]
        out[index] = e if isinstance(e, sp.Basic) else _xp.constant(e, None)[()]
    return out


# ----------------------------------------------------------------------------- derive

class Derivation:
    """Exact gradients of a function of Tensors (build one with :func:`derive`).

    Attributes: ``inputs`` (name -> symbolic Tensor), ``outputs`` (tuple of object
    arrays), ``output_names``, ``cotangents`` (the upstream gradients, one per output),
    ``objective`` (the scalar :math:`L = \\sum_k \\langle \\bar O_k, O_k\\rangle`),
    ``gradients`` (name -> object array of :math:`\\partial L / \\partial x`, from
    ``sympy.diff``), ``domains`` (symbol -> interval for random evaluation points).
    """

    def __init__(self, fn: Callable[..., Any], inputs: dict[str, Tensor],
                 outputs: tuple[Tensor, ...], output_names: list[str],
                 cotangents: tuple[np.ndarray, ...], domains: dict[sp.Symbol, tuple]) -> None:
        self.fn = fn
        self._args: list[Tensor] = []
        self.fn_name = getattr(fn, "__name__", type(fn).__name__)
        self.inputs = inputs
        self._output_tensors = outputs
        self.outputs = tuple(o.data for o in outputs)
        self.output_names = output_names
        self.cotangents = cotangents
        self.domains = domains
        self.objective = sp.Add(*[r * o for c, t in zip(cotangents, self.outputs)
                                  for r, o in zip(np.ravel(c), np.ravel(t))])
        # dL/dx = sum_k r_k dO_k/dx (diff is linear): sympy.diff of each output element,
        # only for the outputs that contain x -- the same derivative as diff(L, x), with
        # far fewer walks over expressions that do not depend on x.
        pairs = [(r, o, o.free_symbols) for c, t in zip(cotangents, self.outputs)
                 for r, o in zip(np.ravel(c), np.ravel(t)) if r != 0]
        self.gradients: dict[str, np.ndarray] = {}
        for name, t in inputs.items():
            g = np.empty(t.shape, dtype=object)
            for index in np.ndindex(t.shape):
                x = t.data[index]
                g[index] = sp.Add(*[r * sp.diff(o, x) for r, o, free in pairs if x in free])
            self.gradients[name] = g
        self._engine: dict[str, np.ndarray] | None = None
        self._numpy_fn: Callable[..., list] | None = None

    # -- symbols
    @property
    def symbols(self) -> list[sp.Symbol]:
        """Input symbols then cotangent symbols, in a fixed order."""
        syms = [e for t in self.inputs.values() for e in t.data.reshape(-1)]
        return syms + [e for c in self.cotangents for e in np.ravel(c)
                       if isinstance(e, sp.Symbol)]

    # -- the engine's backward
    def engine_gradients(self) -> dict[str, np.ndarray]:
        """The engine's own backward run on the symbolic graph (VJPs as expressions)."""
        if self._engine is None:
            pairs = [(o, c) for o, c in zip(self._output_tensors, self.cotangents)
                     if o.requires_grad]
            names = list(self.inputs)
            if not pairs:
                res: tuple[Any, ...] = (None,) * len(names)
            else:
                res = grad([o for o, _ in pairs], [self.inputs[n] for n in names],
                           grad_outputs=[c for _, c in pairs], allow_unused=True)
            self._engine = {}
            for n, g in zip(names, res):
                shape = self.inputs[n].shape
                self._engine[n] = _xp.zeros(shape, None) if g is None else \
                    _as_expr_array(g.data)
        return self._engine

    def prove_engine(self, method: str = "auto", points: int = 3, digits: int = 50,
                     seed: int = 0, fn: Callable[..., Any] | None = None) -> Proof:
        """Prove the engine's backward equal to ``sympy.diff`` for every input element.

        With ``fn``, another implementation of the same function (say the fused op next
        to the composed reference) is run on the same symbolic inputs: its outputs and its
        engine backward (same upstream gradient) are proven equal to this derivation's.
        """
        if fn is None:
            return equivalent(self.engine_gradients(), self.gradients,
                              subject=f"engine backward of {self.fn_name} == sympy.diff",
                              method=method, points=points, digits=digits, seed=seed,
                              domains=self.domains)
        with enable_grad():
            out = fn(*self._args)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(self.outputs):
            raise ValueError(f"prove_engine: fn returns {len(outs)} outputs, the derivation "
                             f"has {len(self.outputs)}")
        names = list(self.inputs)
        res = grad([o for o in outs if o.requires_grad], [self.inputs[n] for n in names],
                   grad_outputs=[c for o, c in zip(outs, self.cotangents) if o.requires_grad],
                   allow_unused=True)
        lhs = {n: _xp.zeros(self.inputs[n].shape, None) if g is None else
               _as_expr_array(g.data) for n, g in zip(names, res)}
        rhs = dict(self.gradients)
        for k, (o, ref) in enumerate(zip(outs, self.outputs)):
            lhs[f"output {self.output_names[k]}"] = _as_expr_array(o.data)
            rhs[f"output {self.output_names[k]}"] = ref
        name = getattr(fn, "__name__", type(fn).__name__)
        return equivalent(lhs, rhs, subject=f"{name}: outputs and engine backward == "
                          f"those of {self.fn_name} and sympy.diff", method=method,
                          points=points, digits=digits, seed=seed, domains=self.domains)

    def prove(self, claimed: Mapping[str, Any], method: str = "auto", points: int = 3,
              digits: int = 50, seed: int = 0, subject: str | None = None) -> Proof:
        """Prove hand-derived gradients (name -> array of expressions, e.g. a closed matrix
        form built from the same symbols) equal to ``sympy.diff``."""
        unknown = set(claimed) - set(self.gradients)
        if unknown:
            raise ValueError(f"prove: no input named {sorted(unknown)}; inputs are "
                             f"{list(self.gradients)}")
        return equivalent(dict(claimed), {k: self.gradients[k] for k in claimed},
                          subject=subject or f"closed form of {self.fn_name} == sympy.diff",
                          method=method, points=points, digits=digits, seed=seed,
                          domains=self.domains)

    # -- evaluation
    def evaluate(self, values: Mapping[str, Any], cotangents: Sequence[Any] | None = None,
                 digits: int | None = None) -> dict[str, np.ndarray]:
        """The exact gradients at a point, as float64 arrays.

        ``values``: input name -> array.  ``cotangents``: one array per output (needed
        when the cotangent is symbolic).  ``digits=None`` evaluates the CSE'd expressions
        with NumPy (fast); ``digits=50`` with mpmath at that precision, then rounds.
        """
        args = self._arguments(values, cotangents)
        names = list(self.gradients)
        flat = [e for n in names for e in self.gradients[n].reshape(-1)]
        if digits is None:
            if self._numpy_fn is None:
                self._numpy_fn = _compile(self.symbols, flat, "numpy")
            vals = [float(v) for v in self._numpy_fn(*[float(a) for a in args])]
        else:
            import mpmath

            with mpmath.workdps(digits):
                ev = _Evaluator({s: mpmath.mpf(float(a)) for s, a in zip(self.symbols, args)})
                vals = [float(ev(e)) for e in flat]
        out, k = {}, 0
        for n in names:
            size = self.gradients[n].size
            out[n] = np.asarray(vals[k:k + size], dtype=np.float64).reshape(
                self.gradients[n].shape)
            k += size
        return out

    def _arguments(self, values: Mapping[str, Any], cotangents: Sequence[Any] | None
                   ) -> list[float]:
        args: list[float] = []
        for name, t in self.inputs.items():
            if name not in values:
                raise ValueError(f"evaluate: no value for input {name!r}")
            v = np.asarray(values[name], dtype=np.float64)
            if v.shape != t.shape:
                raise ValueError(f"evaluate: {name} has shape {v.shape}, expected {t.shape}")
            args += list(v.reshape(-1))
        symbolic_cot = [c for c in self.cotangents
                        if any(isinstance(e, sp.Symbol) for e in np.ravel(c))]
        if symbolic_cot:
            if cotangents is None or len(cotangents) != len(self.cotangents):
                raise ValueError(f"evaluate: the cotangent is symbolic; pass cotangents, one "
                                 f"array per output ({len(self.cotangents)})")
            for c, v in zip(self.cotangents, cotangents):
                v = np.asarray(v, dtype=np.float64)
                if v.shape != np.shape(c):
                    raise ValueError(f"evaluate: a cotangent has shape {v.shape}, expected "
                                     f"{np.shape(c)}")
                args += list(v.reshape(-1))
        return args

    # -- presentation
    def latex(self, name: str, index: Sequence[int] | None = None) -> str:
        """LaTeX of ``dL/d name[index]`` (one element), or of the whole gradient as a
        matrix when ``index`` is None (vectors and matrices only)."""
        if name not in self.gradients:
            raise ValueError(f"latex: no input named {name!r}; inputs are "
                             f"{list(self.gradients)}")
        names = _latex_names(self.symbols, bar=True)
        g = self.gradients[name]
        if index is not None:
            return sp.latex(g[tuple(index)], symbol_names=names)
        if g.ndim > 2:
            raise ValueError(f"latex: {name} has {g.ndim} dimensions; pass an index")
        return sp.latex(sp.Matrix(np.atleast_2d(g)), symbol_names=names)

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}{tuple(t.shape)}" for k, t in self.inputs.items())
        return (f"Derivation({self.fn_name}: inputs {ins}; outputs "
                f"{', '.join(self.output_names)}; {sum(g.size for g in self.gradients.values())}"
                f" exact gradient elements)")


def derive(fn: Callable[..., Any], shapes: Mapping[str, Any], *,
           cotangent: str | Sequence[Any] = "symbolic", positive: bool | Sequence[str] = (),
           domains: Mapping[str, tuple[float, float]] | None = None,
           output_names: Sequence[str] | None = None, seed: int = 0,
           max_symbols: int = MAX_SYMBOLS) -> Derivation:
    """Exact gradients of ``fn`` for inputs of the given shapes.

    ``shapes`` maps each argument of ``fn`` (in order) to a shape -- a symbolic input with
    gradient, entries named ``name_i_j`` -- or to an array/Tensor, a constant made exact
    (no gradient).  ``fn`` returns a Tensor or a tuple of Tensors.  ``cotangent`` is
    ``"symbolic"`` (symbols ``dO_i_j``: the proof then covers the whole Jacobian),
    ``"random"`` (small random rationals: faster, proves a random projection), or
    explicit arrays, one per output.  ``positive`` names inputs that must be positive
    (log, sqrt); ``domains`` gives the interval of random evaluation points per input.

    >>> d = derive(lambda x: (x * x).sum(), {"x": (2,)})
    >>> d.gradients["x"]
    array([2*dO*x_0, 2*dO*x_1], dtype=object)
    >>> d.prove_engine().ok
    True
    """
    if not isinstance(shapes, Mapping) or not shapes:
        raise TypeError("derive: shapes must be a non-empty dict such as {'Q': (2, 3)}")
    pos = set(shapes) if positive is True else set(positive or ())
    unknown = (pos | set(domains or {})) - set(shapes)
    if unknown:
        raise ValueError(f"derive: {sorted(unknown)} are not inputs; inputs are {list(shapes)}")
    sym_shapes = {k: _shape(k, v) for k, v in shapes.items()
                  if not isinstance(v, (np.ndarray, Tensor))}
    if not sym_shapes:
        raise ValueError("derive: every input is a constant array; give at least one shape")
    _check_size(sym_shapes, max_symbols)
    inputs: dict[str, Tensor] = {}
    args: list[Tensor] = []
    sym_domains: dict[sp.Symbol, tuple] = {}
    for name, v in shapes.items():
        if name in sym_shapes:
            t = symbols(name, sym_shapes[name], positive=name in pos)
            inputs[name] = t
            dom = (domains or {}).get(name, POSITIVE_DOMAIN if name in pos else DEFAULT_DOMAIN)
            sym_domains.update({s: dom for s in t.data.reshape(-1)})
        else:
            data = v.data if isinstance(v, Tensor) else np.asarray(v)
            t = Tensor(_xp.constant(data, None), name=name, _validated=True)
        args.append(t)
    with enable_grad():
        out = fn(*args)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"derive: fn must return a Tensor or a tuple of Tensors; output "
                            f"{i} is a {type(o).__name__}")
    outs = tuple(o if o.dtype == object else
                 Tensor(_xp.constant(o.data, None), _validated=True) for o in outs)
    if output_names is None:
        output_names = ["O"] if len(outs) == 1 else [f"O{k}" for k in range(len(outs))]
    if len(output_names) != len(outs):
        raise ValueError(f"derive: {len(output_names)} output_names for {len(outs)} outputs")
    cots = _cotangents(cotangent, outs, list(output_names), seed)
    seen: dict[sp.Symbol, str] = {}
    for label, arr in [(k, t.data) for k, t in inputs.items()] + \
            [(f"cotangent of {n}", c) for n, c in zip(output_names, cots)]:
        for e in np.ravel(arr):
            if isinstance(e, sp.Symbol):
                if e in seen and seen[e] != label:
                    raise ValueError(f"derive: the symbol {e} would stand for an element of "
                                     f"{seen[e]} and of {label}; rename an input (or pass "
                                     f"output_names)")
                seen[e] = label
    der = Derivation(fn, inputs, outs, list(output_names), cots, sym_domains)
    der._args = args
    return der


def _cotangents(cotangent: Any, outs: Sequence[Tensor], names: list[str], seed: int
                ) -> tuple[np.ndarray, ...]:
    if isinstance(cotangent, str):
        if cotangent == "symbolic":
            return tuple(symbols("d" + n, o.shape).data for n, o in zip(names, outs))
        if cotangent == "random":
            rng = np.random.default_rng(seed)
            res = []
            for o in outs:
                c = np.empty(o.shape, dtype=object)
                for index in np.ndindex(o.shape):
                    c[index] = sp.Rational(int(rng.choice([-1, 1]) * rng.integers(1, 10)),
                                           int(rng.integers(1, 8)))
                res.append(c)
            return tuple(res)
        raise ValueError(f"derive: cotangent must be 'symbolic', 'random' or arrays, got "
                         f"{cotangent!r}")
    cots = list(cotangent)
    if len(cots) != len(outs):
        raise ValueError(f"derive: {len(cots)} cotangents for {len(outs)} outputs")
    res = []
    for c, o in zip(cots, outs):
        c = c.data if isinstance(c, Tensor) else c
        arr = _as_expr_array(np.asarray(c))
        if arr.shape != o.shape:
            raise ValueError(f"derive: a cotangent has shape {arr.shape} but its output has "
                             f"shape {o.shape}")
        res.append(arr)
    return tuple(res)


# ----------------------------------------------------------------------------- gradcheck

def exact_gradients(fn: Callable[..., Any], inputs: Sequence[Tensor],
                    cotangents: Sequence[np.ndarray], digits: int = 50,
                    max_symbols: int = MAX_SYMBOLS) -> list[np.ndarray]:
    """SymPy's exact gradient of :math:`L = \\sum_k \\langle r_k, f_k(x)\\rangle` at the
    float64 point ``inputs``, one float64 array per input with ``requires_grad``.

    The symbolic derivative is evaluated at the exact binary values of the inputs and
    cotangents with ``digits`` significant digits, then rounded: the float64 nearest the
    true gradient, free of the rounding the engine's float64 arithmetic makes.  Inputs
    without ``requires_grad`` enter as exact constants.
    """
    names: list[str] = []
    shapes: dict[str, Any] = {}
    for i, t in enumerate(inputs):
        base = t.name if t.name and t.name.isidentifier() else f"x{i}"
        name = base
        while name in shapes:
            name = f"{base}{len(names)}"
        names.append(name)
        shapes[name] = t.shape if t.requires_grad else t.data
    sizes = {n: inputs[i].shape for i, n in enumerate(names) if inputs[i].requires_grad}
    _check_size(sizes, max_symbols)
    n_out = len(cotangents)
    der = derive(fn, shapes, cotangent="symbolic", max_symbols=max_symbols,
                 output_names=["out"] if n_out == 1 else [f"out{k}" for k in range(n_out)])
    values = {n: inputs[i].data for i, n in enumerate(names) if inputs[i].requires_grad}
    grads = der.evaluate(values, cotangents=list(cotangents), digits=digits)
    return [grads[n] for n in names if n in grads]
