r"""Exact gradients of functions written with the engine, and proofs of its backward.

Run a function on *symbolic* Tensors (NumPy object arrays of SymPy symbols, named after
the input and the index: ``Q_0_1``) and the engine's own op code yields exact
expressions.  Contract the outputs with an upstream gradient :math:`\bar O` (symbols
``dO_0_1``, printed :math:`\bar O_{0,1}` in LaTeX, or random rationals),

.. math::  L = \sum_k \langle \bar O_k, f_k(x) \rangle ,

and :math:`\partial L / \partial x_i` is the exact vector-Jacobian product for every input
element.  The reference derivative is computed by reverse mode over the hash-consed DAG
of the SymPy expressions of :math:`L`, with SymPy's per-function derivative rules
(:mod:`tinygrad_attn.verify.dag`) -- the same derivative as ``sympy.diff``, in time linear
in the DAG, and independent of the engine's op table.  Running the engine's backward on
the same symbolic graph gives its VJP as expressions too; :meth:`Derivation.prove_engine`
decides the two equal element by element (:func:`~tinygrad_attn.verify.equivalence.
decide`: exact cancellation, identity testing, or -- labelled as such -- numerical
evaluation; the :class:`~tinygrad_attn.verify.proof.Proof` says which).

Public names: :func:`derive`, :class:`Derivation`, :func:`symbols`, :func:`equivalent`,
:class:`Proof`, :func:`exact_gradients` (used by ``gradcheck(symbolic=True)``),
:func:`estimate` (size and time before a run), :data:`MAX_SYMBOLS`.

A run estimated at two seconds or more prints its estimate and draws a progress bar over
its phases on a terminal (:data:`PHASES`; ``progress=`` forces it on or off).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping, Sequence, TextIO

import numpy as np
import sympy as sp

from ..engine import Tensor, enable_grad, grad
from ..engine.backend import symbolic as sym_xp
from .dag import DagEvaluator, SympyAlgebra
from .equivalence import as_expr_array, decide, equivalent
from .estimate import MAX_SYMBOLS, Estimate, estimate, start_progress
from .evaluation import DEFAULT_DOMAIN, POSITIVE_DOMAIN, MpmathAlgebra, compile_expressions
from .identity import Expressions, Gradients, Joined
from .latex import derivation_latex, latex_names
from .progress import Progress
from .proof import Proof

__all__ = ["DEFAULT_DOMAIN", "MAX_SYMBOLS", "PHASES", "POSITIVE_DOMAIN", "Derivation",
           "Estimate", "ExactGradients", "Proof", "derive", "equivalent", "estimate",
           "exact_gradients", "symbols"]

#: The phases of ``derive(...).prove_engine()`` a progress bar counts: :func:`derive`
#: builds the forward, :meth:`Derivation.prove_engine` runs the engine's backward, then
#: decides every element (the reference derivative is computed inside the decision).
PHASES = ("forward", "engine backward", "decision")
#: The phases of :func:`exact_gradients`: the forward, the exact derivative at the point,
#: and with ``sample`` the engine backward and the decision.
EXACT_PHASES = ("forward", "exact derivative at the point")


Shape = tuple[int, ...]


# ----------------------------------------------------------------------------- symbols

def _symbol_name(name: str, index: tuple[int, ...]) -> str:
    """``Q`` and ``(0, 1)`` -> ``Q_0_1``; a scalar keeps the bare name."""
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
    """``shape`` as a tuple of non-negative ints, or an error naming the input."""
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


def _check_size(sizes: Mapping[str, Shape], max_symbols: int | None,
                fn: Callable[..., Any] | None = None,
                shapes: Mapping[str, Any] | None = None) -> None:
    """Refuse more than ``max_symbols`` input symbols (None: no limit) before any
    symbolic work is done, saying how long the run would take."""
    total = sum(int(np.prod(s)) for s in sizes.values())
    if max_symbols is None or total <= max_symbols:
        return
    detail = ", ".join(f"{k} {v}" for k, v in sizes.items())
    try:
        size = f" ({estimate(fn, shapes)})" if fn is not None and shapes is not None else ""
    except Exception:  # noqa: BLE001 - the estimate is a courtesy; the refusal stands
        size = ""
    raise ValueError(
        f"symbolic: {total} input symbols ({detail}) exceed the limit of {max_symbols}"
        f"{size}; pass max_symbols={total} (or None) to run it anyway")


class Derivation:
    """Exact gradients of a function of Tensors (build one with :func:`derive`).

    Attributes: ``inputs`` (name -> symbolic Tensor), ``args`` (the arguments ``fn`` was
    called with: the symbolic inputs and the exact constants, in order),
    ``output_tensors`` (what ``fn`` returned, its graph recorded), ``outputs`` (their
    object arrays), ``output_names``, ``cotangents`` (the upstream gradients, one per
    output), ``objective`` (the scalar :math:`L = \\sum_k \\langle \\bar O_k, O_k\\rangle`),
    ``seeds`` (its terms: pairs of an output element and its nonzero upstream gradient),
    ``gradients`` (name -> object array of :math:`\\partial L / \\partial x`, built on
    first use), ``domains`` (symbol -> interval for random evaluation points).
    """

    def __init__(self, fn: Callable[..., Any], inputs: dict[str, Tensor],
                 outputs: tuple[Tensor, ...], output_names: list[str],
                 cotangents: tuple[np.ndarray, ...], domains: dict[sp.Symbol, tuple],
                 args: Sequence[Tensor] = ()) -> None:
        self.fn = fn
        self.fn_name = getattr(fn, "__name__", type(fn).__name__)
        self.inputs = inputs
        self.args = list(args) or list(inputs.values())
        self.output_tensors = outputs
        self.outputs = tuple(o.data for o in outputs)
        self.output_names = output_names
        self.cotangents = cotangents
        self.domains = domains
        self.seeds = [(o, g) for c, t in zip(cotangents, self.outputs)
                      for g, o in zip(np.ravel(c), np.ravel(t)) if g != 0]
        self.objective = sp.Add(*[g * o for o, g in self.seeds])
        self._gradients: dict[str, np.ndarray] | None = None
        self._engine: dict[str, np.ndarray] | None = None
        self._numpy_fn: Callable[..., list] | None = None
        #: the progress bar :func:`derive` started (None: no progress shown) and the
        #: phases done
        self.progress: Progress | None = None
        self.phases_done = 0

    def advance(self, text: str, done: bool = False) -> None:
        """Show ``text`` on the progress bar (if any) as what runs now; ``done=True``
        counts the phase before as finished first, and ends the line after the last."""
        bar = self.progress
        if bar is None:
            return
        self.phases_done += 1 if done else 0
        bar.update(self.phases_done, text)
        if self.phases_done >= bar.total:
            bar.close()

    @property
    def symbols(self) -> list[sp.Symbol]:
        """Input symbols then upstream-gradient symbols, in a fixed order."""
        syms = [e for t in self.inputs.values() for e in t.data.reshape(-1)]
        return syms + [e for c in self.cotangents for e in np.ravel(c)
                       if isinstance(e, sp.Symbol)]

    # -- the reference derivative
    def reference(self, names: Sequence[str] | None = None) -> Gradients:
        """:math:`\\partial L / \\partial x` for every element of the inputs ``names``
        (all by default), as a side of :func:`~tinygrad_attn.verify.equivalence.decide`:
        reverse mode over the DAG of :math:`L`, never written out as expressions."""
        names = list(self.inputs) if names is None else list(names)
        wrt = [e for n in names for e in self.inputs[n].data.reshape(-1)]
        return Gradients(self.seeds, wrt)

    @property
    def gradients(self) -> dict[str, np.ndarray]:
        """Name -> object array of :math:`\\partial L / \\partial x` (the reference
        derivative written out as SymPy expressions, on first use)."""
        if self._gradients is None:
            values = self.reference().values(DagEvaluator(SympyAlgebra()))
            self._gradients = self._unflatten(values, object)
        return self._gradients

    def _unflatten(self, values: Sequence[Any], dtype: Any) -> dict[str, np.ndarray]:
        """Flat values, input after input, as arrays of the inputs' shapes."""
        out, k = {}, 0
        for name, t in self.inputs.items():
            arr = np.empty(t.shape, dtype=dtype)
            arr.reshape(-1)[:] = values[k:k + t.size] if t.size else []
            out[name] = arr
            k += t.size
        return out

    def _labels(self, names: Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
        return [(n, tuple(map(int, i))) for n in names for i in np.ndindex(self.inputs[n].shape)]

    # -- the engine's backward
    def engine_gradients(self) -> dict[str, np.ndarray]:
        """The engine's own backward run on the symbolic graph (VJPs as expressions)."""
        if self._engine is None:
            self._engine = _engine_vjp(self.output_tensors, self.inputs, self.cotangents)
        return self._engine

    def prove_engine(self, method: str = "auto", points: int = 3, digits: int = 50,
                     seed: int = 0, fn: Callable[..., Any] | None = None, trials: int = 2,
                     sample: int | None = None) -> Proof:
        """Prove the engine's backward equal to the exact derivative for every input
        element (``sample=K``: for ``K`` elements drawn at random).

        With ``fn``, another implementation of the same function (say the fused op next
        to the composed reference) is run on the same symbolic inputs: its outputs and its
        engine backward (same upstream gradient) are proven equal to this derivation's.
        ``method``, ``points``, ``digits``, ``trials``: as in
        :func:`~tinygrad_attn.verify.equivalence.equivalent`.
        """
        options = dict(method=method, points=points, digits=digits, seed=seed,
                       domains=self.domains, trials=trials, sample=sample)
        names = list(self.inputs)
        if fn is None:
            return self._prove_own_backward(names, sample, options)
        outs = _run("prove_engine", fn, self.args)
        if len(outs) != len(self.outputs):
            raise ValueError(f"prove_engine: fn returns {len(outs)} outputs, the derivation "
                             f"has {len(self.outputs)}")
        eng = _engine_vjp(outs, self.inputs, self.cotangents)
        labels = self._labels(names)
        left = [Expressions([e for n in names for e in eng[n].reshape(-1)])]
        right: list[Any] = [self.reference()]
        for name, o, ref in zip(self.output_names, outs, self.outputs):
            mine = as_expr_array(o.data)
            labels += [(f"output {name}", tuple(map(int, i))) for i in np.ndindex(mine.shape)]
            left.append(Expressions(list(mine.reshape(-1))))
            right.append(Expressions(list(np.asarray(ref, dtype=object).reshape(-1))))
        other = getattr(fn, "__name__", type(fn).__name__)
        return decide(labels, Joined(left), Joined(right),
                      names=names + [f"output {n}" for n in self.output_names],
                      subject=f"{other}: outputs and engine backward == those of "
                      f"{self.fn_name} and the exact derivative", **options)

    def _prove_own_backward(self, names: list[str], sample: int | None,
                            options: dict[str, Any]) -> Proof:
        """:meth:`prove_engine` without ``fn``, drawing the last two phases of the bar."""
        bar = self.progress
        with bar if bar is not None else contextlib.nullcontext():
            if bar is not None:
                self.phases_done = bar.total - 2
            self.advance("engine backward")
            eng = self.engine_gradients()
            lhs = Expressions([e for n in names for e in eng[n].reshape(-1)])
            self.advance(f"deciding {sample or len(lhs)} elements", done=True)
            proof = decide(self._labels(names), lhs, self.reference(), names=names,
                           subject=f"engine backward of {self.fn_name} == exact derivative",
                           **options)
            self.advance(proof.verdict, done=True)
        return proof

    def prove(self, claimed: Mapping[str, Any], method: str = "auto", points: int = 3,
              digits: int = 50, seed: int = 0, subject: str | None = None, trials: int = 2,
              sample: int | None = None) -> Proof:
        """Prove hand-derived gradients (name -> array of expressions, e.g. a closed matrix
        form built from the same symbols) equal to the exact derivative."""
        unknown = set(claimed) - set(self.inputs)
        if unknown:
            raise ValueError(f"prove: no input named {sorted(unknown)}; inputs are "
                             f"{list(self.inputs)}")
        names = list(claimed)
        flat = []
        for n in names:
            arr = as_expr_array(claimed[n])
            if arr.shape != self.inputs[n].shape:
                raise ValueError(f"prove: {n} has shape {arr.shape}, the input "
                                 f"{self.inputs[n].shape}")
            flat += list(arr.reshape(-1))
        return decide(self._labels(names), Expressions(flat), self.reference(names),
                      names=names, method=method, points=points, digits=digits, seed=seed,
                      domains=self.domains, trials=trials, sample=sample,
                      subject=subject or f"closed form of {self.fn_name} == exact derivative")

    # -- evaluation
    def evaluate(self, values: Mapping[str, Any], cotangents: Sequence[Any] | None = None,
                 digits: int | None = None) -> dict[str, np.ndarray]:
        """The exact gradients at a point, as float64 arrays.

        ``values``: input name -> array.  ``cotangents``: the upstream gradient, one array
        per output (needed when it is symbolic).  ``digits=None`` evaluates the CSE'd
        gradient expressions with NumPy (fast once compiled); ``digits=50`` runs reverse
        mode with mpmath at that precision (no expressions written out), then rounds.
        """
        args = self._arguments(values, cotangents)
        if digits is None:
            names = list(self.gradients)
            flat = [e for n in names for e in self.gradients[n].reshape(-1)]
            if self._numpy_fn is None:
                self._numpy_fn = compile_expressions(self.symbols, flat, "numpy")
            # one-element arrays: a Piecewise compiles to numpy.select, which needs arrays
            vals = [float(np.asarray(v).reshape(-1)[0])
                    for v in self._numpy_fn(*[np.array([float(a)]) for a in args])]
        else:
            import mpmath

            with mpmath.workdps(digits):
                env = {s: mpmath.mpf(float(a)) for s, a in zip(self.symbols, args)}
                ev = DagEvaluator(MpmathAlgebra(env))
                vals = [float(v) for v in self.reference().values(ev)]
        return self._unflatten(vals, np.float64)

    def _arguments(self, values: Mapping[str, Any], cotangents: Sequence[Any] | None
                   ) -> list[float]:
        """The values of :attr:`symbols`, in order, checked against the inputs' shapes."""
        args: list[float] = []
        for name, t in self.inputs.items():
            if name not in values:
                raise ValueError(f"evaluate: no value for input {name!r}")
            v = np.asarray(values[name], dtype=np.float64)
            if v.shape != t.shape:
                raise ValueError(f"evaluate: {name} has shape {v.shape}, expected {t.shape}")
            args += list(v.reshape(-1))
        if not any(isinstance(e, sp.Symbol) for c in self.cotangents for e in np.ravel(c)):
            return args
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
        if name not in self.inputs:
            raise ValueError(f"latex: no input named {name!r}; inputs are "
                             f"{list(self.inputs)}")
        names = latex_names(self.symbols, bar=True)
        g = self.gradients[name]
        if index is not None:
            return sp.latex(g[tuple(index)], symbol_names=names)
        if g.ndim > 2:
            raise ValueError(f"latex: {name} has {g.ndim} dimensions; pass an index")
        return sp.latex(sp.Matrix(np.atleast_2d(g)), symbol_names=names)

    def _repr_latex_(self) -> str:
        """The objective and each input's exact gradient as LaTeX, for notebooks (Jupyter
        calls this): :func:`~.latex.derivation_latex`."""
        return derivation_latex(self)

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}{tuple(t.shape)}" for k, t in self.inputs.items())
        return (f"Derivation({self.fn_name}: inputs {ins}; outputs "
                f"{', '.join(self.output_names)}; {sum(t.size for t in self.inputs.values())}"
                f" exact gradient elements)")


