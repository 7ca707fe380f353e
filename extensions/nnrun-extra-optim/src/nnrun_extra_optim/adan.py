"""Adan: Nesterov momentum estimated from gradient differences, with three moving averages."""

from __future__ import annotations

import math
from collections.abc import Iterable

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


class Adan(Base):
    r"""Adan (ADAptive Nesterov momentum); the update of the authors' code (sail-sg/Adan).

    ::

        input: lr η, betas (β₁, β₂, β₃), eps ε, weight_decay λ, no_prox
        state: m ← 0, d ← 0, n ← 0, g_prev, t ← 0
        for each step, for each parameter θ with a gradient g:
            t ← t + 1
            if t = 1:  g_prev ← g                      (the first difference is zero)
            m ← β₁·m + (1 − β₁)·g                         (the gradient)
            d ← β₂·d + (1 − β₂)·(g − g_prev)              (the gradient difference)
            u ← g + β₂·(g − g_prev)
            n ← β₃·n + (1 − β₃)·u²                        (the square of the Nesterov gradient)
            step ← (m/(1 − β₁ᵗ) + β₂·d/(1 − β₂ᵗ)) / (√n / √(1 − β₃ᵗ) + ε)
            if no_prox:  θ ← θ·(1 − η·λ) − η·step
            else:        θ ← (θ − η·step) / (1 + η·λ)     (the proximal weight decay)
            g_prev ← g

    Xie et al. 2024, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
    Models" (TPAMI; arXiv 2208.06677, 2022), Algorithm 1. The paper writes the betas as
    1 − these (its β₁ = 0.02 is 1 − 0.98 here); the names, defaults, the bias corrections and
    the zero first difference are those of the authors' PyTorch code. Step counts are kept per
    parameter, so that a parameter without a gradient keeps its state as it is (the authors'
    code counts steps for the whole group).
    """

    def __init__(
        self,
        params: Iterable[nnrun.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float, float] = (0.98, 0.92, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        no_prox: bool = False,
    ):
        check_lr(lr)
        check_eps(eps)
        check_betas(betas, count=3)
        check_nonnegative(weight_decay=weight_decay)
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            no_prox=no_prox,
        )

    def step(self) -> None:
        h = self.hyperparameters
        lr, (beta1, beta2, beta3), weight_decay = h["lr"], h["betas"], h["weight_decay"]
        for data, grad, state in self.with_grad():
            t = state["step"] = state.get("step", 0) + 1
            m = buffer(state, "exp_avg", data)
            d = buffer(state, "exp_avg_diff", data)
            n = buffer(state, "exp_avg_sq", data)
            previous = state.get("pre_grad")
            if previous is None:
                previous = state["pre_grad"] = grad.clone()
            difference = grad - previous
            m.lerp_(grad, 1 - beta1)
            d.lerp_(difference, 1 - beta2)
            u = difference.mul_(beta2).add_(grad)
            n.mul_(beta3).addcmul_(u, u, value=1 - beta3)
            denom = n.sqrt().div_(math.sqrt(bias_correction(beta3, t))).add_(h["eps"])
            if h["no_prox"]:
                data.mul_(1 - lr * weight_decay)
            data.addcdiv_(m, denom, value=-lr / bias_correction(beta1, t))
            data.addcdiv_(d, denom, value=-lr * beta2 / bias_correction(beta2, t))
            if not h["no_prox"] and weight_decay != 0:
                data.div_(1 + lr * weight_decay)
            previous.copy_(grad)
