"""Conformance checks for datasets: `check_dataset(cls, **hyperparameters)`.

`load(context)` with a seeded generator must return a
`nnrun.LoadedData` whose parts agree: `x` (N, len(inputs)) floats with N ≥ 1, `y` (N,
len(targets)) floats for regression or (N,) int64 indices below len(classes) for classification,
every value finite; and loading again with the same seed gives exactly the same tensors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from nnrun.dataset import DataContext, Dataset, LoadedData
from nnrun.testing.results import Check, CheckFailed, run_checks

SEED = 0


def check_dataset(cls: type[Dataset], **hyperparameters: Any) -> None:
    """Run every check on `cls(**hyperparameters)`; raise AssertionError at the first broken
    property. Path hyperparameters are used as given (relative ones against the working folder)."""
    run_checks(dataset_checks(cls, hyperparameters), strict=True)


def dataset_checks(cls: type[Dataset], hyperparameters: dict[str, Any]) -> list[Check]:
    """The checks of `check_dataset`, for `nnrun verify` to run one by one."""
    name = cls.__name__
    make = functools.partial(cls, **hyperparameters)
    return [
        Check("returns_consistent_loaded_data", functools.partial(_consistent, name, make)),
        Check(
            "finite_values",
            functools.partial(_finite, name, make),
            "non-finite values in x and y",
            0.0,
        ),
        Check(
            "deterministic_for_a_seed",
            functools.partial(_deterministic, name, make),
            "largest difference between two loads with one seed",
            0.0,
        ),
    ]


def _load(make: Callable[[], Dataset]) -> Any:
    return make().load(DataContext(torch.Generator().manual_seed(SEED)))


def _consistent(name: str, make: Callable[[], Dataset]) -> None:
    data = _load(make)

    def fail(what: str) -> None:
        raise CheckFailed(f"{name}: load() {what}")

    if not isinstance(data, LoadedData):
        fail(f"returned {type(data).__name__}, not a nnrun.LoadedData")
    x, y = data.x, data.y
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 2:
        fail(f"gave x that is not a 2-d float tensor: {_describe(x)}")
    if x.shape[0] < 1 or x.shape[1] != len(data.inputs):
        fail(f"gave x {tuple(x.shape)} for {len(data.inputs)} inputs {data.inputs}")
    if data.task == "regression":
        if not isinstance(y, torch.Tensor) or not y.is_floating_point():
            fail(f"gave regression targets that are not floats: {_describe(y)}")
        if tuple(y.shape) != (x.shape[0], len(data.targets)):
            fail(f"gave y {tuple(y.shape)}, expected {(x.shape[0], len(data.targets))}")
    elif data.task == "classification":
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64:
            fail(f"gave classification targets that are not int64: {_describe(y)}")
        if tuple(y.shape) != (x.shape[0],) or len(data.targets) != 1 or not data.classes:
            fail(
                f"gave y {tuple(y.shape)}, {data.targets}, classes {data.classes}: expected "
                f"({x.shape[0]},), one target name and the class names"
            )
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(data.classes)):
            fail(f"gave class indices outside 0..{len(data.classes) - 1}")
    else:
        fail(f"gave task {data.task!r}; use 'regression' or 'classification'")


def _finite(name: str, make: Callable[[], Dataset]) -> float:
    data = _load(make)
    bad = sum(int((~torch.isfinite(t.double())).sum()) for t in (data.x, data.y))
    if bad:
        raise CheckFailed(f"{name}: load() gave {bad} non-finite values in x and y", float(bad))
    return 0.0


def _deterministic(name: str, make: Callable[[], Dataset]) -> float:
    first, second = _load(make), _load(make)
    for label in ("x", "y"):
        a, b = getattr(first, label), getattr(second, label)
        if a.shape != b.shape or not torch.equal(a, b):
            delta = (
                float((a.double() - b.double()).abs().max()) if a.shape == b.shape else float("inf")
            )
            raise CheckFailed(
                f"{name}: two loads with generators seeded {SEED} gave different {label} "
                f"(largest difference {delta:g}): draw only from context.generator",
                delta,
            )
    return 0.0


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype}, shape {tuple(value.shape)}"
    return type(value).__name__
