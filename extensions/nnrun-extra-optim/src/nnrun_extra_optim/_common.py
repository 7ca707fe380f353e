"""What every optimizer of this package shares: torch-style argument checks, the loop over the
parameters that have a gradient, and optimizer-wide counters saved with the state.

Only nnrun's public API is used (`nnrun.Optimizer`), as any third party's package would.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

import nnrun

Tensor = torch.Tensor
State = dict[str, Any]


# --- Argument checks: torch.optim's conditions and wording ------------------------------------


def check_lr(lr: float) -> None:
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_eps(eps: float) -> None:
    if not eps >= 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")


def check_betas(betas: Sequence[float], count: int = 2) -> None:
    if len(betas) != count:
        raise ValueError(f"betas must be {count} values, got {tuple(betas)!r}")
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


def check_nonnegative(**values: float) -> None:
    """`check_nonnegative(weight_decay=-1)` raises "Invalid weight_decay value: -1"."""
    for name, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"Invalid {name} value: {value}")


def check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")


# --- Shared pieces ------------------------------------------------------------------------------


def bias_correction(beta: float, step: int) -> float:
    """1 − βᵗ: undoes the pull towards zero of a moving average started at zero (Adam, §3)."""
    return 1 - beta**step


def buffer(state: State, name: str, like: Tensor, fill: float = 0.0) -> Tensor:
    """`state[name]`, made on first use shaped like the parameter and filled with `fill`."""
    tensor = state.get(name)
    if tensor is None:
        tensor = state[name] = torch.full_like(like, fill, memory_format=torch.contiguous_format)
    return tensor


class Base(nnrun.Optimizer):
    """An `nnrun.Optimizer` with two conveniences.

    - `with_grad()` yields (data, grad, state) for each parameter that has a gradient; the
      others are skipped, their state untouched, as torch.optim does.
    - `self.counters`, a dict of plain numbers for state that belongs to the optimizer as a
      whole rather than to one parameter (a step count shared by every parameter, a sum of
      weights): `state_dict()` saves it beside the per-parameter state.
    """

    def __init__(self, params: Iterable[nnrun.Parameter], **hyperparameters: Any):
        super().__init__(params, **hyperparameters)
        self.counters: dict[str, float] = {}

    def with_grad(self) -> Iterator[tuple[Tensor, Tensor, State]]:
        for param in self.params:
            if param.grad is None:
                continue
            state = self.state.get(param)
            if state is None:
                state = self.state[param] = {}
            yield param.data, param.grad, state

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "counters": dict(self.counters)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.counters = copy.deepcopy(dict(state_dict.get("counters", {})))
