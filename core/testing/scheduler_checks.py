"""Conformance checks for schedulers: `check_scheduler(cls, **hyperparameters)`.

The scheduler drives an optimizer with lr 0.1 for `EPOCHS` epochs, given a validation metric that
falls, then stalls, then rises (so plateau schedulers act), and must

- give a finite rate that is not negative at construction and after every step (0 is allowed:
  cosine annealing reaches eta_min = 0);
- survive `state_dict()` through `torch.save`/`torch.load(weights_only=True)`: a fresh optimizer
  and scheduler that load it halfway continue with exactly the rates of the pair that never
  stopped.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from typing import Any

import torch

from nnrun.optimizer import Optimizer
from nnrun.parameter import Parameter
from nnrun.scheduler import Scheduler
from nnrun.testing.results import Check, CheckFailed, run_checks

EPOCHS = 60
BASE_LR = 0.1


def check_scheduler(cls: type[Scheduler], **hyperparameters: Any) -> None:
    """Run every check on `cls(optimizer, **hyperparameters)`; raise AssertionError at the first
    broken property."""
    run_checks(scheduler_checks(cls, hyperparameters), strict=True)


def scheduler_checks(
    cls: type[Scheduler] | Callable[[Optimizer], Scheduler],
    hyperparameters: dict[str, Any],
    name: str | None = None,
) -> list[Check]:
    """The checks of `check_scheduler`; `cls` may be a function building the scheduler on an
    optimizer (a spec with a nested scheduler), `hyperparameters` then unused."""
    build: Callable[[Optimizer], Scheduler]
    if isinstance(cls, type):
        scheduler_cls = cls

        def build(optimizer: Optimizer) -> Scheduler:
            return scheduler_cls(optimizer, **hyperparameters)

        name = name or cls.__name__
    else:
        build, name = cls, name or repr(cls)
    return [
        Check(
            "rates_finite_and_not_negative",
            functools.partial(_rates_finite, name, build),
            f"smallest rate over {EPOCHS} epochs (must not be below)",
            0.0,
        ),
        Check(
            "state_dict_round_trip",
            functools.partial(_state_dict_round_trip, name, build),
            "largest difference from the rates of the run that never stopped",
            0.0,
        ),
    ]


class RateHolder(Optimizer):
    """The optimizer a scheduler drives in these checks: it only holds a rate."""

    def __init__(self, lr: float = BASE_LR):
        super().__init__([Parameter(torch.zeros(1))], lr=lr)

    def step(self) -> None:
        pass


def _metric(epoch: int) -> float:
    """Falls for 15 epochs, stalls for 25, then rises."""
    if epoch < 15:
        return 1.0 / (1 + epoch)
    return 1.0 / 16 if epoch < 40 else 1.0 / 16 + 0.01 * (epoch - 39)


def _rates(scheduler: Scheduler, optimizer: Optimizer, epochs: range) -> list[float]:
    rates = []
    for epoch in epochs:
        scheduler.step(_metric(epoch))
        rates.append(optimizer.lr)
    return rates


def _rates_finite(name: str, build: Callable[[Optimizer], Scheduler]) -> float:
    optimizer = RateHolder()
    scheduler = build(optimizer)
    rates = [optimizer.lr, *_rates(scheduler, optimizer, range(EPOCHS))]
    for epoch, rate in enumerate(rates):
        if not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate < 0:
            raise CheckFailed(
                f"{name}: the rate at epoch {epoch} is {rate!r}; rates must be finite numbers "
                f">= 0 (base rate {BASE_LR})",
                float(rate) if isinstance(rate, (int, float)) else None,
            )
    return float(min(rates))


def _state_dict_round_trip(name: str, build: Callable[[Optimizer], Scheduler]) -> float:
    optimizer = RateHolder()
    scheduler = build(optimizer)
    half = EPOCHS // 2
    _rates(scheduler, optimizer, range(half))
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    try:
        saved = torch.load(buffer, weights_only=True)
    except Exception as error:
        raise CheckFailed(
            f"{name}: state_dict() must hold only plain Python values and tensors, so that "
            f"torch.load(weights_only=True) can read a checkpoint: {error}"
        ) from None
    fresh_optimizer = RateHolder()
    fresh = build(fresh_optimizer)
    fresh.load_state_dict(saved)
    expected = _rates(scheduler, optimizer, range(half, EPOCHS))
    got = _rates(fresh, fresh_optimizer, range(half, EPOCHS))
    for epoch, (a, b) in enumerate(zip(got, expected), start=half + 1):
        if a != b:
            raise CheckFailed(
                f"{name}: after load_state_dict() into a fresh scheduler at epoch {half}, the "
                f"rate at epoch {epoch} is {a!r}, expected {b!r} (state kept outside the "
                f"scheduler's attributes?)",
                abs(a - b),
            )
    return 0.0
