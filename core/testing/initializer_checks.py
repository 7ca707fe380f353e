"""Conformance checks for initializers: `check_initializer(cls, **hyperparameters)`.

`initialize(weight, bias)` is called on (out, in) weights and (out,) biases of several shapes in
float32 and float64, both filled with NaN first, and must

- write every element of both, with finite values (no NaN left, no inf);
- keep each tensor's shape, dtype and device (it fills in place: the layer holds these tensors);
- draw from torch's global RNG only, so that `torch.manual_seed` reproduces it exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from nnrun.components import Initializer
from nnrun.testing.results import Check, CheckFailed, run_checks

#: (out, in) weight shapes; the bias is (out,).
SHAPES: tuple[tuple[int, int], ...] = ((1, 1), (3, 5), (7, 2), (16, 1))
DTYPES = (torch.float32, torch.float64)


def check_initializer(component: type | Initializer, **hyperparameters: Any) -> None:
    """Run every check on the initializer class (built with `hyperparameters`) or instance;
    raise AssertionError at the first broken property."""
    run_checks(initializer_checks(component, hyperparameters), strict=True)


def initializer_checks(
    component: type | Initializer | Callable[[], Initializer], hyperparameters: dict[str, Any]
) -> list[Check]:
    """The checks of `check_initializer`, for `nnrun verify` to run one by one."""
    build = _builder(component, hyperparameters)
    name = getattr(component, "__name__", type(component).__name__)
    return [
        Check(
            "fills_every_element_finitely",
            functools.partial(_fills_every_element, name, build),
            "elements left NaN or set to inf",
            0.0,
        ),
        Check("keeps_shape_dtype_device", functools.partial(_keeps_tensors, name, build)),
        Check(
            "reproducible_with_a_seed",
            functools.partial(_reproducible, name, build),
            "largest difference between two draws after the same torch.manual_seed",
            0.0,
        ),
    ]


def _builder(component: Any, hyperparameters: dict[str, Any]) -> Callable[[], Any]:
    if isinstance(component, type):
        return lambda: component(**hyperparameters)
    if callable(component) and not hasattr(component, "initialize"):
        return component
    if hyperparameters:
        raise TypeError("pass hyperparameters with a class, not with an already built component")
    return lambda: component


def _tensors(dtype: torch.dtype, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full(shape, torch.nan, dtype=dtype), torch.full(shape[:1], torch.nan, dtype=dtype)


def _cases():
    for dtype in DTYPES:
        for shape in SHAPES:
            yield dtype, shape, f"[{str(dtype).removeprefix('torch.')}, weight {shape}]"


def _fills_every_element(name: str, build: Callable[[], Any]) -> float:
    initializer = build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for dtype, shape, where in _cases():
            weight, bias = _tensors(dtype, shape)
            initializer.initialize(weight, bias)
            for label, tensor in (("weight", weight), ("bias", bias)):
                bad = int((~torch.isfinite(tensor)).sum())
                if bad:
                    raise CheckFailed(
                        f"{name}: initialize left {bad} of {tensor.numel()} {label} elements "
                        f"unwritten or not finite {where}: {tensor.flatten()[:6].tolist()}",
                        float(bad),
                    )
    return 0.0


def _keeps_tensors(name: str, build: Callable[[], Any]) -> None:
    initializer = build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for dtype, shape, where in _cases():
            weight, bias = _tensors(dtype, shape)
            expected = [(t.shape, t.dtype, t.device, t.data_ptr()) for t in (weight, bias)]
            initializer.initialize(weight, bias)
            got = [(t.shape, t.dtype, t.device, t.data_ptr()) for t in (weight, bias)]
            for label, before, after in zip(("weight", "bias"), expected, got):
                if before[:3] != after[:3] or before[3] != after[3]:
                    raise CheckFailed(
                        f"{name}: initialize must fill the {label} in place {where}: it was "
                        f"{before[:3]} and became {after[:3]}"
                        + (" in new storage" if before[3] != after[3] else "")
                    )


def _reproducible(name: str, build: Callable[[], Any]) -> float:
    worst = 0.0
    for dtype, shape, where in _cases():
        draws = []
        for _ in range(2):
            weight, bias = _tensors(dtype, shape)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(1234)
                build().initialize(weight, bias)
            draws.append((weight, bias))
        (w1, b1), (w2, b2) = draws
        for label, a, b in (("weight", w1, w2), ("bias", b1, b2)):
            if not torch.equal(a, b):
                delta = float(torch.nan_to_num((a - b).abs(), nan=torch.inf).max())
                raise CheckFailed(
                    f"{name}: two draws after torch.manual_seed(1234) differ in the {label} "
                    f"{where} by up to {delta:g}: draw from torch's global RNG only",
                    delta,
                )
    return worst
