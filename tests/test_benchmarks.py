"""The benchmarks' arithmetic (fits, the products-alone step), not their timings."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def complexity():
    return _load("bench_complexity")


NS = [128, 256, 512, 1024, 2048, 4096, 8192]


def test_growth_slope_sees_through_a_constant(complexity):
    """Memory a + b n (per-thread tiles + O(n d) arrays): the log-log slope is pulled
    below 1 by the constant, the slope of the growth y(n) - y(n/2) is exactly 1."""
    ys = [4.4e6 + 2.7e3 * n for n in NS]
    assert complexity.fit_exponent(NS, ys) < 0.8
    assert complexity.fit_growth(NS, ys) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("power", [1, 2, 3])
def test_both_slopes_find_a_pure_power(complexity, power):
    ys = [3.0 * n ** power for n in NS]
    assert complexity.fit_exponent(NS, ys) == pytest.approx(power, abs=1e-9)
    assert complexity.fit_growth(NS, ys) == pytest.approx(power, abs=1e-9)


def test_growth_is_fitted_where_the_block_sizes_stop_changing(complexity):
    assert complexity.growth_from(NS) == 2048
    assert complexity.growth_from([128, 256, 512, 1024]) == 512      # --quick: larger half


@pytest.mark.parametrize("threads", [1, 2])
def test_products_step_runs_the_kernels_products(threads, monkeypatch):
    """The floor's step multiplies the same tiles as the kernels: on n = 64 in 16 x 32
    tiles that is (64/16) x (64/32) = 8 tiles, 2 products each forward, 5 backward."""
    timing = _load("timing")
    calls = []
    real = timing.workers.product

    def counting(xp, a, b, scratch, slot="tile"):
        calls.append(slot)
        return real(xp, a, b, scratch, slot)

    monkeypatch.setattr(timing.workers, "product", counting)
    timing.products_step(64, 8, "float64", threads, blocks=(16, 32))()
    assert len(calls) == 8 * (2 + 5)
    assert calls.count("tile") == 16 and calls.count("pv") == 8
