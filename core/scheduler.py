"""The base class of learning-rate scheduler plugins."""

from __future__ import annotations

import copy
from typing import Any

from nnrun.optimizer import Optimizer


class Scheduler:
    """Sets `optimizer.lr` once per epoch, after the epoch's validation loss is known.

    Built as `Cls(optimizer, **hyperparameters)`. A subclass checks and stores its hyperparameters,
    then calls `super().__init__(optimizer, **hyperparameters)`, which records `base_lr` (the
    optimizer's rate at construction) and `epoch = 0`, and sets the rate for epoch 0 as torch's
    schedulers do at construction. Then either

    - a schedule of the epoch alone implements `lr_at(epoch)`, which `step` applies; or
    - a schedule of the metric overrides `step(metric)` and sets `self.optimizer.lr` itself.

    Only `optimizer.lr` is used, so any object with that property will do as the optimizer.
    """

    def __init__(self, optimizer: Optimizer, **hyperparameters: Any):
        self.optimizer = optimizer
        self.hyperparameters = dict(hyperparameters)
        self.base_lr: float = optimizer.lr
        self.epoch = 0
        self.optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        """The rate for `epoch` (0 is the rate before any step).

        This default keeps whatever rate the optimizer has, which is what a scheduler that
        overrides `step` instead wants.
        """
        return self.optimizer.lr

    def step(self, metric: float | None = None) -> None:
        """Advance one epoch; `metric` is the validation (or training) loss just measured."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (a nested scheduler as its own state dict), and the
        rate the optimizer has now, which `load_state_dict` puts back: a resumed run then gets the
        right rate whichever of the optimizer and the scheduler it restores first."""
        attributes = {
            key: value.state_dict() if isinstance(value, Scheduler) else copy.deepcopy(value)
            for key, value in vars(self).items()
            if key != "optimizer"
        }
        return {"lr": self.optimizer.lr, "attributes": attributes}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        attributes = state_dict["attributes"]
        expected = set(vars(self)) - {"optimizer"}
        if set(attributes) != expected:
            raise ValueError(
                f"this state_dict is not a {type(self).__name__}'s: it has "
                f"{sorted(set(attributes) - expected)} and lacks {sorted(expected - set(attributes))}"
            )
        for key, value in attributes.items():
            current = getattr(self, key)
            if isinstance(current, Scheduler) != _is_state(value):
                raise ValueError(
                    f"this state_dict does not fit {type(self).__name__}'s {key!r}: one of them "
                    f"is a scheduler and the other is not (was it built with other settings?)"
                )
            if isinstance(current, Scheduler):
                current.load_state_dict(value)
            else:
                setattr(self, key, copy.deepcopy(value))
        self.optimizer.lr = state_dict["lr"]

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({settings})"


def _is_state(value: Any) -> bool:
    """Whether `value` is what `Scheduler.state_dict` returns."""
    return isinstance(value, dict) and set(value) == {"lr", "attributes"}
