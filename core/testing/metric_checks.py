"""Conformance checks for metrics: `check_metric(cls, **hyperparameters)`.

The metric must declare a `mode` ("min" or "max") and a non-empty `tasks` tuple of "regression"
and "classification"; for each of its tasks, `compute(pred, target)` on random inputs of several
sizes (regression: (N, k) floats; classification: (N, C) logits and (N,) int64 indices) returns a
finite Python number, the same one twice, without modifying its inputs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch

from nnrun.metric import Metric
from nnrun.testing.results import Check, CheckFailed, run_checks

TASKS = ("regression", "classification")
#: (N, outputs or classes) sizes of the random inputs.
SIZES = ((1, 1), (8, 1), (16, 3), (5, 2))


def check_metric(cls: type[Metric], **hyperparameters: Any) -> None:
    """Run every check on `cls(**hyperparameters)`; raise AssertionError at the first broken
    property."""
    run_checks(metric_checks(cls, hyperparameters), strict=True)


def metric_checks(cls: type[Metric], hyperparameters: dict[str, Any]) -> list[Check]:
    """The checks of `check_metric`, for `nnrun verify` to run one by one."""
    name = cls.__name__
    make = functools.partial(cls, **hyperparameters)
    return [
        Check("declares_mode_and_tasks", functools.partial(_declares, name, cls)),
        Check("finite_and_deterministic", functools.partial(_finite, name, cls, make)),
        Check("leaves_inputs_unmodified", functools.partial(_unmodified, name, cls, make)),
    ]


def _declares(name: str, cls: type[Metric]) -> None:
    if cls.mode not in ("min", "max"):
        raise CheckFailed(f"{name}: mode is {cls.mode!r}; use 'min' or 'max'")
    tasks = cls.tasks
    if not isinstance(tasks, tuple) or not tasks or not set(tasks) <= set(TASKS):
        raise CheckFailed(f"{name}: tasks is {tasks!r}; use a non-empty tuple of {TASKS}")


def _inputs(cls: type[Metric]) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    for task in cls.tasks:
        for n, k in SIZES:
            pred = torch.randn(n, k, generator=generator)
            if task == "classification":
                k = max(k, 2)
                pred = torch.randn(n, k, generator=generator)
                target = torch.randint(k, (n,), generator=generator)
            else:
                target = torch.randn(n, k, generator=generator)
            yield f"[{task}, pred {tuple(pred.shape)}]", pred, target


def _finite(name: str, cls: type[Metric], make: Callable[[], Metric]) -> None:
    metric = make()
    for where, pred, target in _inputs(cls):
        values = [metric.compute(pred.clone(), target.clone()) for _ in range(2)]
        value = values[0]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckFailed(
                f"{name}: compute returned {type(value).__name__} {where}, not a float"
            )
        if not math.isfinite(value):
            raise CheckFailed(f"{name}: compute returned {value} {where}")
        if values[1] != value:
            raise CheckFailed(
                f"{name}: compute gave {value!r} then {values[1]!r} for one input {where}"
            )


def _unmodified(name: str, cls: type[Metric], make: Callable[[], Metric]) -> None:
    metric = make()
    for where, pred, target in _inputs(cls):
        before = pred.clone(), target.clone()
        metric.compute(pred, target)
        for label, tensor, old in zip(("pred", "target"), (pred, target), before):
            if not torch.equal(tensor, old):
                raise CheckFailed(
                    f"{name}: compute modified its argument {label!r} in place {where}"
                )
