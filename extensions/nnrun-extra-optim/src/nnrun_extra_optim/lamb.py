"""LAMB: Adam's direction, scaled per layer by a trust ratio ‖θ‖ / ‖update‖."""

from __future__ import annotations

from collections.abc import Iterable

import torch

import nnrun
from nnrun_extra_optim._common import (
    Base,
    bias_correction,
    buffer,
    check_betas,
    check_eps,
    check_lr,
    check_nonnegative,
)


class Lamb(Base):
    r"""LAMB (Layer-wise Adaptive Moments for Batch training).

    ::

        input: lr η, betas (β₁, β₂), eps ε, weight_decay λ, bias_correction
        state: m ← 0, v ← 0, t ← 0
        for each step, for each parameter θ (one "layer") with a gradient g:
            t ← t + 1
            m ← β₁·m + (1 − β₁)·g
            v ← β₂·v + (1 − β₂)·g²
            m̂ ← m / (1 − β₁ᵗ),  v̂ ← v / (1 − β₂ᵗ)       (m̂ = m, v̂ = v without bias_correction)
            r ← m̂ / (√v̂ + ε) + λ·θ
            trust ← ‖θ‖ / ‖r‖, or 1 when ‖θ‖ = 0 or ‖r‖ = 0
            θ ← θ − η·trust·r

    You et al. 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes"
    (ICLR), Algorithm 2, with φ the identity; the norms are Euclidean over the whole parameter
    tensor (every `nnrun.Parameter` is one layer: a weight matrix, or a bias). A parameter of
    zero norm (freshly zero-initialised) or a zero update gets trust 1, as in NVIDIA's and
    timm's implementations, so that it can move away from zero at all. The paper's first
    versions had no bias correction; `bias_correction = false` gives them.
    """

    def __init__(
        self,
        params: Iterable[nnrun.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
    ):
        check_lr(lr)
        check_eps(eps)
        check_betas(betas)
        check_nonnegative(weight_decay=weight_decay)
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
        )

    def step(self) -> None:
        h = self.hyperparameters
        (beta1, beta2), eps, weight_decay = h["betas"], h["eps"], h["weight_decay"]
        for data, grad, state in self.with_grad():
            t = state["step"] = state.get("step", 0) + 1
            m = buffer(state, "exp_avg", data)
            v = buffer(state, "exp_avg_sq", data)
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            c1, c2 = (bias_correction(beta1, t), bias_correction(beta2, t))
            if not h["bias_correction"]:
                c1 = c2 = 1.0
            update = (m / c1).div_((v / c2).sqrt_().add_(eps))
            if weight_decay != 0:
                update.add_(data, alpha=weight_decay)
            weight_norm, update_norm = (
                torch.linalg.vector_norm(data),
                torch.linalg.vector_norm(update),
            )
            trust = 1.0
            if weight_norm > 0 and update_norm > 0:
                trust = float(weight_norm / update_norm)
            data.add_(update, alpha=-h["lr"] * trust)
