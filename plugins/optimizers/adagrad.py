"""Adagrad: per-coordinate steps scaled by the root of the summed squared gradients."""

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
    step_tensors,
)


class Adagrad(PerParameter):
    r"""Adagrad; the update of `torch.optim.Adagrad`.

    ::

        input: lr γ, lr_decay η, weight_decay λ, initial_accumulator_value s₀, eps ε, maximize
        state: sum ← s₀, t ← 0
        for each step, for each parameter θ with a gradient:
            t ← t + 1
            g ← −∇θ if maximize else ∇θ
            if λ ≠ 0:  g ← g + λ·θ
            γ̃ ← γ / (1 + (t − 1)·η)
            sum ← sum + g²
            θ ← θ − γ̃·g / (√sum + ε)

    Duchi, Hazan & Singer 2011, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization" (JMLR 12). Contiguous float32/float64 parameters go through
    `torch._fused_adagrad_`.
    """

    reference = "torch.optim.Adagrad"

    fused_kernel = "_fused_adagrad_"

    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {"lr": {"log_uniform": [1e-3, 1.0]}}

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ):
        check_lr(lr)
        check_nonnegative(lr_decay=lr_decay, weight_decay=weight_decay)
        check_nonnegative(initial_accumulator_value=initial_accumulator_value)
        check_eps(eps)
        super().__init__(
            params,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        t = advance(state)
        g = self.gradient(data, grad, h["maximize"], h["weight_decay"])
        total = buffer(state, "sum", data, h["initial_accumulator_value"])
        lr = h["lr"] / (1 + (t - 1) * h["lr_decay"])
        total.addcmul_(g, g, value=1)
        std = torch.sqrt(total, out=self.scratch(total, 1)).add_(h["eps"])
        data.addcdiv_(g, std, value=-lr)

    def fused_update(self, params: list[Parameter], grads: list[Tensor], h: dict) -> None:
        datas, sums, steps = [], [], []
        for param in params:
            state = self.state_of(param)
            steps.append(advance(state))
            datas.append(param.data)
            sums.append(buffer(state, "sum", param.data, h["initial_accumulator_value"]))
        torch._fused_adagrad_(
            datas,
            grads,
            sums,
            step_tensors(steps, datas[0].device),
            lr=float(h["lr"]),
            lr_decay=float(h["lr_decay"]),
            weight_decay=float(h["weight_decay"]),
            eps=float(h["eps"]),
            maximize=bool(h["maximize"]),
        )
