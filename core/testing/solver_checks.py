"""Conformance checks for solvers: `check_solver(cls, **hyperparameters)`.

`solve()` on the solver built with `hyperparameters` must return a `nnrun.SolveResult` whose
roots are finite, distinct and ascending, with a known status, and a solve whose `should_stop`
says stop at once must end with status "interrupted" or find its roots without iterating. A
solver whose constructor takes the coefficients `a, b, c` of a quadratic is also given quadratics
with known roots (two, a double one, none, a linear one), and must find them to 1e-9 relative.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
from collections.abc import Callable
from typing import Any

from nnrun.solver import Solver, SolveResult
from nnrun.testing.results import Check, CheckFailed, run_checks

STATUSES = ("ok", "diverged", "interrupted")
#: (a, b, c) -> the real roots, ascending.
QUADRATICS: dict[tuple[float, float, float], list[float]] = {
    (1.0, -3.0, 2.0): [1.0, 2.0],
    (2.0, 0.0, -4.0): [-math.sqrt(2.0), math.sqrt(2.0)],
    (1.0, 2.0, 1.0): [-1.0],
    (1.0, 0.0, 1.0): [],
    (0.0, 2.0, -1.0): [0.5],
}
ROOT_RTOL = 1e-9


def check_solver(cls: type[Solver], **hyperparameters: Any) -> None:
    """Run every check on `cls(**hyperparameters)`; raise AssertionError at the first broken
    property."""
    run_checks(solver_checks(cls, hyperparameters), strict=True)


def solver_checks(
    cls: type[Solver], hyperparameters: dict[str, Any], build: Callable[[], Solver] | None = None
) -> list[Check]:
    """The checks of `check_solver`; `build` (a spec's factory) replaces `cls(**hyperparameters)`."""
    name = cls.__name__
    make = build or functools.partial(cls, **hyperparameters)
    checks = [
        Check("returns_a_solve_result", functools.partial(_well_formed, name, make)),
        Check("stops_when_asked", functools.partial(_stops, name, make)),
    ]
    if {"a", "b", "c"} <= set(inspect.signature(cls).parameters):
        checks.append(
            Check(
                "solves_known_quadratics",
                functools.partial(_known_quadratics, name, cls, hyperparameters),
                "largest relative error of a root",
                ROOT_RTOL,
            )
        )
    return checks


def _check_result(name: str, result: Any, what: str) -> SolveResult:
    if not isinstance(result, SolveResult):
        raise CheckFailed(
            f"{name}: solve() {what} returned {type(result).__name__}, not a SolveResult"
        )
    roots = result.roots
    if not all(isinstance(r, float) and math.isfinite(r) for r in roots):
        raise CheckFailed(
            f"{name}: solve() {what} returned roots that are not finite floats: {roots}"
        )
    if any(b <= a for a, b in itertools.pairwise(roots)):
        raise CheckFailed(
            f"{name}: solve() {what} returned roots not distinct and ascending: {roots}"
        )
    if result.status not in STATUSES:
        raise CheckFailed(
            f"{name}: solve() {what} returned status {result.status!r}; use one of {STATUSES}"
        )
    return result


def _well_formed(name: str, make: Callable[[], Solver]) -> None:
    _check_result(name, make().solve(), "")


def _stops(name: str, make: Callable[[], Solver]) -> None:
    result = _check_result(name, make().solve(should_stop=lambda: True), "with should_stop")
    if result.status != "interrupted" and result.iterations > 0:
        raise CheckFailed(
            f"{name}: solve(should_stop=...) ran {result.iterations} iterations with status "
            f"{result.status!r} although should_stop() was True from the start"
        )


def _known_quadratics(name: str, cls: type[Solver], hyperparameters: dict[str, Any]) -> float:
    worst = 0.0
    for (a, b, c), expected in QUADRATICS.items():
        settings = {**hyperparameters, "a": a, "b": b, "c": c}
        result = _check_result(name, cls(**settings).solve(), f"for a={a}, b={b}, c={c}")
        if not result.converged or len(result.roots) != len(expected):
            raise CheckFailed(
                f"{name}: for a={a}, b={b}, c={c} expected the roots {expected}, got "
                f"{result.roots} (converged {result.converged}; {result.reasons})"
            )
        for got, want in zip(result.roots, expected):
            error = abs(got - want) / max(abs(want), 1e-300)
            worst = max(worst, error)
            if error > ROOT_RTOL:
                raise CheckFailed(
                    f"{name}: for a={a}, b={b}, c={c} found the root {got!r}, expected {want!r} "
                    f"(relative error {error:.3g} > {ROOT_RTOL:g})",
                    error,
                )
    return worst
