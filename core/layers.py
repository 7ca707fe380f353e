"""Layers with forward and backward written by hand, batch-first like `torch.nn`."""

from __future__ import annotations

import math

import torch

from nnrun.parameter import Parameter


class Linear:
    """y = x @ weightᵀ + bias, with x of shape (batch, in) and weight of shape (out, in).

    Weights start as `torch.nn.Linear` starts them (kaiming-uniform with a = √5, bias uniform in
    ±1/√in), so the same seed gives the same network in nnrun and in torch. They are drawn on the
    CPU and then moved, so the same seed also gives the same network on every device.

    `forward` keeps its input for `backward`, which lets go of it: nothing of a step outlives it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        initialize: bool = True,
    ):
        """`initialize=False` leaves the tensors uninitialised for an initializer plugin to fill."""
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got ({in_features}, {out_features})")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(torch.empty(out_features, in_features, dtype=dtype))
        self.bias = Parameter(torch.empty(out_features, dtype=dtype))
        self._input: torch.Tensor | None = None
        # weightᵀ, a view made once per weight tensor: optimizers update the weight in place, so
        # the view stays current, and a step saves the call (a quarter of a tiny step's aten calls)
        self._weight: torch.Tensor | None = None
        self._weight_t: torch.Tensor | None = None
        if initialize:
            bound = 1.0 / math.sqrt(in_features)
            torch.nn.init.kaiming_uniform_(self.weight.data, a=math.sqrt(5))
            torch.nn.init.uniform_(self.bias.data, -bound, bound)
        self.to(device)

    def to(self, device: torch.device | str) -> Linear:
        """Move the parameters to `device` (in place); returns the layer."""
        for param in self.parameters():
            param.data = param.data.to(device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._input = x
        weight, weight_t = self.weight.data, self._weight_t
        if weight is not self._weight or weight_t is None:  # a new tensor: moved or replaced
            self._weight, self._weight_t = weight, weight_t = weight, weight.t()
        return torch.addmm(self.bias.data, x, weight_t)

    def backward(self, grad_out: torch.Tensor, input_grad: bool = True) -> torch.Tensor | None:
        """Set weight.grad = grad_outᵀ x and bias.grad = Σ_batch grad_out; return grad_out W.

        `input_grad=False` skips the last product for a first layer, whose input needs no gradient.
        """
        x, self._input = self._input, None
        if x is None:
            raise RuntimeError(
                "Linear.backward called before forward (each forward allows one backward)"
            )
        self.weight.grad = grad_out.t().mm(x)
        self.bias.grad = grad_out.sum(0)
        return grad_out.mm(self.weight.data) if input_grad else None

    def parameters(self) -> list[Parameter]:
        return [self.weight, self.bias]

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"
