"""NAdam: Adam with Nesterov momentum."""

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


class NAdam(PerParameter):
    r"""NAdam; the update of `torch.optim.NAdam`.

    ::

        input: lr γ, betas (β₁, β₂), eps ε, weight_decay λ, momentum_decay ψ,
               decoupled_weight_decay, maximize
        state: m ← 0, v ← 0, Π ← 1, t ← 0
        for each step, for each parameter θ with a gradient:
            t ← t + 1
            g ← −∇θ if maximize else ∇θ
            if λ ≠ 0:  θ ← θ·(1 − γλ) if decoupled_weight_decay else g ← g + λ·θ
            μₜ ← β₁·(1 − ½·0.96^(t·ψ));   μₜ₊₁ ← β₁·(1 − ½·0.96^((t+1)·ψ))
            Π ← Π·μₜ
            m ← β₁·m + (1 − β₁)·g
            v ← β₂·v + (1 − β₂)·g²
            d ← √(v / (1 − β₂ᵗ)) + ε
            θ ← θ − γ·(1 − μₜ)/(1 − Π) · g/d − γ·μₜ₊₁/(1 − Π·μₜ₊₁) · m/d

    Dozat 2016, "Incorporating Nesterov Momentum into Adam" (ICLR workshop); decoupled weight
    decay from Loshchilov & Hutter 2019. Π (`mu_product`) is kept as a Python float (double);
    torch keeps it in a float32 tensor, which agrees to well within float64 tolerances.
    """

    reference = "torch.optim.NAdam"
    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {
        "lr": {"log_uniform": [1e-4, 1e-1]},
        "betas": {"choice": [[0.9, 0.999], [0.9, 0.99], [0.95, 0.999]]},
    }

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ):
        check_adaptive(lr, eps, betas, weight_decay=weight_decay, momentum_decay=momentum_decay)
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        lr, (beta1, beta2), weight_decay = h["lr"], h["betas"], h["weight_decay"]
        psi = h["momentum_decay"]
        t = advance(state)
        decoupled_lr = lr if h["decoupled_weight_decay"] else None
        g = self.gradient(data, grad, h["maximize"], weight_decay, decoupled_lr)
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        mu_product = state["mu_product"] = state.get("mu_product", 1.0) * mu
        m = buffer(state, "exp_avg", data)
        v = buffer(state, "exp_avg_sq", data)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        d = torch.div(v, bias_correction(beta2, t), out=self.scratch(v, 1)).sqrt_().add_(h["eps"])
        data.addcdiv_(g, d, value=-lr * (1.0 - mu) / (1.0 - mu_product))
        data.addcdiv_(m, d, value=-lr * mu_next / (1.0 - mu_product * mu_next))
