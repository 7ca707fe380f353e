"""The base class of every optimizer plugin."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch

from nnrun.parameter import Parameter

#: A default `[tune]` search space: hyperparameter name -> { log_uniform | uniform | int_uniform
#: = [low, high] } or { choice = [...] }, e.g. {"lr": {"log_uniform": [1e-4, 1e-1]}}.
SearchSpace = dict[str, dict[str, list[Any]]]


class Optimizer:
    """Updates `nnrun.Parameter`s from their `.grad`.

    A subclass calls `super().__init__(params, **hyperparameters)` and implements `step()`, reading
    its hyperparameters from `self.hyperparameters` at each step (so a scheduler's change to `lr`
    takes effect) and keeping per-parameter state in `self.state[param]`, a dict. Doing so is all
    `state_dict()` and `load_state_dict()` need to save and restore the optimizer exactly.

    `reference` declares what `nnrun verify` compares the trajectory with, step for step: a
    `torch.optim`-style class, a reference step function (see `nnrun.testing.check_optimizer`),
    or the import path of one, "torch.optim.Adam" or "package.module:function", imported only
    when verified. The reference is built with the same hyperparameters as the optimizer, those in
    `verify_hyperparameters` (the defaults where it is empty), so their names must agree.

    `search_space` (optional) is the space `[tune] space = "default"` tunes it over.
    """

    #: What the trajectory is checked against by `nnrun verify`; None: the invariants only.
    reference: ClassVar[str | type | Callable[..., None] | None] = None
    #: The hyperparameters `nnrun verify` builds the optimizer (and its reference) with.
    verify_hyperparameters: ClassVar[dict[str, Any]] = {}

    search_space: ClassVar[SearchSpace | None] = None

    def __init__(self, params: Iterable[Parameter], **hyperparameters: Any):
        self.params: list[Parameter] = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for param in self.params:
            if not isinstance(param, Parameter):
                raise TypeError(
                    f"optimizers take nnrun.Parameter objects, got {type(param).__name__}"
                )
        self.hyperparameters: dict[str, Any] = dict(hyperparameters)
        self.state: dict[Parameter, dict[str, Any]] = {}

    @property
    def lr(self) -> float:
        return self.hyperparameters["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyperparameters["lr"] = value

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def zero_grad(self) -> None:
        """Forget the gradients (set them to None, as torch does by default)."""
        for param in self.params:
            param.grad = None

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and per-parameter state, keyed by parameter position; a deep copy."""
        return {
            "params": len(self.params),
            "hyperparameters": copy.deepcopy(self.hyperparameters),
            "state": {
                index: _clone(self.state[param])
                for index, param in enumerate(self.params)
                if param in self.state
            },
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output; refused if it was saved for another number of
        parameters (its state would land on the wrong ones)."""
        state = state_dict["state"]
        saved = state_dict.get("params")  # absent in state dicts saved before it was recorded
        if saved is not None and saved != len(self.params):
            raise ValueError(
                f"state_dict is for {saved} parameters, this optimizer has {len(self.params)}"
            )
        if any(not 0 <= int(index) < len(self.params) for index in state):
            raise ValueError(
                f"state_dict holds state for parameters this optimizer does not have "
                f"(it has {len(self.params)})"
            )
        self.hyperparameters = copy.deepcopy(state_dict["hyperparameters"])
        self.state = {
            self.params[int(index)]: _clone(values, like=self.params[int(index)].data)
            for index, values in state.items()
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({settings})"


def _clone(values: dict[str, Any], like: torch.Tensor | None = None) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().clone()
            if like is not None and value.is_floating_point() and value.dim() > 0:
                value = value.to(device=like.device)
        else:
            value = copy.deepcopy(value)
        out[key] = value
    return out
