"""Muon: momentum orthogonalised by a Newton–Schulz iteration, for the weight matrices; AdamW for
the rest (biases), in one optimizer since an nnrun run has one."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import nnrun
from nnrun_extra_optim._common import (
    Base,
    Tensor,
    bias_correction,
    buffer,
    check_betas,
    check_count,
    check_eps,
    check_lr,
    check_nonnegative,
)


def newton_schulz(
    G: Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> Tensor:
    """≈ U·Vᵀ for G = U·S·Vᵀ: the quintic iteration X ← aX + (b·XXᵀ + c·(XXᵀ)²)·X from
    X = G/‖G‖_F, on the wide orientation of G (Jordan et al. 2024)."""
    a, b, c = coefficients
    X = G.T if G.size(0) > G.size(1) else G
    X = X / X.norm().clamp(min=eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.T if G.size(0) > G.size(1) else X


class Muon(Base):
    r"""Muon (MomentUm Orthogonalized by Newton–Schulz), with AdamW for parameters of fewer than
    two dimensions.

    ::

        input: lr η, momentum μ, nesterov, weight_decay λ, ns_coefficients (a, b, c), ns_steps n,
               eps ε, adjust_lr_fn; for 0-D and 1-D parameters adamw_lr, adamw_betas, adamw_eps
        for each step, for each parameter θ with a gradient g:
          if θ has ≥ 2 dimensions (viewed as a matrix, rows × the rest: R × C):
            B ← μ·B + (1 − μ)·g
            U ← (1 − μ)·g + μ·B if nesterov else B
            O ← NSₙ(U)              n steps of X ← aX + (b·XXᵀ + c·(XXᵀ)²)X from U/max(‖U‖_F, ε)
            θ ← θ·(1 − η·λ) − η·s·O,  s = √max(1, R/C) ("original") or 0.2·√max(R, C)
          else (AdamW; t counts this parameter's steps):
            m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²
            θ ← θ·(1 − η_a·λ) − η_a · (m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ)) + ε_a)

    Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks" (blog post and
    KellerJordan/Muon, `MuonWithAuxAdam`); the `match_rms_adamw` scale from Liu et al. 2025,
    "Muon is Scalable for LLM Training". The defaults of the matrix part are torch.optim.Muon's,
    which takes matrices only. The iteration runs in the parameter's dtype: the authors' and
    torch's run it in bfloat16, which is fast on GPUs but changes the third significant digit.
    """

    def __init__(
        self,
        params: Iterable[nnrun.Parameter],
        lr: float = 1e-3,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.1,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
        ns_steps: int = 5,
        eps: float = 1e-7,
        adjust_lr_fn: Literal["original", "match_rms_adamw"] = "original",
        adamw_lr: float = 3e-4,
        adamw_betas: tuple[float, float] = (0.9, 0.95),
        adamw_eps: float = 1e-10,
    ):
        check_lr(lr)
        check_lr(adamw_lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        check_nonnegative(weight_decay=weight_decay)
        check_count("ns_steps", ns_steps, 0)
        check_eps(eps)
        check_eps(adamw_eps)
        check_betas(adamw_betas)
        if adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(
                f"Invalid adjust_lr_fn: {adjust_lr_fn!r} (expected 'original' or 'match_rms_adamw')"
            )
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            ns_coefficients=tuple(ns_coefficients),
            ns_steps=ns_steps,
            eps=eps,
            adjust_lr_fn=adjust_lr_fn,
            adamw_lr=adamw_lr,
            adamw_betas=tuple(adamw_betas),
            adamw_eps=adamw_eps,
        )

    def step(self) -> None:
        for data, grad, state in self.with_grad():
            if data.dim() >= 2:
                self._orthogonalised(data, grad, state)
            else:
                self._adamw(data, grad, state)

    def _orthogonalised(self, data: Tensor, grad: Tensor, state: dict) -> None:
        h = self.hyperparameters
        lr, momentum = h["lr"], h["momentum"]
        B = buffer(state, "momentum_buffer", data)
        B.lerp_(grad, 1 - momentum)
        U = grad.lerp(B, momentum) if h["nesterov"] else B
        rows, cols = data.shape[0], data[0].numel()
        orthogonal = newton_schulz(
            U.reshape(rows, cols), h["ns_coefficients"], h["ns_steps"], h["eps"]
        )
        if h["adjust_lr_fn"] == "original":
            scale = math.sqrt(max(1.0, rows / cols))
        else:
            scale = 0.2 * math.sqrt(max(rows, cols))
        data.mul_(1 - lr * h["weight_decay"])
        data.add_(orthogonal.reshape(data.shape), alpha=-lr * scale)

    def _adamw(self, data: Tensor, grad: Tensor, state: dict) -> None:
        h = self.hyperparameters
        lr, (beta1, beta2) = h["adamw_lr"], h["adamw_betas"]
        t = state["step"] = state.get("step", 0) + 1
        m = buffer(state, "exp_avg", data)
        v = buffer(state, "exp_avg_sq", data)
        m.lerp_(grad, 1 - beta1)
        v.lerp_(grad * grad, 1 - beta2)
        denom = (v / bias_correction(beta2, t)).sqrt_().add_(h["adamw_eps"])
        data.mul_(1 - lr * h["weight_decay"])
        data.addcdiv_(m, denom, value=-lr / bias_correction(beta1, t))
