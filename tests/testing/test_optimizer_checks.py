"""`check_optimizer` passes a correct third-party optimizer and catches each kind of broken one."""

from __future__ import annotations

import pytest
import torch

import nnrun
from nnrun.testing import check_optimizer


class HeavyBall(nnrun.Optimizer):
    """SGD with momentum as a plugin author would write it: only `__init__` and `step()`."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(params, lr=lr, momentum=momentum)

    def step(self) -> None:
        lr, momentum = self.hyperparameters["lr"], self.hyperparameters["momentum"]
        for param in self.params:
            if param.grad is None:
                continue
            state = self.state.setdefault(param, {})
            if "buffer" not in state:
                state["buffer"] = param.grad.clone()
            else:
                state["buffer"].mul_(momentum).add_(param.grad)
            param.data.add_(self.direction(param, state), alpha=-lr)

    def direction(self, param, state) -> torch.Tensor:
        return state["buffer"]


def heavy_ball(param, grad, state, step, lr=0.01, momentum=0.9):
    """The same update as a reference function: b ← g, then b ← μ·b + g; θ ← θ − γ·b."""
    state["b"] = grad.clone() if step == 1 else momentum * state["b"] + grad
    param -= lr * state["b"]


class Dampened(HeavyBall):
    """Wrong formula: b ← μ·b + (1 − μ)·g, which torch's SGD does only when asked to."""

    def step(self) -> None:
        for param in self.params:
            if param.grad is not None and param in self.state:
                param.grad = param.grad * (1 - self.hyperparameters["momentum"])
        super().step()


class Normalized(HeavyBall):
    """Divides by |b| with no epsilon: an exactly zero gradient gives 0/0 = NaN."""

    def direction(self, param, state) -> torch.Tensor:
        return state["buffer"] / state["buffer"].abs()


class DecaysEverything(HeavyBall):
    """Applies weight decay to every parameter, including those without a gradient."""

    def step(self) -> None:
        super().step()
        for param in self.params:
            param.data.mul_(1 - 1e-3)


class StateOnTheSide(HeavyBall):
    """Keeps the momentum in its own dict: `state_dict()` cannot save it."""

    def step(self) -> None:
        buffers = self.__dict__.setdefault("buffers", {})
        lr, momentum = self.hyperparameters["lr"], self.hyperparameters["momentum"]
        for param in self.params:
            if param.grad is None:
                continue
            if param not in buffers:
                buffers[param] = param.grad.clone()
            else:
                buffers[param].mul_(momentum).add_(param.grad)
            param.data.add_(buffers[param], alpha=-lr)


class CachedRate(HeavyBall):
    """Reads the learning rate once, at construction: a scheduler's changes never reach it."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9):
        super().__init__(params, lr=lr, momentum=momentum)
        self.rate = lr

    def step(self) -> None:
        self.hyperparameters["lr"], lr = self.rate, self.hyperparameters["lr"]
        super().step()
        self.hyperparameters["lr"] = lr


class Uphill(HeavyBall):
    """Steps along the gradient instead of against it."""

    def direction(self, param, state) -> torch.Tensor:
        return -state["buffer"]


class GlobalStepAdam(nnrun.Optimizer):
    """Adam with one step count for the whole optimizer: it counts the steps a parameter was
    skipped, so that parameter's bias correction is wrong afterwards."""

    def __init__(self, params, lr: float = 1e-3):
        super().__init__(params, lr=lr)

    def step(self) -> None:
        self.hyperparameters["t"] = t = self.hyperparameters.get("t", 0) + 1
        for param in self.params:
            if param.grad is None:
                continue
            state = self.state.setdefault(param, {})
            m = state.setdefault("m", torch.zeros_like(param.data))
            v = state.setdefault("v", torch.zeros_like(param.data))
            m.lerp_(param.grad, 0.1)
            v.mul_(0.999).addcmul_(param.grad, param.grad, value=0.001)
            denom = (v / (1 - 0.999**t)).sqrt_().add_(1e-8)
            param.data.addcdiv_(m, denom, value=-self.lr / (1 - 0.9**t))


def test_passes_a_correct_third_party_optimizer_against_torch():
    check_optimizer(HeavyBall, torch.optim.SGD, lr=0.01, momentum=0.9)


def test_passes_a_correct_third_party_optimizer_against_a_reference_function():
    check_optimizer(HeavyBall, heavy_ball, momentum=0.5)


def test_passes_without_a_reference():
    check_optimizer(HeavyBall)


BROKEN = [
    pytest.param(
        Dampened,
        torch.optim.SGD,
        r"matches the reference \[float32, shape \(\), step 2\]",
        id="formula",
    ),
    pytest.param(
        GlobalStepAdam,
        torch.optim.Adam,
        r"matches the reference \[float32, shape \(5,\), step \d+\]",
        id="skipped-steps-counted",
    ),
    pytest.param(Normalized, None, r"finite when gradients are exactly zero \[float32", id="nan"),
    pytest.param(
        DecaysEverything,
        None,
        r"whose \.grad is None untouched \[float32, shape \(2, 3\), step 1\]",
        id="none-grad",
    ),
    pytest.param(
        StateOnTheSide, None, r"continues identically after state_dict", id="state-outside"
    ),
    pytest.param(
        CachedRate, None, r"setting optimizer\.lr after construction had no effect", id="cached-lr"
    ),
    pytest.param(Uphill, None, r"does not decrease a convex quadratic \[float32", id="uphill"),
]


@pytest.mark.parametrize(("cls", "reference", "message"), BROKEN)
def test_catches_a_broken_optimizer(cls, reference, message):
    hyperparameters = {"lr": 0.01, "momentum": 0.9} if issubclass(cls, HeavyBall) else {}
    with pytest.raises(AssertionError, match=message):
        check_optimizer(cls, reference, **hyperparameters)


def test_reports_state_that_a_checkpoint_cannot_hold():
    class KeepsAnObject(HeavyBall):
        def step(self) -> None:
            super().step()
            for param in self.params:
                self.state.setdefault(param, {})["when"] = object()

    with pytest.raises(AssertionError, match=r"torch\.load\(weights_only=True\)"):
        check_optimizer(KeepsAnObject)
