"""The base class of solver plugins and what a solve returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nnrun.optimizer import Optimizer
from nnrun.parameter import Parameter

if TYPE_CHECKING:  # annotations only: importing nnrun.solver need not import torch
    import torch

#: Builds the optimizer that drives a descent, from the parameters it should move.
OptimizerFactory = Callable[[list[Parameter]], Optimizer]


#: Asked between iterations; True means stop now (SIGINT/SIGTERM during a run).
ShouldStop = Callable[[], bool]


@dataclass
class Descent:
    """One descent from one starting point: |f(x)| after each iteration, for the plots.

    `converged` means `end` is a root, checked exactly; otherwise `reason` says why not, and
    `diverged` whether the iterate ran away (non-finite, or |f| above where it started)."""

    start: float
    end: float
    iterations: int
    converged: bool
    residuals: list[float] = field(default_factory=list)
    reason: str | None = None
    diverged: bool = False


@dataclass
class SolveResult:
    """Distinct real roots in ascending order and how they were found.

    `roots` holds only verified roots; `roots == []` with `converged` means there are no real
    roots, while `converged = False` means some root was not found (`reasons` say why). `status`
    is "ok", "diverged" (a descent ran away) or "interrupted" (stopped by a signal)."""

    roots: list[float]
    iterations: int
    converged: bool
    descents: list[Descent] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    status: str = "ok"


class Solver:
    """A solver is built as `Cls(**hyperparameters)` from its table in the experiment file.

    `solve(optimizer, should_stop)` runs it; `optimizer` is None for the solver's own default
    descent, or a factory building the optimizer the experiment file named (`[solver.optimizer]`);
    `should_stop` is checked at every iteration, and a solve it stops has status "interrupted".
    """

    def solve(
        self, optimizer: OptimizerFactory | None = None, should_stop: ShouldStop | None = None
    ) -> SolveResult:
        raise NotImplementedError


@dataclass
class BatchSolveResult:
    """The roots of n equations solved at once (`nnrun.solve_quadratics`).

    `roots[i]` holds equation i's distinct real roots in ascending order, NaN-padded to 2;
    `count[i]` how many there are, `converged[i]` and `iterations[i]` as in `SolveResult`.
    `scalar[i]` says the lane was handed to the one-equation solve (extremes, near-double roots,
    a = 0, c = 0), whose result it holds exactly."""

    roots: torch.Tensor
    count: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    scalar: torch.Tensor
