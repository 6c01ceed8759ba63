"""Run a callable under a wall-clock time limit: a user's function that never returns
ends with :class:`TimeLimitExceeded` instead of hanging its caller (the command line's
``check``).

In the main thread of a POSIX process a ``SIGALRM`` timer interrupts the callable at its
next Python bytecode, so an endless Python loop stops on time (a single long NumPy call
finishes first).  Anywhere else (another thread, Windows) the callable runs in a daemon
thread, in a copy of the caller's context (grad mode, scopes); when time is up the caller
gets the exception and the thread is abandoned: Python cannot stop a thread, so a caller
that must reclaim it exits the process.
"""
from __future__ import annotations

import contextvars
import signal
import threading
from typing import Any, Callable


class TimeLimitExceeded(TimeoutError):
    """A callable ran past its time limit."""


def call_with_time_limit(fn: Callable[..., Any], seconds: float | None, *args: Any,
                         **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or :class:`TimeLimitExceeded` once ``seconds`` of wall-clock
    time have passed (``None``: no limit).  Exceptions of ``fn`` pass through."""
    if seconds is None:
        return fn(*args, **kwargs)
    if not seconds > 0:
        raise ValueError(f"time limit: seconds must be positive, got {seconds!r}")
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _with_alarm(fn, seconds, args, kwargs)
    return _in_thread(fn, seconds, args, kwargs)


def _message(fn: Callable[..., Any], seconds: float) -> str:
    return f"{getattr(fn, '__name__', 'the function')} did not finish within {seconds:g} s"


def _with_alarm(fn: Callable[..., Any], seconds: float, args: tuple, kwargs: dict) -> Any:
    """The main thread: a one-shot timer whose signal raises inside ``fn``; the previous
    handler and timer are put back afterwards."""
    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(_message(fn, seconds))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer[0]:  # an enclosing timer keeps running
            signal.setitimer(signal.ITIMER_REAL, *outer)


def _in_thread(fn: Callable[..., Any], seconds: float, args: tuple, kwargs: dict) -> Any:
    """Elsewhere: ``fn`` in a daemon thread, waited for ``seconds``."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["value"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="time-limited call", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeLimitExceeded(_message(fn, seconds))
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
