"""One progress line for long runs (the demo, training): ``[=====>    ] 3/20 what``.

On a terminal the line is redrawn in place with a carriage return; elsewhere (a log file,
a pipe, a test's StringIO) it is off unless asked for, and then each update is one plain
line.  No dependency.
"""
from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """A progress line over ``total`` units of work.

    ``enabled=None`` (the default) shows it only when ``stream`` (default: stderr) is a
    terminal; ``True`` shows it anyway, one line per update; ``False`` never.  ``label``
    starts the line (e.g. ``"step"``).  Use as a context manager, or call :meth:`close`,
    so a redrawn line ends with a newline.
    """

    #: True while some bar's line is being redrawn on a terminal: a bar asked for
    #: automatically (``enabled=None``) inside another one stays off
    #: (:func:`~tinygrad_attn.verify.estimate.start_progress`).
    drawing = False

    def __init__(self, total: int, *, label: str = "", stream: TextIO | None = None,
                 enabled: bool | None = None, width: int = 24) -> None:
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = self.tty if enabled is None else bool(enabled)
        self.t0 = time.perf_counter()
        self._drawn = 0            # length of the line last redrawn in place (0: none)

    def line(self, done: int, text: str = "") -> str:
        """The progress line after ``done`` units, with ``text`` and the elapsed time."""
        filled = min(self.width, self.width * done // self.total)
        bar = "=" * filled + (">" if filled < self.width else "")
        count = f"{done:>{len(str(self.total))}}/{self.total}"
        head = f"{self.label} {count}" if self.label else count
        return (f"{head} [{bar.ljust(self.width)[:self.width]}] {text} "
                f"{time.perf_counter() - self.t0:6.1f}s")

    def update(self, done: int, text: str = "") -> None:
        """Show that ``done`` of ``total`` units are finished; ``text`` says what runs."""
        if not self.enabled:
            return
        line = self.line(done, text)
        if self.tty:
            self.stream.write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)
            Progress.drawing = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a line redrawn in place (nothing to do otherwise)."""
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0
            Progress.drawing = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
