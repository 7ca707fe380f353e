"""The base class of learning-rate scheduler plugins."""

from __future__ import annotations

import copy
from typing import Any

from nnrun.optimizer import Optimizer


class Scheduler:
    """Sets `optimizer.lr` once per epoch.

    Built as `Cls(optimizer, **hyperparameters)`; the base records `base_lr` (the optimizer's lr at
    construction) and `epoch` (how many times `step` ran). A subclass implements `lr_at(epoch)`, or
    overrides `step(metric)` when the rate depends on a metric (reduce-on-plateau).
    """

    def __init__(self, optimizer: Optimizer, **hyperparameters: Any):
        self.optimizer = optimizer
        self.hyperparameters = dict(hyperparameters)
        self.base_lr: float = optimizer.lr
        self.epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement lr_at() or step()")

    def step(self, metric: float | None = None) -> None:
        """Advance one epoch; `metric` is the validation (or training) loss just measured."""
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    def state_dict(self) -> dict[str, Any]:
        return {
            key: copy.deepcopy(value) for key, value in vars(self).items() if key != "optimizer"
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self).update(copy.deepcopy(state))
