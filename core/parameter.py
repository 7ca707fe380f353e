"""A trainable tensor and its gradient, kept apart because nnrun never asks autograd for either."""

from __future__ import annotations

import torch


class Parameter:
    """`.data` is the value; `.grad` is what the last backward pass set (None before any)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: torch.Tensor, grad: torch.Tensor | None = None):
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"Parameter data must be a torch.Tensor, got {type(data).__name__}")
        self.data = data
        self.grad = grad

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"
