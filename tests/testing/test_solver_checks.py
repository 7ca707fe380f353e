"""`check_solver` passes the built-in and catches wrong roots, bad results and ignored stops."""

from __future__ import annotations

import math

import pytest

import nnrun
from nnrun.testing import check_solver


class ClosedForm(nnrun.Solver):
    """The textbook formula, which differs from the true roots by rounding only."""

    def __init__(self, a: float, b: float, c: float):
        self.a, self.b, self.c = a, b, c

    def solve(self, optimizer=None, should_stop=None):
        a, b, c = self.a, self.b, self.c
        if a == 0:
            return nnrun.SolveResult([-c / b], 0, True)
        d = b * b - 4 * a * c
        if d < 0:
            return nnrun.SolveResult([], 0, True)
        roots = sorted({(-b - math.sqrt(d)) / (2 * a), (-b + math.sqrt(d)) / (2 * a)})
        return nnrun.SolveResult(roots, 0, True)


class ForgetsTheLinearCase(ClosedForm):
    def solve(self, optimizer=None, should_stop=None):
        if self.a == 0:
            return nnrun.SolveResult([], 0, True)
        return super().solve()


class Descending(ClosedForm):
    def solve(self, optimizer=None, should_stop=None):
        result = super().solve()
        result.roots.reverse()
        return result


class NeverStops(ClosedForm):
    def solve(self, optimizer=None, should_stop=None):
        result = super().solve()
        result.iterations = 50
        return result


def test_passes_the_builtin_and_a_correct_solver():
    check_solver(nnrun.load_registry().solvers["quadratic_descent"], a=1.0, b=-3.0, c=2.0)
    check_solver(ClosedForm, a=1.0, b=0.0, c=-1.0)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (ForgetsTheLinearCase, r"for a=0.0, b=2.0, c=-1.0 expected the roots \[0.5\], got \[\]"),
        (Descending, "roots not distinct and ascending"),
        (NeverStops, "ran 50 iterations with status 'ok'"),
    ],
)
def test_catches_a_broken_solver(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_solver(cls, a=1.0, b=-3.0, c=2.0)
