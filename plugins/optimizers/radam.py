"""RAdam: Adam whose adaptive step is switched on only once its variance is tractable."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import ClassVar

import torch

from nnrun.optimizer import SearchSpace
from nnrun.parameter import Parameter
from nnrun.plugins.optimizers._common import (
    PerParameter,
    State,
    Tensor,
    advance,
    bias_correction,
    buffer,
    check_adaptive,
)


class RAdam(PerParameter):
    r"""RAdam; the update of `torch.optim.RAdam`.

    ::

        input: lr γ, betas (β₁, β₂), eps ε, weight_decay λ, decoupled_weight_decay, maximize
        state: m ← 0, v ← 0, t ← 0
        ρ∞ ← 2/(1 − β₂) − 1
        for each step, for each parameter θ with a gradient:
            t ← t + 1
            g ← −∇θ if maximize else ∇θ
            if λ ≠ 0:  θ ← θ·(1 − γλ) if decoupled_weight_decay else g ← g + λ·θ
            m ← β₁·m + (1 − β₁)·g
            v ← β₂·v + (1 − β₂)·g²
            m̂ ← m / (1 − β₁ᵗ)
            ρₜ ← ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
            if ρₜ > 5:
                r ← √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
                θ ← θ − γ·r·m̂·√(1 − β₂ᵗ) / (√v + ε)
            else:
                θ ← θ − γ·m̂

    Liu et al. 2020, "On the Variance of the Adaptive Learning Rate and Beyond" (ICLR). The scalar
    factors are folded into one `addcdiv_` (torch builds m̂, m̂·γ, the adaptive rate and their
    products as four parameter-sized temporaries); the result agrees with torch's to rounding.
    """

    reference = "torch.optim.RAdam"
    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {
        "lr": {"log_uniform": [1e-4, 1e-1]},
        "betas": {"choice": [[0.9, 0.999], [0.9, 0.99], [0.95, 0.999]]},
    }

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ):
        check_adaptive(lr, eps, betas, weight_decay=weight_decay)
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        lr, (beta1, beta2), weight_decay = h["lr"], h["betas"], h["weight_decay"]
        t = advance(state)
        decoupled_lr = lr if h["decoupled_weight_decay"] else None
        g = self.gradient(data, grad, h["maximize"], weight_decay, decoupled_lr)
        m = buffer(state, "exp_avg", data)
        v = buffer(state, "exp_avg_sq", data)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bc1, bc2 = bias_correction(beta1, t), bias_correction(beta2, t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / bc2
        if rho_t > 5.0:
            r = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            denom = torch.sqrt(v, out=self.scratch(v, 1)).add_(h["eps"])
            data.addcdiv_(m, denom, value=-lr * r * math.sqrt(bc2) / bc1)
        else:
            data.add_(m, alpha=-lr / bc1)
