"""Lion: the sign of an interpolated momentum, found by program search."""

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
    buffer,
    check_betas,
    check_lr,
    check_nonnegative,
)


class Lion(PerParameter):
    r"""Lion (EvoLved Sign Momentum).

    ::

        input: lr η, betas (β₁, β₂), weight_decay λ, maximize
        state: m ← 0
        for each step, for each parameter θ with a gradient:
            g ← −∇θ if maximize else ∇θ
            c ← β₁·m + (1 − β₁)·g
            θ ← θ − η·(sign(c) + λ·θ)
            m ← β₂·m + (1 − β₂)·g

    Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms" (NeurIPS), Algorithm 2.
    Every coordinate moves by exactly η (plus decay), so Lion wants a learning rate 3–10× smaller
    than AdamW's and a weight decay 3–10× larger; the defaults are the paper's.
    """

    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {
        "lr": {"log_uniform": [1e-5, 1e-2]},
        "betas": {"choice": [[0.9, 0.99], [0.95, 0.98]]},
    }

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        check_lr(lr)
        check_betas(betas)
        check_nonnegative(weight_decay=weight_decay)
        super().__init__(
            params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        lr, (beta1, beta2) = h["lr"], h["betas"]
        g = self.gradient(data, grad, h["maximize"], 0.0)
        m = buffer(state, "exp_avg", data)
        update = torch.lerp(m, g, 1 - beta1, out=self.scratch(m, 1)).sign_()
        if h["weight_decay"] != 0:
            # As the paper writes it, not as θ·(1 − ηλ) then θ − η·sign(c): one rounding of θ per
            # step instead of two, which over hundreds of float32 steps is the difference between
            # following the paper's trajectory to 1e-7 and drifting from it by 1e-5.
            update.add_(data, alpha=h["weight_decay"])
        data.add_(update, alpha=-lr)
        m.lerp_(g, 1 - beta2)
