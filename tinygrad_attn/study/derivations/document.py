r"""What every derivation document shares: the Markdown being assembled, the proof table,
the size labels, the "for every size" section, and writing ``<name>.md``.

A derivation module calls :class:`Document` methods in reading order: :meth:`~Document.add`
for prose, :meth:`~Document.check` for each proof (it becomes a row of the table),
:meth:`~Document.proofs_section` for the table, :meth:`~Document.every_size` for the
proof at symbolic sizes.  No SymPy is imported here: the proofs come from
:mod:`tinygrad_attn.verify.symbolic`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...verify.symbolic import Proof

__all__ = ["Check", "Result", "Document", "sizes", "source_path", "write"]

#: Where the notation used by every document is written down (relative to a document).
NOTATION = "../docs/notation.md"


def source_path(name: str) -> str:
    """The repository path of derivation ``name``'s source module."""
    return f"tinygrad_attn/study/derivations/{name}.py"


def sizes(**kw: int) -> str:
    """The sizes a proof ran at, as a table cell: ``sizes(m=2, d_k=3)`` gives
    ``$m = 2$, $d_{k} = 3$`` (the part after the first underscore is a subscript)."""
    out = []
    for k, v in kw.items():
        base, _, sub = k.partition("_")
        out.append(f"${base}{'_{' + sub + '}' if sub else ''} = {v}$")
    return ", ".join(out)


@dataclass
class Check:
    """One row of a document's proof table: what is claimed, at which sizes, the proof."""

    claim: str
    sizes: str
    proof: Proof

    @property
    def row(self) -> str:
        """The Markdown table row: the verdict says how the claim was decided."""
        verdict = self.proof.verdict if self.proof.ok else f"**{self.proof.verdict}**"
        return f"| {self.claim} | {self.sizes} | {self.proof.checked} | {verdict} |"


@dataclass
class Result:
    """A built document: its Markdown, the checks behind it, and where it was written."""

    name: str
    markdown: str
    checks: list[Check] = field(default_factory=list)
    path: Path | None = None

    @property
    def ok(self) -> bool:
        """Every check holds (proven, or agreeing numerically where no proof was found)."""
        return all(c.proof.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        """The weakest verdict among the checks, in words: what a summary prints."""
        if not self.ok:
            return "FAILED"
        if all(c.proof.method in ("exact", "normal form") for c in self.checks):
            return "all proven (exact)"
        if all(c.proof.proven for c in self.checks):
            k = min(c.proof.k for c in self.checks if c.proof.k is not None)
            return f"all proven (exact, or with probability >= 1 - 2^-{k})"
        numeric = sum(not c.proof.proven for c in self.checks)
        return f"{numeric} of {len(self.checks)} agree numerically (not a proof), the rest proven"

    @property
    def short(self) -> str:
        """The verdict for a table cell: ``proven (exact)``, ``proven (1 - 2^-k)``,
        ``agrees numerically`` or ``FAILED``."""
        if not self.ok:
            return "FAILED"
        if all(c.proof.method in ("exact", "normal form") for c in self.checks):
            return "proven (exact)"
        if all(c.proof.proven for c in self.checks):
            return f"proven (1 - 2^-{min(c.proof.k for c in self.checks if c.proof.k)})"
        return "agrees numerically"

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.verdict} ({len(self.checks)} checks)"
                 + (f" -> {self.path}" if self.path else "")]
        lines += [f"  {'ok  ' if c.proof.ok else 'FAIL'} {c.claim} [{c.sizes}]: "
                  f"{c.proof.verdict}" for c in self.checks]
        return "\n".join(lines)


_VERDICTS = (
    "Every row covers *all* elements at the sizes given, with a symbolic upstream gradient "
    "$\\bar O$ (so the whole Jacobian, not one projection of it), and says how it was "
    "decided. *proven (exact)*: the difference cancels exactly. *proven with probability "
    ">= 1 - 2^-k (identity testing)*: exp, tanh and the other transcendental atoms are "
    "treated as independent variables, so both sides are rational functions, and their "
    "difference vanishes at random points of random prime fields; a false identity passes "
    "with probability at most $2^{-k}$ (treating atoms as independent can only fail to "
    "prove a true identity, never prove a false one). *agrees numerically (not a proof)*: "
    "the difference is below $10^{-40}$ relative at random points with 50 significant "
    "digits. See [how a check decides](../docs/derivations.md).")


class Document:
    """The Markdown of derivation ``name`` being written, and the checks proven on the way.

    The header names the source module, the command that rebuilds the document and the
    notation page, so a reader of the ``.md`` knows where to look.
    """

    def __init__(self, name: str, title: str) -> None:
        self.name = name
        self.parts: list[str] = [
            f"# {title}", "",
            f"*Generated by `{source_path(name)}` (`tinygrad-attn derive {name}`); do not "
            f"edit by hand. Notation: [docs/notation.md]({NOTATION}).*", ""]
        self.checks: list[Check] = []

    def add(self, text: str) -> None:
        """Append a block of Markdown (leading and trailing blank lines dropped)."""
        self.parts.append(text.strip("\n"))
        self.parts.append("")

    def check(self, claim: str, sizes: str, proof: Proof) -> Proof:
        """Record ``proof`` of ``claim`` at ``sizes`` as a row of the proof table."""
        self.checks.append(Check(claim, sizes, proof))
        return proof

    def proofs_section(self) -> None:
        """The section "Checked at explicit sizes": what the verdicts mean, and the table
        of every check so far."""
        self.add("## Checked at explicit sizes")
        self.add(_VERDICTS)
        self.add("| claim | sizes | elements | verdict |\n"
                 "|---|---|---|---|\n" + "\n".join(c.row for c in self.checks))

    def every_size(self, mechanism: str, label: str | None = None) -> None:
        """The section "For every size" of :mod:`tinygrad_attn.verify.everysize` for
        ``mechanism`` (``label`` tells two such sections in one document apart), then what
        :mod:`tinygrad_attn.verify.ownbackward` proves of the engine's own code."""
        from ...verify.everysize import every_size_section
        from ...verify.ownbackward import every_size_lines

        first, _, rest = every_size_section(mechanism).partition("\n")
        if label:
            first += f": {label}"
        self.add(first + "\n\n*Generated by `tinygrad_attn/verify/everysize.py`.*\n" + rest)
        engine = every_size_lines(mechanism)      # the engine's own code, for every size
        if engine:
            self.add("\n".join(engine))

    def exercises(self) -> None:
        """The section "Exercises": this page's exercises and how to check an answer (the
        solutions live apart, for teachers); nothing when the page has none."""
        from ..exercises import exercises_for

        mine = exercises_for(self.name)
        if not mine:
            return
        self.add("## Exercises")
        self.add("Write each answer as a Python function with the engine's Tensor ops and "
                 "check it exactly: `tinygrad-attn exercise NAME answer.py:FUNCTION` (with "
                 "NAME alone it prints a skeleton). A wrong answer is located, never "
                 "corrected. See [the exercises](../docs/exercises.md).")
        self.add("\n".join(f"{k}. **{e.title}** (`{e.name}`). {e.statement}"
                            for k, e in enumerate(mine, 1)))

    def result(self) -> Result:
        """The finished document."""
        return Result(self.name, "\n".join(self.parts).rstrip("\n") + "\n", self.checks)


def write(result: Result, out_dir: str | Path) -> Path:
    """Write ``result`` to ``<out_dir>/<name>.md`` (creating the folder); sets and returns
    ``result.path``."""
    path = Path(out_dir) / f"{result.name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.markdown, encoding="utf-8")
    result.path = path
    return path
