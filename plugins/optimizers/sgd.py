"""Stochastic gradient descent, with optional (Nesterov) momentum."""

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
    check_lr,
    check_nonnegative,
)


class SGD(PerParameter):
    r"""Stochastic gradient descent; the update of `torch.optim.SGD`.

    ::

        input: lr γ, momentum μ, dampening τ, weight_decay λ, nesterov, maximize
        for each step, for each parameter θ with a gradient:
            g ← −∇θ if maximize else ∇θ
            if λ ≠ 0:  g ← g + λ·θ
            if μ ≠ 0:
                b ← g                       on this parameter's first step
                b ← μ·b + (1 − τ)·g         afterwards
                g ← g + μ·b if nesterov else b
            θ ← θ − γ·g

    Nesterov momentum as formulated by Sutskever, Martens, Dahl & Hinton 2013, "On the importance
    of initialization and momentum in deep learning" (ICML). Contiguous float32/float64 parameters
    go through `torch._fused_sgd_` in one call, which is what keeps a step of a tiny network cheap.
    """

    reference = "torch.optim.SGD"

    fused_kernel = "_fused_sgd_"

    #: The default space of `[tune] space = "default"` (AlgoPerf / DeepOBS style): lr log-uniform
    #: over about three decades around the default, and the momentum-like terms.
    search_space: ClassVar[SearchSpace] = {
        "lr": {"log_uniform": [1e-3, 1.0]},
        "momentum": {"uniform": [0.0, 0.99]},
    }

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
    ):
        check_lr(lr)
        check_nonnegative(momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )

    def update(self, data: Tensor, grad: Tensor, state: State, h: dict) -> None:
        g = self.gradient(data, grad, h["maximize"], h["weight_decay"])
        momentum = h["momentum"]
        if momentum != 0:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = g.clone(memory_format=torch.contiguous_format)
            elif h["dampening"] == 0:
                # b ← g + μ·b in one op: a tensor times a Python scalar (mul_) costs twice what
                # add with alpha does, which is most of a step on a tiny network.
                torch.add(g, b, alpha=momentum, out=b)
            else:
                b.mul_(momentum).add_(g, alpha=1 - h["dampening"])
            g = torch.add(g, b, alpha=momentum, out=self.scratch(g, 1)) if h["nesterov"] else b
        data.add_(g, alpha=-h["lr"])

    def fused_update(self, params: list[Parameter], grads: list[Tensor], h: dict) -> None:
        momentum = float(h["momentum"])
        # The kernel starts every buffer it is given (b ← g) or none: two calls when parameters
        # are at different points (one whose gradient was None until now).
        first: tuple[list[Tensor], list[Tensor], list[Tensor]] = ([], [], [])
        later: tuple[list[Tensor], list[Tensor], list[Tensor]] = ([], [], [])
        for param, grad in zip(params, grads):
            batch = later
            if momentum != 0:
                state = self.state_of(param)
                b = state.get("momentum_buffer")
                if b is None:
                    b = state["momentum_buffer"] = torch.empty_like(
                        param.data, memory_format=torch.contiguous_format
                    )
                    batch = first
                batch[2].append(b)
            batch[0].append(param.data)
            batch[1].append(grad)
        for is_first_step, (datas, batch_grads, buffers) in ((True, first), (False, later)):
            if datas:
                torch._fused_sgd_(
                    datas,
                    batch_grads,
                    buffers,
                    weight_decay=float(h["weight_decay"]),
                    momentum=momentum,
                    lr=float(h["lr"]),
                    dampening=float(h["dampening"]),
                    nesterov=bool(h["nesterov"]),
                    maximize=bool(h["maximize"]),
                    is_first_step=is_first_step,
                )
