"""Base classes for the stateless components: activations, losses and initializers.

A plugin's components subclass these (a class that does not is rejected when registered).
Hyperparameters are the constructor's keyword arguments, and their annotations and defaults are
what `nnrun plugins` shows and what experiment files are validated against.
"""

from __future__ import annotations

import torch


class Activation:
    """An elementwise (or last-dimension) function with its derivative written by hand.

    Optional fast path: a class whose derivative is a function of the output alone may also define
    `backward_from_output(y, grad_y) -> grad_x`, equal to `backward(x, y, grad_y)`. The model then
    keeps only `y` between forward and backward (not `x`, a tensor the size of the layer's output
    less to hold) and calls it instead. `nnrun.testing.check_activation` holds it to `backward`.
    A subclass that overrides `forward` or `backward` but not `backward_from_output` does not
    inherit it (it would bypass the override).
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _drop_stale_fast_method(cls, "backward_from_output", None)

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

    def forward_backward(
        self, pred: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(forward, backward) of the same inputs, which is what a training step needs.

        A loss may override it to share what both compute (the difference, the softmax); it must
        return what the two methods return, which `nnrun.testing.check_loss` checks. A subclass
        that overrides `forward` or `backward` but not this gets this default back.
        """
        return self.forward(pred, target), self.backward(pred, target)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _drop_stale_fast_method(cls, "forward_backward", Loss.forward_backward)


def _drop_stale_fast_method(cls: type, name: str, default: object) -> None:
    """A subclass overriding `forward` or `backward` without `name` gets `default` instead of an
    inherited fast method computed from the methods it replaced."""
    own = vars(cls)
    if name not in own and ("forward" in own or "backward" in own):
        setattr(cls, name, default)


class Initializer:
    """Fills a layer's weight (out, in) and bias (out,) in place, drawing from torch's global RNG."""

    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        raise NotImplementedError
