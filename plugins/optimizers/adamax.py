"""Adamax: Adam with the infinity norm in place of the root mean square."""

from __future__ import annotations

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


class Adamax(PerParameter):
    r"""Adamax; the update of `torch.optim.Adamax`.

    ::

        input: lr γ, betas (β₁, β₂), eps ε, weight_decay λ, maximize
        state: m ← 0, u ← 0, t ← 0
        for each step, for each parameter θ with a gradient:
            t ← t + 1
            g ← −∇θ if maximize else ∇θ
            if λ ≠ 0:  g ← g + λ·θ
            m ← β₁·m + (1 − β₁)·g
            u ← max(β₂·u, |g| + ε)
            θ ← θ − γ/(1 − β₁ᵗ) · m/u

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization" (ICLR), section 7.1.
    """

    reference = "torch.optim.Adamax"
    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {
        "lr": {"log_uniform": [2e-4, 2e-1]},
        "betas": {"choice": [[0.9, 0.999], [0.9, 0.99], [0.95, 0.999]]},
    }

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        check_adaptive(lr, eps, betas, weight_decay=weight_decay)
        super().__init__(
            params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        beta1, beta2 = h["betas"]
        t = advance(state)
        g = self.gradient(data, grad, h["maximize"], h["weight_decay"])
        m = buffer(state, "exp_avg", data)
        u = buffer(state, "exp_inf", data)
        m.lerp_(g, 1 - beta1)
        torch.maximum(u.mul_(beta2), torch.abs(g, out=self.scratch(g, 1)).add_(h["eps"]), out=u)
        data.addcdiv_(m, u, value=-h["lr"] / bias_correction(beta1, t))
