"""Adam and AdamW: moving averages of the gradient and its square, bias-corrected."""

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
    step_tensors,
)


class Adam(PerParameter):
    r"""Adam; the update of `torch.optim.Adam`.

    ::

        input: lr γ, betas (β₁, β₂), eps ε, weight_decay λ, amsgrad, maximize
        state: m ← 0, v ← 0, v_max ← 0, t ← 0
        for each step, for each parameter θ with a gradient:
            t ← t + 1
            g ← −∇θ if maximize else ∇θ
            if λ ≠ 0:  g ← g + λ·θ                   (AdamW: θ ← θ·(1 − γλ) instead)
            m ← β₁·m + (1 − β₁)·g
            v ← β₂·v + (1 − β₂)·g²
            if amsgrad:  v_max ← max(v_max, v);  v ← v_max
            θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

    Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization" (ICLR); amsgrad from Reddi,
    Kale & Kumar 2018, "On the Convergence of Adam and Beyond" (ICLR). Contiguous float32/float64
    parameters go through torch's fused kernel.
    """

    reference = "torch.optim.Adam"

    fused_kernel = "_fused_adam_"
    decoupled_weight_decay = False

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
        amsgrad: bool = False,
        maximize: bool = False,
    ):
        check_adaptive(lr, eps, betas, weight_decay=weight_decay)
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        lr, (beta1, beta2), weight_decay = h["lr"], h["betas"], h["weight_decay"]
        t = advance(state)
        decoupled_lr = lr if self.decoupled_weight_decay else None
        g = self.gradient(data, grad, h["maximize"], weight_decay, decoupled_lr)
        m = buffer(state, "exp_avg", data)
        v = buffer(state, "exp_avg_sq", data)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        if h["amsgrad"]:
            v_max = buffer(state, "max_exp_avg_sq", data)
            v = torch.maximum(v_max, v, out=v_max)
        denom = torch.sqrt(v, out=self.scratch(v, 1))
        denom.div_(bias_correction(beta2, t) ** 0.5).add_(h["eps"])
        data.addcdiv_(m, denom, value=-lr / bias_correction(beta1, t))

    def fused_update(self, params: list[Parameter], grads: list[Tensor], h: dict) -> None:
        amsgrad = bool(h["amsgrad"])
        datas, ms, vs, v_maxs, steps = [], [], [], [], []
        for param in params:
            data, state = param.data, self.state_of(param)
            steps.append(advance(state))
            datas.append(data)
            ms.append(buffer(state, "exp_avg", data))
            vs.append(buffer(state, "exp_avg_sq", data))
            if amsgrad:
                v_maxs.append(buffer(state, "max_exp_avg_sq", data))
        beta1, beta2 = h["betas"]
        kernel = torch._fused_adamw_ if self.decoupled_weight_decay else torch._fused_adam_
        kernel(
            datas,
            grads,
            ms,
            vs,
            v_maxs,
            step_tensors(steps, datas[0].device),
            lr=float(h["lr"]),
            beta1=float(beta1),
            beta2=float(beta2),
            weight_decay=float(h["weight_decay"]),
            eps=float(h["eps"]),
            amsgrad=amsgrad,
            maximize=bool(h["maximize"]),
        )


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay; the update of `torch.optim.AdamW`.

    ::

        as Adam, except that weight decay shrinks the parameter before the moments are updated
        instead of entering the gradient:
            θ ← θ·(1 − γ·λ);   g ← −∇θ if maximize else ∇θ

    Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization" (ICLR).
    """

    reference = "torch.optim.AdamW"

    fused_kernel = "_fused_adamw_"
    decoupled_weight_decay = True

    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {
        "lr": {"log_uniform": [1e-4, 1e-1]},
        "betas": {"choice": [[0.9, 0.999], [0.9, 0.99], [0.95, 0.999]]},
        "weight_decay": {"log_uniform": [1e-4, 1e-1]},
    }

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
