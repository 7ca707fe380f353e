"""Built-in learning-rate schedulers: the rates of `torch.optim.lr_scheduler`, epoch by epoch.

Each is stepped once per epoch by the trainer, after the epoch's validation loss is known. The
epoch-driven ones use torch's documented closed forms (so a resumed run needs only the epoch);
torch computes most of them recursively, which agrees with the closed forms to rounding.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import nnrun
from nnrun.factory import SchedulerFactory
from nnrun.hookspecs import Register
from nnrun.optimizer import Optimizer
from nnrun.scheduler import Scheduler


@nnrun.hookimpl
def register_schedulers(register: Register) -> None:
    register("constant", Constant)
    register("step", StepDecay)
    register("exponential", ExponentialDecay)
    register("cosine", CosineAnnealing)
    register("linear_warmup", LinearWarmup)
    register("reduce_on_plateau", ReduceOnPlateau)


def _require(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"Invalid {name}: {value!r} (expected {expected})")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Constant(Scheduler):
    """Keeps the rate the optimizer was built with (torch's `ConstantLR(factor=1.0, total_iters=0)`)."""

    def __init__(self, optimizer: Optimizer):
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr


class StepDecay(Scheduler):
    """lr_t = base_lr · gamma^⌊t / step_size⌋ (torch's `StepLR`)."""

    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "step_size": 10
    }  # what `nnrun verify` builds it with

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        _require(_is_int(step_size) and step_size > 0, "step_size", step_size, "an integer > 0")
        _require(_is_real(gamma) and gamma >= 0, "gamma", gamma, "a number >= 0")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Scheduler):
    """lr_t = base_lr · gamma^t (torch's `ExponentialLR`)."""

    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "gamma": 0.9
    }  # what `nnrun verify` builds it with

    def __init__(self, optimizer: Optimizer, gamma: float):
        _require(_is_real(gamma) and gamma >= 0, "gamma", gamma, "a number >= 0")
        self.gamma = gamma
        super().__init__(optimizer, gamma=gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


class CosineAnnealing(Scheduler):
    """lr_t = eta_min + (base_lr − eta_min) · (1 + cos(π·t / T_max)) / 2 (torch's `CosineAnnealingLR`).

    The closed form of SGDR without restarts (Loshchilov & Hutter, 2017). Past T_max it climbs back
    to base_lr at 2·T_max and so on, with period 2·T_max, as torch's recursive form does.
    """

    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "T_max": 20
    }  # what `nnrun verify` builds it with

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        _require(_is_int(T_max) and T_max > 0, "T_max", T_max, "an integer > 0")
        _require(_is_real(eta_min) and eta_min >= 0, "eta_min", eta_min, "a number >= 0")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    def lr_at(self, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine


class LinearWarmup(Scheduler):
    """Ramps the rate linearly from start_factor·base_lr up to base_lr over warmup_epochs, then
    hands over to the scheduler named by `after` (or keeps base_lr when there is none).

    lr_t = base_lr · (start_factor + (1 − start_factor) · t / warmup_epochs) for t < warmup_epochs;
    from t = warmup_epochs on, `after` runs as if built then, at its own epoch t − warmup_epochs.
    Equal to torch's `SequentialLR([LinearLR(start_factor, 1.0, warmup_epochs), after],
    milestones=[warmup_epochs])`; `after` may also be reduce_on_plateau, which torch does not allow.

    `after` is a table naming a registered scheduler with its hyperparameters,
    `{ name = "cosine", T_max = 50 }` (a bare name needs no hyperparameters); nnrun checks it like
    any scheduler and passes a factory that builds it on an optimizer.
    """

    #: What `nnrun verify` builds it with: a warm-up handing over to a nested scheduler.
    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "warmup_epochs": 5,
        "after": {"name": "cosine", "T_max": 20},
    }

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_epochs: int = 5,
        start_factor: float = 1.0 / 3,
        after: SchedulerFactory | None = None,
    ):
        _require(
            _is_int(warmup_epochs) and warmup_epochs >= 0,
            "warmup_epochs",
            warmup_epochs,
            "an integer >= 0",
        )
        _require(
            _is_real(start_factor) and 0 < start_factor <= 1,
            "start_factor",
            start_factor,
            "0 < start_factor <= 1",
        )
        self.warmup_epochs, self.start_factor = warmup_epochs, start_factor
        base_lr = optimizer.lr
        # `after` is built now, so that its errors show at once, on the base rate; the rate it sets
        # at construction is its epoch 0, which it gets back when the warm-up ends.
        self.after = after(optimizer) if after is not None else None
        self.after_start_lr = optimizer.lr
        optimizer.lr = base_lr
        super().__init__(
            optimizer,
            warmup_epochs=warmup_epochs,
            start_factor=start_factor,
            after=None if after is None else after.spec,
        )

    def lr_at(self, epoch: int) -> float:
        if epoch >= self.warmup_epochs:
            return self.after_start_lr
        s = self.start_factor
        return self.base_lr * (s + (1 - s) * epoch / self.warmup_epochs)

    def step(self, metric: float | None = None) -> None:
        self.epoch += 1
        if self.after is not None and self.epoch > self.warmup_epochs:
            self.after.step(metric)
        else:
            self.optimizer.lr = self.lr_at(self.epoch)


class ReduceOnPlateau(Scheduler):
    """Multiplies the rate by `factor` once the metric has not improved for more than `patience`
    epochs (torch's `ReduceLROnPlateau`), never below `min_lr`.

    The metric improves when it beats the best so far by the threshold: in mode "min",
    metric < best·(1 − threshold) ("rel") or metric < best − threshold ("abs"); mode "max" mirrors
    it. After a reduction, bad epochs are not counted for `cooldown` epochs. A reduction smaller
    than `eps` is skipped.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ):
        _require(mode in ("min", "max"), "mode", mode, "'min' or 'max'")
        _require(_is_real(factor) and 0 <= factor < 1, "factor", factor, "0 <= factor < 1")
        _require(_is_int(patience) and patience >= 0, "patience", patience, "an integer >= 0")
        _require(_is_real(threshold) and threshold >= 0, "threshold", threshold, "a number >= 0")
        _require(
            threshold_mode in ("rel", "abs"), "threshold_mode", threshold_mode, "'rel' or 'abs'"
        )
        _require(_is_int(cooldown) and cooldown >= 0, "cooldown", cooldown, "an integer >= 0")
        _require(_is_real(min_lr) and min_lr >= 0, "min_lr", min_lr, "a number >= 0")
        _require(_is_real(eps) and eps >= 0, "eps", eps, "a number >= 0")
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0
        self.cooldown_left = 0
        super().__init__(
            optimizer,
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            min_lr=min_lr,
            eps=eps,
        )

    def step(self, metric: float | None = None) -> None:
        if metric is None:
            raise TypeError("reduce_on_plateau needs the metric: call step(metric)")
        current = float(metric)  # also a 0-dim tensor, on any device
        self.epoch += 1
        if self._improves(current):
            self.best, self.bad_epochs = current, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            lr = float(self.optimizer.lr)
            reduced = max(lr * self.factor, self.min_lr)
            if lr - reduced > self.eps:
                self.optimizer.lr = reduced
            self.cooldown_left, self.bad_epochs = self.cooldown, 0

    def _improves(self, current: float) -> bool:
        """Whether `current` beats the best so far by the threshold (torch's exact comparisons)."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return current < self.best * (1 - self.threshold)
            return current < self.best - self.threshold
        if self.threshold_mode == "rel":
            return current > self.best * (1 + self.threshold)
        return current > self.best + self.threshold