def _engine_vjp(outs: Sequence[Tensor], inputs: Mapping[str, Tensor],
                gs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The engine's backward of ``outs`` with upstream gradients ``gs``, run on symbols:
    input name -> object array (exact zeros where no output depends on the input)."""
    pairs = [(o, g) for o, g in zip(outs, gs) if o.requires_grad]
    names = list(inputs)
    if pairs:
        res = grad([o for o, _ in pairs], [inputs[n] for n in names],
                   grad_outputs=[g for _, g in pairs], allow_unused=True)
    else:
        res = (None,) * len(names)
    return {n: sym_xp.zeros(inputs[n].shape, None) if d is None else as_expr_array(d.data)
            for n, d in zip(names, res)}


def _run(who: str, fn: Callable[..., Any], args: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """``fn(*args)`` with the graph recorded, as a tuple of Tensors."""
    try:
        with enable_grad():
            out = fn(*args)
    except TypeError as exc:  # a branch in Python or NumPy on a SymPy relation
        if "truth value of Relational" not in str(exc):
            raise
        raise TypeError(f"{who}: {getattr(fn, '__name__', 'fn')} compared symbolic values "
                        f"outside the engine ({exc}): compare the Tensors, x > 0 (not "
                        f"x.data > 0), and select with ta.where(x > 0, a, b), which builds an "
                        f"exact Piecewise; a Python if on the data cannot run symbolically"
                        ) from exc
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{who}: fn must return a Tensor or a tuple of Tensors; output "
                            f"{i} is a {type(o).__name__}")
    return outs


# ----------------------------------------------------------------------------- derive

def derive(fn: Callable[..., Any], shapes: Mapping[str, Any], *,
           cotangent: str | Sequence[Any] = "symbolic", positive: bool | Sequence[str] = (),
           domains: Mapping[str, tuple[float, float]] | None = None,
           output_names: Sequence[str] | None = None, seed: int = 0,
           max_symbols: int | None = MAX_SYMBOLS, progress: bool | None = None,
           stream: TextIO | None = None) -> Derivation:
    """Exact gradients of ``fn`` for inputs of the given shapes.

    ``shapes`` maps each argument of ``fn`` (in order) to a shape -- a symbolic input with
    gradient, entries named ``name_i_j`` -- or to an array/Tensor, a constant made exact
    (no gradient).  ``fn`` returns a Tensor or a tuple of Tensors.  ``cotangent`` is the
    upstream gradient: ``"symbolic"`` (symbols ``dO_i_j``: the proof then covers the whole
    Jacobian), ``"random"`` (small random rationals: faster, proves a random projection),
    or explicit arrays, one per output.  ``positive`` names inputs that must be positive
    (log, sqrt); ``domains`` gives the interval of random evaluation points per input.
    More than ``max_symbols`` input symbols (None: no limit) is refused before any
    symbolic work, with :func:`estimate`'s size and time in the message.

    ``progress``: ``None`` prints the estimate and draws a progress bar over
    :data:`PHASES` (to ``stream``, default stderr) when it is a terminal and the run is
    estimated at two seconds or more; ``True`` always (plain lines when not a terminal);
    ``False`` never.  ``derive`` draws the first phase, :meth:`Derivation.prove_engine`
    the others.

    >>> d = derive(lambda x: (x * x).sum(), {"x": (2,)})
    >>> d.gradients["x"]
    array([2*dO*x_0, 2*dO*x_1], dtype=object)
    >>> d.prove_engine().ok
    True
    """
    sym_shapes, pos = _symbolic_shapes(shapes, positive, domains or {})
    _check_size(sym_shapes, max_symbols, fn, shapes)
    bar = start_progress(fn, shapes, len(PHASES), progress, stream)
    return _build(fn, shapes, sym_shapes, pos, bar, cotangent=cotangent, domains=domains,
                  output_names=output_names, seed=seed)


def _build(fn: Callable[..., Any], shapes: Mapping[str, Any], sym_shapes: dict[str, Shape],
           pos: set[str], bar: Progress | None, cotangent: str | Sequence[Any],
           domains: Mapping[str, tuple[float, float]] | None,
           output_names: Sequence[str] | None, seed: int) -> Derivation:
    """:func:`derive` after its checks, drawing the forward phase on ``bar`` (its line
    ends when this returns or raises)."""
    with bar if bar is not None else contextlib.nullcontext():
        if bar is not None:
            bar.update(0, "forward")
        args, inputs, sym_domains = _arguments(shapes, sym_shapes, pos, domains or {})
        outs = tuple(o if o.dtype == object else
                     Tensor(sym_xp.constant(o.data, None), _validated=True)
                     for o in _run("derive", fn, args))
        der = _derivation(fn, inputs, outs, args, sym_domains, cotangent, output_names, seed)
        der.progress = bar
        der.advance("forward built", done=True)
    return der


def _derivation(fn: Callable[..., Any], inputs: dict[str, Tensor], outs: tuple[Tensor, ...],
                args: list[Tensor], sym_domains: dict[sp.Symbol, tuple],
                cotangent: str | Sequence[Any], output_names: Sequence[str] | None,
                seed: int) -> Derivation:
    """The :class:`Derivation` of the recorded outputs, with their upstream gradients."""
    if output_names is None:
        output_names = ["O"] if len(outs) == 1 else [f"O{k}" for k in range(len(outs))]
    if len(output_names) != len(outs):
        raise ValueError(f"derive: {len(output_names)} output_names for {len(outs)} outputs")
    gs = _upstream(cotangent, outs, list(output_names), seed)
    _check_distinct([(k, t.data) for k, t in inputs.items()]
                    + [(f"cotangent of {n}", g) for n, g in zip(output_names, gs)])
    return Derivation(fn, inputs, outs, list(output_names), gs, sym_domains, args=args)


def _symbolic_shapes(shapes: Mapping[str, Any], positive: bool | Sequence[str],
                     domains: Mapping[str, Any]) -> tuple[dict[str, Shape], set[str]]:
    """The shapes of the symbolic inputs (the rest are constants) and the names of the
    positive ones, after refusing unknown names or no symbolic input."""
    if not isinstance(shapes, Mapping) or not shapes:
        raise TypeError("derive: shapes must be a non-empty dict such as {'Q': (2, 3)}")
    pos = set(shapes) if positive is True else set(positive or ())
    unknown = (pos | set(domains)) - set(shapes)
    if unknown:
        raise ValueError(f"derive: {sorted(unknown)} are not inputs; inputs are {list(shapes)}")
    sym_shapes = {k: _shape(k, v) for k, v in shapes.items()
                  if not isinstance(v, (np.ndarray, Tensor))}
    if not sym_shapes:
        raise ValueError("derive: every input is a constant array; give at least one shape")
    return sym_shapes, pos


def _arguments(shapes: Mapping[str, Any], sym_shapes: Mapping[str, Shape], pos: set[str],
               domains: Mapping[str, tuple[float, float]]
               ) -> tuple[list[Tensor], dict[str, Tensor], dict[sp.Symbol, tuple]]:
    """The arguments of ``fn`` in order (symbolic Tensors and exact constants), the
    symbolic ones by name, and the interval of random points for each symbol."""
    args: list[Tensor] = []
    inputs: dict[str, Tensor] = {}
    sym_domains: dict[sp.Symbol, tuple] = {}
    for name, v in shapes.items():
        if name in sym_shapes:
            t = symbols(name, sym_shapes[name], positive=name in pos)
            inputs[name] = t
            dom = domains.get(name, POSITIVE_DOMAIN if name in pos else DEFAULT_DOMAIN)
            sym_domains.update({s: dom for s in t.data.reshape(-1)})
        else:
            data = v.data if isinstance(v, Tensor) else np.asarray(v)
            t = Tensor(sym_xp.constant(data, None), name=name, _validated=True)
        args.append(t)
    return args, inputs, sym_domains


def _upstream(cotangent: Any, outs: Sequence[Tensor], names: list[str], seed: int
              ) -> tuple[np.ndarray, ...]:
    """The upstream gradient of every output, as object arrays: symbols ``d<name>_i_j``,
    random nonzero rationals, or the given arrays made exact."""
    if isinstance(cotangent, str):
        if cotangent == "symbolic":
            return tuple(symbols("d" + n, o.shape).data for n, o in zip(names, outs))
        if cotangent == "random":
            rng = np.random.default_rng(seed)
            return tuple(_random_rationals(o.shape, rng) for o in outs)
        raise ValueError(f"derive: cotangent must be 'symbolic', 'random' or arrays, got "
                         f"{cotangent!r}")
    gs = list(cotangent)
    if len(gs) != len(outs):
        raise ValueError(f"derive: {len(gs)} cotangents for {len(outs)} outputs")
    res = []
    for g, o in zip(gs, outs):
        arr = as_expr_array(np.asarray(g.data if isinstance(g, Tensor) else g))
        if arr.shape != o.shape:
            raise ValueError(f"derive: a cotangent has shape {arr.shape} but its output has "
                             f"shape {o.shape}")
        res.append(arr)
    return tuple(res)


def _random_rationals(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """Small nonzero rationals ``±p/q`` (p < 10, q < 8): exact, cheap to differentiate."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = sp.Rational(int(rng.choice([-1, 1]) * rng.integers(1, 10)),
                                 int(rng.integers(1, 8)))
    return out


