"""The bad-input catalogue of docs/reliability.md: what a user gets for each mistake.

Each :class:`Row` is one bad input, as code that runs, the error it must raise (or the
result it must give) and a pattern the message must match: it names the argument and
the value or shapes at fault.  tests/test_catalogue.py runs every row, and checks that
docs/reliability.md shows exactly what the rows give now, so the document and the
behaviour cannot drift.  After changing a row or a message, regenerate the document:

    python tests/catalogue.py
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


@dataclass(frozen=True)
class Row:
    """One bad input: ``code`` (statements; the last line's value is the result),
    what it raises (an exception type, or None when it gives a result), and a regular
    expression the message (or the result's repr) must match."""

    kind: str
    what: str
    code: str
    raises: type[BaseException] | None
    match: str
    shown: str | None = None          # what the document shows instead of ``code``


# ----------------------------------------------------------------------------- the prelude

PRELUDE = '''
import numpy as np
import tinygrad_attn as ta
from tinygrad_attn import attention as A

class Twice(ta.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2.0
    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * 2.0

def function(name, forward=None, backward=None):
    """A Function class called ``name`` with the given forward and backward."""
    return type(name, (Twice,), {
        **({"forward": staticmethod(forward)} if forward else {}),
        **({"backward": staticmethod(backward)} if backward else {})})

x = ta.Tensor(np.ones((2, 3)), requires_grad=True, name="x")
q, k, v = np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 2))
'''

USER_FILE = '''
def scores(q, k):
    return (q @ k.T).sum()

def broken(q):
    raise ValueError("q must be positive")
'''


def cli(*argv: str) -> str:
    """``tinygrad-attn ARGV`` in a folder holding ``user.py``: exit code and stderr."""
    from tinygrad_attn.cli import main

    err = io.StringIO()
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        (Path(folder) / "user.py").write_text(USER_FILE)
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            code = main(list(argv))
        except SystemExit as exc:       # argparse's own usage errors
            code = exc.code
        finally:
            os.chdir(cwd)
    return f"exit {code}: {err.getvalue().strip().splitlines()[-1]}"


# ----------------------------------------------------------------------------- the rows

R = Row
ROWS: list[Row] = [
    # -- shapes
    R("shapes", "matmul of mismatched shapes", "x @ ta.Tensor(np.ones((4, 5)))",
      ValueError, r"matmul: shapes \(2, 3\) and \(4, 5\) do not match"),
    R("shapes", "matmul of a 0-d Tensor", "x @ ta.Tensor(2.0)", ValueError,
      r"matmul: operands must have at least 1 dimension, got shapes \(2, 3\) and \(\)"),
    R("shapes", "matmul whose batch axes do not broadcast",
      "ta.Tensor(np.ones((2, 2, 3))) @ ta.Tensor(np.ones((3, 3, 2)))", ValueError,
      r"matmul \(batch axes\): shapes \(2,\) and \(3,\) cannot be broadcast"),
    R("shapes", "element-wise op of shapes that do not broadcast",
      "x + ta.Tensor(np.ones(4))", ValueError,
      r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
    R("shapes", "reshape to a different size", "x.reshape(4)", ValueError,
      r"reshape: cannot reshape a Tensor of shape \(2, 3\) into shape \(4,\)"),
    R("shapes", "expand to a shape the Tensor does not broadcast to", "x.expand(4, 3)",
      ValueError, r"expand: cannot expand a Tensor of shape \(2, 3\) to shape \(4, 3\)"),
    R("shapes", "expand to fewer axes", "x.expand(3)", ValueError,
      r"expand: cannot expand a Tensor of shape \(2, 3\) to shape \(3,\)"),
    R("shapes", "squeeze an axis that is not of size 1", "x.squeeze(0)", ValueError,
      r"squeeze: axis 0 of shape \(2, 3\) has size 2, not 1"),
    R("shapes", "index out of range", "x[5]", IndexError,
      r"getitem: index 5 is invalid for a Tensor of shape \(2, 3\)"),
    R("shapes", "an index that is not one", "x['a']", IndexError,
      r"getitem: index 'a' is invalid for a Tensor of shape \(2, 3\)"),
    R("shapes", "reshape with two unknown sizes", "x.reshape(-1, -1)", ValueError,
      r"reshape: cannot reshape a Tensor of shape \(2, 3\) into shape \(-1, -1\)"),
    R("shapes", "concat of Tensors that differ outside the axis",
      "ta.concat([x, ta.Tensor(np.ones((3, 3)))], axis=1)", ValueError,
      r"concat: shapes \[\(2, 3\), \(3, 3\)\] differ outside axis 1"),
    R("shapes", "stack of Tensors of different shapes", "ta.stack([x, x.T])", ValueError,
      r"stack: needs Tensors of one shape, got \[\(2, 3\), \(3, 2\)\]"),
    R("shapes", "backward with an upstream gradient of the wrong shape",
      "(x * 2.0).backward(np.ones(3))", ValueError,
      r"backward: the gradient has shape \(3,\) but the output has shape \(2, 3\)"),
    R("shapes", "backward of a non-scalar without an upstream gradient",
      "(x * 2.0).backward()", RuntimeError,
      r"backward: the output has shape \(2, 3\), not a scalar"),
    # -- axes
    R("axes", "axis out of range", "x.sum(axis=2)", ValueError,
      r"sum: axis 2 is out of range for a Tensor of shape \(2, 3\) \(2 dimensions\)"),
    R("axes", "a float axis (was silently truncated)", "x.sum(axis=1.5)", TypeError,
      r"sum: axis must be an int or a tuple of ints, got 1.5"),
    R("axes", "a repeated axis", "x.max(axis=(1, -1))", ValueError,
      r"max: axis \(1, -1\) repeats axis 1"),
    R("axes", "softmax over two axes", "x.softmax(axis=(0, 1))", TypeError,
      r"softmax: axis must be an int, got \(0, 1\)"),
    R("axes", "axis 1 of a 0-d Tensor", "ta.Tensor(2.0).mean(axis=1)", ValueError,
      r"mean: axis 1 is out of range for a Tensor of shape \(\) \(0 dimensions\)"),
    R("axes", "axis 0 of a 0-d Tensor: its one element, as np.sum",
      "ta.Tensor(2.0).log_softmax(axis=0)", None, r"Tensor\(0\.\)"),
    R("axes", "transpose with a repeated axis", "x.transpose(0, 0)", ValueError,
      r"transpose: axis \(0, 0\) repeats axis 0"),
    R("axes", "stack along an axis out of range", "ta.stack([x, x], axis=3)", ValueError,
      r"stack: axis 3 is out of range for a Tensor of shape \(2, 3\) and a new axis"),
    # -- masks
    R("masks", "an integer mask", "A.dot_product(q, k, v, mask=np.ones((2, 4), int))",
      TypeError, r"dot_product: mask must be a boolean array \(True = attend\), got dtype "
                 r"int64"),
    R("masks", "a mask that does not broadcast to the weights",
      "A.dot_product(q, k, v, mask=np.ones((3, 4), bool))", ValueError,
      r"dot_product: mask of shape \(3, 4\) cannot be broadcast to the weights' shape "
      r"\(2, 4\)"),
    R("masks", "a fully masked query row: zero weights, not NaN",
      "A.dot_product(q, k, v, mask=np.array([[True] * 4, [False] * 4]))[1].data",
      None, r"array\(\[\[0\.25, 0\.25, 0\.25, 0\.25\],\s+\[0\.  , 0\.  , 0\.  , 0\.  \]\]\)"),
    R("masks", "a float condition in where", "ta.where(np.ones((2, 3)), x, 0.0)", TypeError,
      r"where: the condition must be a boolean array, got dtype float64"),
    R("masks", "a condition that does not broadcast", "ta.where(np.ones(5, bool), x, 0.0)",
      ValueError, r"where: shapes \(5,\) and \(2, 3\) cannot be broadcast together"),
    R("masks", "padding lengths longer than the sequence", "A.padding_mask([2, 5], 4)",
      ValueError, r"padding_mask: lengths must lie in \[0, n=4\], got \[2, 5\]"),
    R("masks", "a negative causal mask size", "A.causal_mask(-1)", ValueError,
      r"causal_mask: m must be a non-negative int, got -1"),
    # -- mechanisms
    R("mechanisms", "queries and keys of different widths",
      "A.dot_product(q, np.ones((4, 5)), v)", ValueError,
      r"dot_product: query and keys do not match: query has shape \(2, 3\) .* keys has "
      r"shape \(4, 5\)"),
    R("mechanisms", "keys and values of different lengths",
      "A.scaled_dot_product(q, k, np.ones((5, 2)))", ValueError,
      r"scaled_dot_product: keys and values must have the same length n, got keys "
      r"\(4, 3\) \(n=4\) and values \(5, 2\) \(n=5\)"),
    R("mechanisms", "a 0-d query", "A.dot_product(np.float64(1.0), k, v)", ValueError,
      r"dot_product: query must have shape \(\.\.\., m, d_q\) or \(d_q,\), got shape \(\)"),
    R("mechanisms", "a head count that does not divide the model width",
      "A.multi_head(q, k, *[np.ones((3, 4))] * 3, np.ones((4, 2)), num_heads=3)",
      ValueError, r"multi_head: num_heads=3 does not divide the model dimension 4 of W_q "
                  r"\(3, 4\)"),
    R("mechanisms", "no heads", "A.multi_head(q, k, *[np.ones((3, 4))] * 3, np.ones((4, 2)), "
      "num_heads=0)", ValueError, r"multi_head: num_heads must be a positive int, got 0"),
    R("mechanisms", "a head count that is not an int",
      "A.multi_head(q, k, *[np.ones((3, 4))] * 3, np.ones((4, 2)), num_heads=2.0)",
      ValueError, r"multi_head: num_heads must be a positive int, got 2.0"),
    R("mechanisms", "Bahdanau's v of the wrong size",
      "A.additive(q, k, v, np.ones((3, 5)), np.ones((3, 5)), np.ones(4))", ValueError,
      r"additive: v must have shape \(h,\) = \(5,\) to match W_q \(3, 5\), got \(4,\)"),
    R("mechanisms", "queries and keys of width d_k = 0",
      "A.scaled_dot_product(np.ones((2, 0)), np.ones((4, 0)), v)", ValueError,
      r"scaled_dot_product: q \(2, 0\) and k \(4, 0\) have width d_k = 0"),
    R("mechanisms", "an unknown implementation", "A.scaled_dot_product(q, k, v, impl='fast')",
      ValueError, r"impl must be one of 'auto', 'plain', 'blocked', got 'fast'"),
    # -- the ops of engine/ops_more.py
    R("ops", "einsum subscripts that repeat within an operand (a diagonal)",
      "ta.einsum('ii->i', ta.Tensor(np.ones((3, 3))))", ValueError,
      r"einsum: operand 0's subscripts 'ii' in 'ii->i' repeat 'i' \(a diagonal or a "
      r"trace\), which einsum does not support"),
    R("ops", "einsum operands whose sizes disagree", "ta.einsum('ij,jk->ik', x, x)",
      ValueError, r"einsum: subscript 'j' of 'ij,jk->ik' has size 3 in operand 0 but 2 in "
                  r"operand 1"),
    R("ops", "einsum with subscripts for fewer operands than given",
      "ta.einsum('ij->ji', x, x)", ValueError,
      r"einsum: spec 'ij->ji' has subscripts for 1 operand\(s\) but 2 were given"),
    R("ops", "clamp without a bound", "x.clamp()", ValueError,
      r"clamp: at least one of min and max must be given"),
    R("ops", "a comparison of shapes that do not broadcast", "x > ta.Tensor(np.ones(4))",
      ValueError, r"comparison >: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
    R("ops", "softplus with beta = 0", "x.softplus(beta=0)", ValueError,
      r"softplus: beta must be a positive number, got 0"),
    R("ops", "a comparison is a boolean Tensor without gradient", "x > 0.5", None,
      r"Tensor\(\[\[ True  True  True\]\s+\[ True  True  True\]\]\)"),
    # -- dtypes
    R("dtypes", "an integer array", "ta.Tensor(np.arange(3))", TypeError,
      r"Tensor: data of dtype int64 is not a float array"),
    R("dtypes", "a float16 array (was silently widened to float64)",
      "ta.Tensor(np.ones(2, np.float16))", TypeError,
      r"Tensor: dtype must be float32 or float64, got float16"),
    R("dtypes", "an integer dtype asked for", "ta.Tensor([1, 2], dtype=np.int32)", TypeError,
      r"Tensor: dtype must be float32 or float64, got int32"),
    R("dtypes", "complex data", "ta.Tensor(np.ones(2, complex))", TypeError,
      r"Tensor: data of dtype complex128 is not a float array"),
    R("dtypes", "a string", "ta.Tensor('abc')", TypeError,
      r"Tensor: cannot make a float array from str"),
    R("dtypes", "a ragged list", "ta.Tensor([[1.0, 2.0], [3.0]])", TypeError,
      r"Tensor: cannot make a float array from list"),
    R("dtypes", "an object array of non-SymPy values",
      "ta.Tensor(np.array([1.0, 'a'], dtype=object))", TypeError,
      r"Tensor: an object array must hold SymPy expressions .* found an element of type "
      r"float: 1.0"),
    R("dtypes", "astype to an integer dtype", "x.astype(np.int64)", TypeError,
      r"astype: dtype must be float32 or float64, got int64"),
    R("dtypes", "a float64 array in a float32 graph: the gradient stays float32",
      "w = ta.Tensor(np.ones(2, np.float32), requires_grad=True)\n"
      "(w * np.arange(2.0)).sum().backward()\nw.grad.dtype", None, r"dtype\('float32'\)"),
    # -- NaN and inf
    R("NaN and inf", "log of a negative number: NaN, as NumPy", "ta.Tensor([-1.0]).log().data",
      None, r"array\(\[nan\]\)"),
    R("NaN and inf", "softmax of a row holding +inf: NaN where inf / inf is (PyTorch: the "
      "whole row)", "ta.Tensor([np.inf, 1.0]).softmax().data", None,
      r"array\(\[nan,\s+0\.\]\)"),
    R("NaN and inf", "softmax of a row of -inf only: zeros",
      "ta.Tensor([-np.inf, -np.inf]).softmax().data", None, r"array\(\[0\., 0\.\]\)"),
    R("NaN and inf", "logits of 1e4: finite, exact weights",
      "ta.Tensor([1e4, -1e4, 0.0]).softmax().data", None, r"array\(\[1\., 0\., 0\.\]\)"),
    R("NaN and inf", "a NaN in the values: a NaN context, as NumPy",
      "A.dot_product(q, k, np.full((4, 2), np.nan))[0].data", None,
      r"array\(\[\[nan, nan\],\s+\[nan, nan\]\]\)"),
    # -- empty arrays
    R("empty arrays", "max over an axis of size 0", "ta.Tensor(np.ones((0, 3))).max(axis=0)",
      ValueError, r"max: axis 0 has size 0 in shape \(0, 3\)"),
    R("empty arrays", "max over the other axis: empty, as NumPy",
      "ta.Tensor(np.ones((0, 3))).max(axis=1).shape", None, r"\(0,\)"),
    R("empty arrays", "softmax over a size-0 axis: empty",
      "ta.Tensor(np.ones((2, 0))).softmax().shape", None, r"\(2, 0\)"),
    R("empty arrays", "attention over zero keys: a zero context",
      "A.scaled_dot_product(q, np.ones((0, 3)), np.ones((0, 2)))[0].data", None,
      r"array\(\[\[0\., 0\.\],\s+\[0\., 0\.\]\]\)"),
    R("empty arrays", "the mean of nothing: NaN, as NumPy",
      "with np.errstate(invalid='ignore'):\n    m = ta.Tensor(np.ones(0)).mean()\nm.item()",
      None, r"nan", "ta.Tensor(np.ones(0)).mean().item()"),
    # -- the graph
    R("the graph", "a second backward through a freed graph",
      "y = (x * x).sum()\ny.backward()\ny.backward()", RuntimeError,
      r"backward: the graph through sum was freed by an earlier backward; pass "
      r"retain_graph=True"),
    R("the graph", "an array changed between forward and backward",
      "y = (x * x).sum()\nx.data[0, 0] = 5.0\ny.backward()", RuntimeError,
      r"backward: input 0 \(Tensor 'x', shape \(2, 3\)\) of mul was changed after the "
      r"forward"),
    R("the graph", "an index array changed between forward and backward",
      "i = np.array([0, 1])\ny = x[i].sum()\ni[0] = 1\ny.backward()", RuntimeError,
      r"backward: argument 'index' of getitem was changed after the forward"),
    R("the graph", "grad of an input that does not require grad",
      "ta.grad((x * 2.0).sum(), [ta.Tensor(np.ones(3))])", ValueError,
      r"grad: input 0 does not require grad"),
    R("the graph", "grad of an input the output does not use",
      "ta.grad((x * 2.0).sum(), [x, ta.Tensor(np.ones(3), requires_grad=True)])",
      RuntimeError, r"grad: input 1 \(unnamed, shape \(3,\)\) was not used to compute the "
                    r"output; pass allow_unused=True"),
    R("the graph", "backward of an output that needs no gradient",
      "ta.Tensor(np.ones(2)).sum().backward()", RuntimeError,
      r"backward: the output does not require grad"),
    R("the graph", "a Tensor in an if", "bool(x)", TypeError,
      r"Tensor: the truth value of a Tensor is ambiguous"),
    # -- custom Functions
    R("Functions", "a gradient of the wrong shape (g.T for a (2, 3) input)",
      "function('Transposed', backward=lambda ctx, g: g.T).apply(x).sum().backward()",
      ValueError, r"Transposed.backward returned a gradient of shape \(3, 2\) for input 0 of "
                  r"shape \(2, 3\)"),
    R("Functions", "a gradient of the input's size but not its shape",
      "function('Flat', backward=lambda ctx, g: g.reshape(-1)).apply(x).sum().backward()",
      ValueError, r"Flat.backward returned a gradient of shape \(6,\) for input 0 of shape "
                  r"\(2, 3\)"),
    R("Functions", "too many gradients",
      "function('Two', backward=lambda ctx, g: (g, g)).apply(x).sum().backward()",
      RuntimeError, r"Two.backward returned 2 gradients for 1 inputs"),
    R("Functions", "a string for a gradient",
      "function('Text', backward=lambda ctx, g: 'g').apply(x).sum().backward()",
      TypeError, r"Text.backward returned a str for input 0; a gradient is an array"),
    R("Functions", "a Tensor from an array backward",
      "function('Wrapped', backward=lambda ctx, g: ta.Tensor(g)).apply(x).sum().backward()",
      TypeError, r"Wrapped.backward returned a Tensor for input 0"),
    R("Functions", "None for a gradient: no gradient, as PyTorch",
      "function('Nothing', backward=lambda ctx, g: None).apply(x).sum().backward()\n"
      "x.grad", None, r"None"),
    R("Functions", "a forward that returns None",
      "function('Silent', forward=lambda ctx, a: None).apply(x)", TypeError,
      r"Silent.forward returned None; a Function's forward returns one array"),
    R("Functions", "a forward that returns two arrays",
      "function('Pair', forward=lambda ctx, a: (a, a)).apply(x)", TypeError,
      r"Pair.forward returned a tuple; a Function's forward returns one array"),
    R("Functions", "a forward that returns integers",
      "function('Count', forward=lambda ctx, a: np.arange(3)).apply(x)", TypeError,
      r"Count.forward returned an array of dtype int64"),
    R("Functions", "a second derivative through an array backward",
      "(g,) = ta.grad(Twice.apply(x).sum(), [x], create_graph=True)\nta.grad(g.sum(), [x])",
      RuntimeError, r"Twice.backward is written with arrays, so its gradient cannot be "
                    r"differentiated again"),
    # -- the command line
    R("command line", "a file that does not exist", "cli('check', 'nofile.py:f')", None,
      r"exit 2: tinygrad-attn check: error: no such file: nofile.py",
      "tinygrad-attn check nofile.py:f"),
    R("command line", "a function the file does not have", "cli('check', 'user.py:nope')",
      None, r"exit 2: .*user.py has no function 'nope'", "tinygrad-attn check user.py:nope"),
    R("command line", "a shape that is not NxM",
      "cli('check', 'user.py:scores', '--shape', 'q=4by8')", None,
      r"exit 2: .*bad --shape 'q=4by8': dimensions must be integers separated by 'x'",
      "tinygrad-attn check user.py:scores --shape q=4by8"),
    R("command line", "a parameter without a shape",
      "cli('check', 'user.py:scores', '--shape', 'q=2x3')", None,
      r"exit 2: .*missing --shape for parameter 'k' of scores",
      "tinygrad-attn check user.py:scores --shape q=2x3"),
    R("command line", "a range that is empty",
      "cli('check', 'user.py:scores', '--shape', 'q=2x3:2..1', '--shape', 'k=4x3')", None,
      r"exit 2: .*bad --shape 'q=2x3:2\.\.1': the range needs finite LOW < HIGH",
      "tinygrad-attn check user.py:scores --shape q=2x3:2..1 --shape k=4x3"),
    R("command line", "a shape for a parameter the function does not have",
      "cli('check', 'user.py:scores', '--shape', 'z=2')", None,
      r"exit 2: .*--shape names \['z'\] are not parameters of scores\(q, k\)",
      "tinygrad-attn check user.py:scores --shape z=2"),
    R("command line", "a function that raises", "cli('check', 'user.py:broken', '--shape', "
      "'q=2')", None, r"exit 2: .*broken raised ValueError: q must be positive \(at "
      r".*user\.py:6, in broken: raise ValueError",
      "tinygrad-attn check user.py:broken --shape q=2"),
    R("command line", "an unknown derivation", "cli('derive', 'nonsense')", None,
      r"exit 2: .*no derivation 'nonsense'", "tinygrad-attn derive nonsense"),
    R("command line", "a function that never returns, run under a time limit",
      "from tinygrad_attn.engine.timelimit import call_with_time_limit\n"
      "def spins():\n    while True:\n        pass\ncall_with_time_limit(spins, 0.1)",
      TimeoutError, r"spins did not finish within 0.1 s",
      "call_with_time_limit(spins, 0.1)  # spins() loops forever"),
]


# ----------------------------------------------------------------------------- running

@dataclass
class Outcome:
    """What a row gave: the exception (type, message, raised inside the package?) or the
    result's repr, and the warnings it issued."""

    error: type[BaseException] | None
    message: str
    inside: bool
    warned: list[str]


def run(row: Row) -> Outcome:
    """Run a row's code after the prelude, in a fresh namespace."""
    space: dict[str, Any] = {"cli": cli}
    exec(PRELUDE, space)
    *body, last = row.code.strip().split("\n")
    is_expression = not last.startswith((" ", "\t")) and _is_expression(last)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec("\n".join(body if is_expression else body + [last]), space)
            value = eval(last, space) if is_expression else None
        except Exception as exc:  # what the user gets
            frames = traceback.extract_tb(exc.__traceback__)
            inside = "tinygrad_attn" in frames[-1].filename
            return Outcome(type(exc), str(exc), inside, [str(w.message) for w in caught])
    return Outcome(None, repr(value), True, [str(w.message) for w in caught])


def _is_expression(line: str) -> bool:
    try:
        compile(line, "<row>", "eval")
    except SyntaxError:
        return False
    return True


def table() -> str:
    """The catalogue as Markdown: one section per kind, one row per bad input."""
    out, kind = [], None
    for row in ROWS:
        if row.kind != kind:
            kind = row.kind
            out += ["", f"### {kind[0].upper() + kind[1:]}", "",
                    "| bad input | code | what you get |", "| --- | --- | --- |"]
        got = run(row)
        shown = row.shown or row.code.replace("\n", "; ")
        result = f"`{got.error.__name__}`: {got.message}" if got.error else \
            f"no error: `{got.message}`"
        out.append(f"| {row.what} | `{_cell(shown)}` | {_cell(result)} |")
    return "\n".join(out[1:]) + "\n"


def _cell(text: str) -> str:
    """Text fit for one table cell (one line, no stray pipes)."""
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


def write(doc: Path = DOC) -> None:
    """Regenerate the catalogue between the markers of docs/reliability.md."""
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{table()}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    write()
    print(f"written: {DOC} ({len(ROWS)} bad inputs)")
