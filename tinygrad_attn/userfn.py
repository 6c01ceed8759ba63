"""Loading a user's function from ``FILE.py:FUNCTION`` or ``MODULE:FUNCTION`` (the CLI's
``check`` and ``graph`` commands)."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable


def load_function(spec: str) -> Callable[..., Any]:
    """``path/to/file.py:function`` or ``package.module:function`` -> the function.

    Raises ``ValueError`` with one line that says what is wrong (no such file, a file that
    fails to import, no such module or function).
    """
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ValueError(f"expected FILE.py:FUNCTION or MODULE:FUNCTION, got {spec!r}")
    if where.endswith(".py") or os.sep in where:
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"no such file: {where}")
        module_spec = importlib.util.spec_from_file_location(f"_user_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.resolve().parent))  # its own imports, as `python file`
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file failed to import
            raise ValueError(f"{where} failed to import: {type(exc).__name__}: {exc}") from None
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ValueError(f"cannot import module {where!r}: {exc}") from None
    fn = getattr(module, name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"{where} has no function {name!r}")
    return fn