def _check_distinct(arrays: Sequence[tuple[str, Any]]) -> None:
    """Refuse one symbol standing for elements of two arrays (``Q`` (2, 2) and ``Q_0``
    (2,) would both have ``Q_0_0``)."""
    seen: dict[sp.Symbol, str] = {}
    for label, arr in arrays:
        for e in np.ravel(arr):
            if not isinstance(e, sp.Symbol):
                continue
            if e in seen and seen[e] != label:
                raise ValueError(f"derive: the symbol {e} would stand for an element of "
                                 f"{seen[e]} and of {label}; rename an input (or pass "
                                 f"output_names)")
            seen[e] = label

# ----------------------------------------------------------------------------- gradcheck

class ExactGradients(list):
    """What :func:`exact_gradients` returns: a list of float64 arrays, one per input with
    ``requires_grad``, and ``proof``: the :class:`Proof` of the engine's backward on
    ``sample`` random elements when a sample was asked for (else None)."""

    proof: Proof | None = None


def exact_gradients(fn: Callable[..., Any], inputs: Sequence[Tensor],
                    cotangents: Sequence[np.ndarray], digits: int = 50,
                    max_symbols: int | None = MAX_SYMBOLS, sample: int | None = None,
                    progress: bool | None = None, stream: TextIO | None = None
                    ) -> ExactGradients:
    """The exact gradient of :math:`L = \\sum_k \\langle g_k, f_k(x)\\rangle` at the
    float64 point ``inputs``, one float64 array per input with ``requires_grad``
    (``cotangents`` are the upstream gradients :math:`g_k`, one per output).

    The exact derivative is evaluated at the exact binary values of the inputs and
    upstream gradients with ``digits`` significant digits, then rounded: the float64
    nearest the true gradient, free of the rounding the engine's float64 arithmetic
    makes.  Inputs without ``requires_grad`` enter as exact constants.  ``sample=K``
    also proves ``K`` random elements of the engine's backward equal to the exact
    derivative, symbolically at the full size (``.proof`` of the result).
    ``progress``, ``stream``: as in :func:`derive`, over :data:`EXACT_PHASES` (and the
    last two of :data:`PHASES` with ``sample``).
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
    n_out = len(cotangents)
    sym_shapes, pos = _symbolic_shapes(shapes, (), {})
    _check_size(sym_shapes, max_symbols, fn, shapes)
    phases = len(EXACT_PHASES) + (len(PHASES) - 1 if sample is not None else 0)
    der = _build(fn, shapes, sym_shapes, pos, start_progress(fn, shapes, phases, progress,
                                                             stream),
                 cotangent="symbolic", domains=None, seed=0,
                 output_names=["out"] if n_out == 1 else [f"out{k}" for k in range(n_out)])
    values = {n: inputs[i].data for i, n in enumerate(names) if inputs[i].requires_grad}
    der.advance(EXACT_PHASES[1])
    grads = der.evaluate(values, cotangents=list(cotangents), digits=digits)
    der.advance("exact derivative evaluated", done=True)
    out = ExactGradients(grads[n] for n in names if n in grads)
    if sample is not None:
        out.proof = der.prove_engine(sample=sample)
    return out
