"""The base class of solver plugins and what a solve returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nnrun.optimizer import Optimizer
from nnrun.parameter import Parameter

#: Builds the optimizer that drives a descent, from the parameters it should move.
OptimizerFactory = Callable[[list[Parameter]], Optimizer]


@dataclass
class Descent:
    """One descent from one starting point: |f(x)| after each iteration, for the plots."""

    start: float
    end: float
    iterations: int
    converged: bool
    residuals: list[float] = field(default_factory=list)


@dataclass
class SolveResult:
    """Distinct real roots in ascending order ([] when there are none) and how they were found."""

    roots: list[float]
    iterations: int
    converged: bool
    descents: list[Descent] = field(default_factory=list)


class Solver:
    """A solver is built as `Cls(**hyperparameters)` from its table in the experiment file.

    `solve(optimizer)` runs it; `optimizer` is None for the solver's own default descent, or a
    factory building the optimizer the experiment file named (`[solver.optimizer]`).
    """

    def solve(self, optimizer: OptimizerFactory | None = None) -> SolveResult:
        raise NotImplementedError
