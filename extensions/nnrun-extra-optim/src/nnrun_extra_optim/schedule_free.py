"""Schedule-free SGD and AdamW: momentum replaced by an interpolation with a running average."""

from __future__ import annotations

from collections.abc import Iterable

import nnrun
from nnrun_extra_optim._common import (
    Base,
    bias_correction,
    buffer,
    check_betas,
    check_count,
    check_eps,
    check_lr,
    check_nonnegative,
)

_WHERE = """
    The parameters hold y, the point where gradients are taken, during the whole run: nnrun
    computes losses, validation losses, the final evaluation and the checkpoints at y. The
    authors' `optimizer.eval()` swaps the parameters to the average x, which the paper's
    guarantees are about; nnrun has no such hook (every optimizer takes one gradient per step at
    its parameters), so nnrun's losses are those of y = (1 − β)·z + β·x, which sits between the
    average and the latest iterate and is what the next gradient is taken at. x is not stored
    (as in the authors' memory-saving code); it is (y − (1 − β)·z)/β from the parameter and
    `state[param]["z"]`.
"""


class _ScheduleFree(Base):
    """The averaging weights both schedule-free optimizers share, counted for the optimizer as a
    whole as in the authors' code: k steps taken, the largest rate so far, the sum of weights."""

    def _average_weight(self, lr: float) -> tuple[float, float]:
        """(this step's rate after warm-up, c: the share of z in the new average x)."""
        h, counters = self.hyperparameters, self.counters
        k = int(counters.get("k", 0))
        warmup = h["warmup_steps"]
        lr = lr * ((k + 1) / warmup if k < warmup else 1.0)
        lr_max = counters["lr_max"] = max(lr, counters.get("lr_max", -1.0))
        weight = (k + 1) ** h["r"] * lr_max ** h["weight_lr_power"]
        weight_sum = counters["weight_sum"] = counters.get("weight_sum", 0.0) + weight
        counters["k"] = k + 1
        return lr, (weight / weight_sum if weight_sum != 0 else 0.0)


class ScheduleFreeSGD(_ScheduleFree):
    __doc__ = (
        r"""Schedule-free SGD; the update of the authors' `schedulefree.SGDScheduleFree`.

    ::

        input: lr γ, momentum β, weight_decay λ, warmup_steps T, r, weight_lr_power p
        state: z ← θ₀ (and x ← θ₀, implicit), k ← 0, Σw ← 0, γ_max ← −1
        for each step (k = 0, 1, ...):
            γₖ ← γ·min(1, (k + 1)/T);  γ_max ← max(γ_max, γₖ)
            w ← (k + 1)^r · γ_max^p;  Σw ← Σw + w;  c ← w/Σw
            for each parameter y (the model's parameter) with a gradient g:
                g ← g + λ·y
                y ← (1 − c)·y + c·z + γₖ·(β·(1 − c) − 1)·g
                z ← z − γₖ·g
    """
        + _WHERE
        + r"""
    The parameter update is the authors' rewriting of the paper's three sequences,
    z ← z − γg;  x ← (1 − c)·x + c·z;  y ← (1 − β)·z + β·x,
    with x eliminated. Defazio et al. 2024, "The Road Less Scheduled" (NeurIPS), Algorithm 1
    and §3.
    """
    )

    def __init__(
        self,
        params: Iterable[nnrun.Parameter],
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
    ):
        check_lr(lr)
        if not 0.0 < momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {momentum} (expected 0 < momentum < 1)")
        check_nonnegative(weight_decay=weight_decay, r=r, weight_lr_power=weight_lr_power)
        check_count("warmup_steps", warmup_steps, 0)
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
        )

    def step(self) -> None:
        h = self.hyperparameters
        lr, c = self._average_weight(h["lr"])
        momentum, weight_decay = h["momentum"], h["weight_decay"]
        for y, grad, state in self.with_grad():
            z = state.get("z")
            if z is None:
                z = state["z"] = y.clone()
            if weight_decay != 0:
                grad = grad.add(y, alpha=weight_decay)
            y.lerp_(z, c).add_(grad, alpha=lr * (momentum * (1 - c) - 1))
            z.sub_(grad, alpha=lr)


class ScheduleFreeAdamW(_ScheduleFree):
    __doc__ = (
        r"""Schedule-free AdamW; the update of the authors' `schedulefree.AdamWScheduleFree`.

    ::

        input: lr γ, betas (β₁, β₂), eps ε, weight_decay λ, warmup_steps T, r, weight_lr_power p
        state: z ← θ₀ (and x ← θ₀, implicit), v ← 0, k ← 0, Σw ← 0, γ_max ← −1
        for each step (k = 0, 1, ...):
            γₖ ← γ·min(1, (k + 1)/T);  γ_max ← max(γ_max, γₖ)
            w ← (k + 1)^r · γ_max^p;  Σw ← Σw + w;  c ← w/Σw
            for each parameter y (the model's parameter) with a gradient g:
                v ← β₂·v + (1 − β₂)·g²
                u ← g / (√(v/(1 − β₂^(k+1))) + ε) + λ·y        (decay at y)
                y ← (1 − c)·y + c·z + γₖ·(β₁·(1 − c) − 1)·u
                z ← z − γₖ·u
    """
        + _WHERE
        + r"""
    (with β = β₁). Defazio et al. 2024, "The Road Less Scheduled" (NeurIPS), Algorithm 1; the
    bias correction of v uses the optimizer's step count, as the authors' code does.
    """
    )

    def __init__(
        self,
        params: Iterable[nnrun.Parameter],
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
    ):
        check_lr(lr)
        check_eps(eps)
        check_betas(betas)
        check_nonnegative(weight_decay=weight_decay, r=r, weight_lr_power=weight_lr_power)
        check_count("warmup_steps", warmup_steps, 0)
        super().__init__(
            params,
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
        )

    def step(self) -> None:
        h = self.hyperparameters
        k = int(self.counters.get("k", 0))
        lr, c = self._average_weight(h["lr"])
        (beta1, beta2), weight_decay = h["betas"], h["weight_decay"]
        correction = bias_correction(beta2, k + 1)
        for y, grad, state in self.with_grad():
            z = state.get("z")
            if z is None:
                z = state["z"] = y.clone()
            v = buffer(state, "exp_avg_sq", y)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            u = grad / v.div(correction).sqrt_().add_(h["eps"])
            if weight_decay != 0:
                u.add_(y, alpha=weight_decay)
            y.lerp_(z, c).add_(u, alpha=lr * (beta1 * (1 - c) - 1))
            z.sub_(u, alpha=lr)
