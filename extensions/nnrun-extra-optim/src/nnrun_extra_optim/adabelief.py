"""AdaBelief: Adam whose second moment is the variance of the gradient around its prediction."""

from __future__ import annotations

import math
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


class AdaBelief(Base):
    r"""AdaBelief; the update of the authors' `adabelief_pytorch.AdaBelief` (version 0.2).

    ::

        input: lr α, betas (β₁, β₂), eps ε, weight_decay λ, weight_decouple, fixed_decay,
               amsgrad, rectify, degenerated_to_sgd
        state: m ← 0, s ← 0, s_max ← 0, t ← 0
        for each step, for each parameter θ with a gradient g:
            if weight_decouple:  θ ← θ·(1 − λ) if fixed_decay else θ·(1 − α·λ)
            else:                g ← g + λ·θ
            t ← t + 1
            m ← β₁·m + (1 − β₁)·g
            s ← β₂·s + (1 − β₂)·(g − m)² + ε                  (ε inside s, as the paper writes it)
            if amsgrad:  s_max ← max(s_max, s)
            if not rectify:
                ŝ ← s_max if amsgrad else s
                θ ← θ − α/(1 − β₁ᵗ) · m / (√ŝ / √(1 − β₂ᵗ) + ε)
            else (RAdam's rectification):
                ρ∞ ← 2/(1 − β₂) − 1;  ρ ← ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
                if ρ ≥ 5:  r ← √((1 − β₂ᵗ)·(ρ − 4)(ρ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρ))
                           θ ← θ − α·r/(1 − β₁ᵗ) · m / (√s + ε)
                elif degenerated_to_sgd:  θ ← θ − α/(1 − β₁ᵗ) · m
                (else: no step)

    Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients" (NeurIPS), Algorithm 2; rectification from Liu et al. 2020, "On the Variance of
    the Adaptive Learning Rate and Beyond" (ICLR). The defaults are the authors' package's
    (eps 1e-16, decoupled decay, rectified), which differ from the paper's plain algorithm
    (`rectify = false`, `weight_decouple = false`). As in the authors' code, `amsgrad` keeps
    s_max up to date at every step but only the unrectified update reads it.
    """

    def __init__(
        self,
        params: Iterable[nnrun.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        amsgrad: bool = False,
        rectify: bool = True,
        degenerated_to_sgd: bool = True,
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
            weight_decouple=weight_decouple,
            fixed_decay=fixed_decay,
            amsgrad=amsgrad,
            rectify=rectify,
            degenerated_to_sgd=degenerated_to_sgd,
        )

    def step(self) -> None:
        h = self.hyperparameters
        lr, (beta1, beta2), eps, weight_decay = h["lr"], h["betas"], h["eps"], h["weight_decay"]
        for data, grad, state in self.with_grad():
            if h["weight_decouple"]:
                data.mul_(1 - (weight_decay if h["fixed_decay"] else lr * weight_decay))
            elif weight_decay != 0:
                grad = grad.add(data, alpha=weight_decay)
            t = state["step"] = state.get("step", 0) + 1
            m = buffer(state, "exp_avg", data)
            s = buffer(state, "exp_avg_var", data)
            m.lerp_(grad, 1 - beta1)
            residual = grad - m
            s.mul_(beta2).addcmul_(residual, residual, value=1 - beta2).add_(eps)
            s_max = s
            if h["amsgrad"]:
                s_max = buffer(state, "max_exp_avg_var", data)
                torch.maximum(s_max, s, out=s_max)
            c1, c2 = bias_correction(beta1, t), bias_correction(beta2, t)
            if not h["rectify"]:
                denom = s_max.sqrt().div_(math.sqrt(c2)).add_(eps)
                data.addcdiv_(m, denom, value=-lr / c1)
                continue
            rho_inf = 2 / (1 - beta2) - 1
            rho = rho_inf - 2 * t * beta2**t / c2
            if rho >= 5:
                r = math.sqrt(
                    c2 * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf / (rho_inf - 2)
                )
                data.addcdiv_(m, s.sqrt().add_(eps), value=-lr * r / c1)
            elif h["degenerated_to_sgd"]:
                data.add_(m, alpha=-lr / c1)
