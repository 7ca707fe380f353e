"""Built-in losses: a scalar `forward(pred, target)` beside its gradient `backward(pred, target)`.

Every loss reduces by the mean, exactly as torch.nn.functional does by default, so n below is
`pred.numel()` (the batch size N for cross-entropy), and matches its value and autograd gradient,
including at kinks (|d|'(0) = 0, Huber at |d| = delta) and for logits of ±1000.

Each also has `forward_backward`, what a training step calls: the same value and gradient in one
pass, computing the difference (or the target's conversion) once. It is bit-identical to the two
methods, except for cross-entropy, whose gradient there is exp(log_softmax), the probabilities the
loss itself used, where `backward` computes softmax afresh (the two differ by float rounding).
"""

from __future__ import annotations

import math

import torch

import nnrun
from nnrun.components import Loss
from nnrun.hookspecs import Register


def _check_same_shape(pred: torch.Tensor, target: torch.Tensor) -> None:
    # Broadcasting a (N,) target against a (N, 1) prediction silently builds an (N, N) loss.
    if pred.shape != target.shape:
        raise ValueError(
            f"target shape {tuple(target.shape)} differs from prediction shape {tuple(pred.shape)}"
        )


class MSE(Loss):
    """L = mean(d²), d = pred − target;  dL/dpred = 2d / n."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_same_shape(pred, target)
        d = pred - target
        return (d * d).mean()

    def backward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).mul_(2 / pred.numel())

    def forward_backward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_same_shape(pred, target)
        d = pred - target
        return (d * d).mean(), d.mul_(2 / pred.numel())


class MAE(Loss):
    """L = mean(|d|), d = pred − target (L1);  dL/dpred = sign(d) / n, 0 at d = 0 as torch."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_same_shape(pred, target)
        return (pred - target).abs().mean()

    def backward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sign(pred - target).div_(pred.numel())

    def forward_backward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_same_shape(pred, target)
        d = pred - target
        return d.abs().mean(), d.sign_().div_(pred.numel())


class Huber(Loss):
    """L = mean(½d² if |d| < δ else δ(|d| − ½δ)), d = pred − target;
    dL/dpred = clamp(d, −δ, δ) / n (the two branches agree at |d| = δ).
    """

    def __init__(self, delta: float = 1.0):
        if not math.isfinite(delta) or delta <= 0:
            raise ValueError(f"Invalid delta: {delta}; delta must be positive")
        self.delta = delta

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_same_shape(pred, target)
        d = pred - target
        a = d.abs()
        return torch.where(a < self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta)).mean()

    def backward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).clamp_(-self.delta, self.delta).div_(pred.numel())

    def forward_backward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_same_shape(pred, target)
        d = pred - target
        a = d.abs()
        loss = torch.where(a < self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta)).mean()
        return loss, d.clamp_(-self.delta, self.delta).div_(pred.numel())


class BCEWithLogits(Loss):
    """Binary cross-entropy of logits x against targets t in [0, 1], in its stable form
    L = mean((1 − t)·x − log σ(x));  dL/dx = (σ(x) − t) / n.

    `target` is floats shaped like the logits, or, for a two-class classifier with one output,
    class indices 0/1 of an integer dtype shaped like the logits without their last dimension of 1
    ((N,) for logits (N, 1)), read as t = index.
    """

    verify_targets = "binary"  # the targets `nnrun verify` checks it with

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = _binary_target(pred, target)
        # log σ(x) is computed as −log(1 + e⁻ˣ) without forming e⁻ˣ = inf for x ≪ 0
        return ((1 - target) * pred - torch.nn.functional.logsigmoid(pred)).mean()

    def backward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(pred) - _binary_target(pred, target)).div_(pred.numel())

    def forward_backward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        target = _binary_target(pred, target)
        loss = ((1 - target) * pred - torch.nn.functional.logsigmoid(pred)).mean()
        return loss, (torch.sigmoid(pred) - target).div_(pred.numel())


def _binary_target(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Float targets as they are; class indices (N,) for logits (N, 1) as floats (N, 1)."""
    if not target.is_floating_point() and pred.shape[-1:] == (1,):
        if target.shape != pred.shape[:-1]:
            raise ValueError(
                f"bce_with_logits takes class indices {tuple(pred.shape[:-1])} for logits "
                f"{tuple(pred.shape)}; got target {tuple(target.shape)}"
            )
        return target.unsqueeze(-1).to(pred.dtype)
    _check_same_shape(pred, target)
    return target


class CrossEntropy(Loss):
    """Softmax cross-entropy of logits `pred` (N, C) (or (C,)), classes along the last dimension.

    `target` is either class indices (N,) of an integer dtype, L = −mean_i log p_i,target_i, or
    class probabilities shaped like `pred`, L = −(1/N) Σ_i Σ_c t_ic log p_ic, where
    log p = x − logsumexp(x). Gradients: (p − onehot(target)) / N and (p Σ_c t_c − t) / N.
    """

    verify_targets = "classes"  # the targets `nnrun verify` checks it with

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_logits(pred, target)
        log_p = torch.log_softmax(pred, dim=-1)  # x − max − log Σ e^(x − max): stable
        if target.is_floating_point():
            return -(target * log_p).sum(dim=-1).mean()
        return -log_p.gather(-1, target.unsqueeze(-1)).mean()

    def backward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(pred, dim=-1)
        n = pred.numel() // pred.shape[-1]
        if target.is_floating_point():
            return (p * target.sum(dim=-1, keepdim=True) - target).div_(n)
        index = target.unsqueeze(-1)
        return p.scatter_add_(-1, index, torch.full_like(index, -1, dtype=p.dtype)).div_(n)

    def forward_backward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_logits(pred, target)
        log_p = torch.log_softmax(pred, dim=-1)
        n = pred.numel() // pred.shape[-1]
        if target.is_floating_point():
            loss = -(target * log_p).sum(dim=-1).mean()
            return loss, (log_p.exp() * target.sum(dim=-1, keepdim=True) - target).div_(n)
        index = target.unsqueeze(-1)
        loss = -log_p.gather(-1, index).mean()
        minus_one = torch.full_like(index, -1, dtype=log_p.dtype)
        return loss, log_p.exp_().scatter_add_(-1, index, minus_one).div_(n)


def _check_logits(pred: torch.Tensor, target: torch.Tensor) -> None:
    # torch takes classes along dim 1 of (N, C, d1, ...); refuse those shapes rather than differ.
    expected = pred.shape if target.is_floating_point() else pred.shape[:-1]
    if pred.dim() not in (1, 2) or target.shape != expected:
        raise ValueError(
            f"cross_entropy takes logits (N, C) or (C,) with class indices (N,) or (), or with "
            f"probabilities shaped like the logits; got logits {tuple(pred.shape)} and "
            f"target {tuple(target.shape)} of {target.dtype}"
        )


@nnrun.hookimpl
def register_losses(register: Register) -> None:
    register("mse", MSE)
    register("mae", MAE)
    register("huber", Huber)
    register("bce_with_logits", BCEWithLogits)
    register("cross_entropy", CrossEntropy)
