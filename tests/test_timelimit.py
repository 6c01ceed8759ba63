"""A callable under a time limit (tinygrad_attn.engine.timelimit): an endless loop ends
with TimeLimitExceeded naming the function, in the main thread and in another thread;
results, exceptions, the grad mode and the signal handler pass through unchanged."""
from __future__ import annotations

import signal
import threading
import time

import pytest

import tinygrad_attn as ta
from tinygrad_attn.engine.timelimit import TimeLimitExceeded, call_with_time_limit


def never_returns():
    while True:
        pass


def test_an_endless_loop_in_the_main_thread_stops_on_time_naming_the_function():
    before = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    with pytest.raises(TimeLimitExceeded, match=r"never_returns did not finish within 0.2 s"):
        call_with_time_limit(never_returns, 0.2)
    assert time.perf_counter() - start < 5
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_endless_loop_called_from_another_thread_stops_on_time():
    """The abandoned worker is let go at the end, so it does not spin on in the tests."""
    caught, stop = [], threading.Event()

    def loops_until_told():
        while not stop.is_set():
            time.sleep(0.01)

    def caller():
        try:
            call_with_time_limit(loops_until_told, 0.2)
        except TimeLimitExceeded as exc:
            caught.append(str(exc))

    t = threading.Thread(target=caller)
    t.start()
    t.join(10)
    stop.set()
    assert caught == ["loops_until_told did not finish within 0.2 s"]


@pytest.mark.parametrize("in_thread", [False, True], ids=["main", "thread"])
def test_results_exceptions_and_the_grad_mode_pass_through(in_thread):
    def check():
        assert call_with_time_limit(lambda a, b=1: a + b, 5, 2, b=3) == 5
        assert call_with_time_limit(lambda: 7, None) == 7
        with pytest.raises(KeyError):
            call_with_time_limit(lambda: {}["x"], 5)
        with ta.no_grad():
            assert call_with_time_limit(ta.is_grad_enabled, 5) is False
        with pytest.raises(ValueError, match="seconds must be positive, got 0"):
            call_with_time_limit(lambda: 1, 0)

    if not in_thread:
        check()
        return
    errors = []
    t = threading.Thread(target=lambda: errors.append(None) if check() is None else None)
    t.start()
    t.join(10)
    assert errors == [None]
