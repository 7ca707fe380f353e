"""RMSprop: steps scaled by a moving root mean square of the gradients."""

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
    buffer,
    check_eps,
    check_lr,
    check_nonnegative,
)


class RMSprop(PerParameter):
    r"""RMSprop; the update of `torch.optim.RMSprop` (no bias correction).

    ::

        input: lr γ, alpha α, eps ε, weight_decay λ, momentum μ, centered, maximize
        state: v ← 0, ḡ ← 0, b ← 0
        for each step, for each parameter θ with a gradient:
            g ← −∇θ if maximize else ∇θ
            if λ ≠ 0:  g ← g + λ·θ
            v ← α·v + (1 − α)·g²
            if centered:  ḡ ← α·ḡ + (1 − α)·g;   d ← √(v − ḡ²) + ε
            else:         d ← √v + ε
            if μ > 0:  b ← μ·b + g/d;  θ ← θ − γ·b
            else:      θ ← θ − γ·g/d

    Tieleman & Hinton 2012, "Lecture 6.5 — RMSprop" (COURSERA: Neural Networks for Machine
    Learning); the centered variant from Graves 2013, "Generating Sequences With Recurrent Neural
    Networks" (arXiv:1308.0850).
    """

    reference = "torch.optim.RMSprop"
    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {
        "lr": {"log_uniform": [1e-4, 1e-1]},
        "momentum": {"uniform": [0.0, 0.9]},
    }

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ):
        check_lr(lr)
        check_eps(eps)
        check_nonnegative(momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        advance(state)
        alpha = h["alpha"]
        g = self.gradient(data, grad, h["maximize"], h["weight_decay"])
        v = buffer(state, "square_avg", data)
        v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
        if h["centered"]:
            g_avg = buffer(state, "grad_avg", data)
            g_avg.lerp_(g, 1 - alpha)
            d = torch.addcmul(v, g_avg, g_avg, value=-1, out=self.scratch(v, 1)).sqrt_()
        else:
            d = torch.sqrt(v, out=self.scratch(v, 1))
        d.add_(h["eps"])
        momentum = h["momentum"]
        if momentum > 0:
            b = buffer(state, "momentum_buffer", data)
            b.mul_(momentum).addcdiv_(g, d)
            data.add_(b, alpha=-h["lr"])
        else:
            data.addcdiv_(g, d, value=-h["lr"])
