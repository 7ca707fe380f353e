"""Base classes for the stateless components: activations, losses and initializers.

A plugin's components subclass these (a class that does not is rejected when registered).
Hyperparameters are the constructor's keyword arguments, and their annotations and defaults are
what `nnrun plugins` shows and what experiment files are validated against.
"""

from __future__ import annotations

import torch


class Activation:
    """An elementwise (or last-dimension) function with its derivative written by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        """d loss / d x, given the input `x`, the output `y = forward(x)` and d loss / d y."""
        raise NotImplementedError


class Loss:
    """A scalar loss and its derivative with respect to the prediction."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Initializer:
    """Fills a layer's weight (out, in) and bias (out,) in place, drawing from torch's global RNG."""

    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        raise NotImplementedError
