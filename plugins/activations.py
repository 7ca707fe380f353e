"""Built-in activations: each `forward` sits beside its hand-written derivative.

`backward(x, y, grad_y)` returns grad_y ⊙ f'(x) (for softmax, the Jacobian-vector product), reusing
`y = forward(x)` wherever f' is cheaper in y. Values and derivatives match torch.nn.functional and
its autograd, including at kinks (relu'(0) = 0, leaky_relu'(0) = negative_slope, elu'(0) = alpha)
and in saturation (finite for inputs of ±1000).

Sigmoid and tanh, which run millions of times on tiny tensors, write 1 as the 0-d tensor `_ONE`:
on a batch of one, `1 - y` with a Python number costs about 2.5 µs more than with a 0-d tensor,
which doubles the cost of the whole derivative. (`y - y * y` would be as fast but loses precision
in saturation: 1 − y is exact there, y − y² is not.)

Identity, sigmoid, tanh, relu and softmax also have `backward_from_output(y, grad_y)`, the
derivative from the output alone in one aten kernel (the one torch's autograd runs), so a model
keeps only each layer's output for the backward pass. Sigmoid's is bit-identical to its `backward`
(the same products in the same order); tanh's computes 1 − y² where `backward` computes
(1 − y)(1 + y), and softmax's sums in another order, so they agree to float rounding.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

import nnrun
from nnrun.components import Activation
from nnrun.hookspecs import Register

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715
_ONE = torch.tensor(1.0)  # a CPU scalar: combines with tensors of any device and float dtype


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"Invalid {name}: {value}; {name} must be finite")


class Identity(Activation):
    """y = x; returns its input itself (no copy), as `torch.nn.Identity` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return grad_y

    def backward_from_output(self, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return grad_y


class Sigmoid(Activation):
    """y = σ(x) = 1 / (1 + e⁻ˣ);  dy/dx = y (1 − y)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)  # stable for large |x|: never forms e⁻ˣ = inf

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return grad_y * (_ONE - y) * y  # aten's sigmoid_backward computes in this order

    def backward_from_output(self, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.sigmoid_backward(grad_y, y)


class ReLU(Activation):
    """y = max(x, 0);  dy/dx = 1 if x > 0 else 0 (0 at the kink, as torch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return grad_y * torch.sign(y)  # y ≥ 0, so sign(y) is 1 where x > 0 and 0 elsewhere

    def backward_from_output(self, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.threshold_backward(grad_y, y, 0)  # grad_y where y > 0, else 0


class Tanh(Activation):
    """y = tanh(x);  dy/dx = 1 − y² = (1 − y)(1 + y), which keeps its precision as |y| → 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return grad_y * (_ONE - y) * (_ONE + y)

    def backward_from_output(self, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.tanh_backward(grad_y, y)  # grad_y (1 − y²), as torch's autograd


class LeakyReLU(Activation):
    """y = x if x > 0 else negative_slope·x;  dy/dx = 1 if x > 0 else negative_slope."""

    def __init__(self, negative_slope: float = 0.01):
        _check_finite("negative_slope", negative_slope)
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, x * self.negative_slope)

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, grad_y, grad_y * self.negative_slope)


class ELU(Activation):
    """y = x if x > 0 else α(eˣ − 1);  dy/dx = 1 if x > 0 else αeˣ (α at 0, as torch).

    (αeˣ = y + α, but that sum cancels to nothing for x ≪ 0, where αeˣ keeps its precision.)
    """

    def __init__(self, alpha: float = 1.0):
        _check_finite("alpha", alpha)
        if alpha < 0:
            raise ValueError(f"Invalid alpha: {alpha}; alpha must be non-negative")
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # clamp keeps e^x of the branch not taken finite (and its autograd free of 0·inf)
        return torch.where(x > 0, x, self.alpha * torch.expm1(x.clamp(max=0)))

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, grad_y, grad_y * (self.alpha * torch.exp(x)))


class GELU(Activation):
    """y = x Φ(x), Φ the standard normal CDF;  dy/dx = Φ(x) + x φ(x).

    `approximate="tanh"` uses Φ(x) ≈ ½(1 + tanh(u)), u = √(2/π)(x + 0.044715 x³), so
    dy/dx = ½(1 + tanh u) + ½x (1 − tanh² u) √(2/π)(1 + 3·0.044715 x²).
    """

    def __init__(self, approximate: Literal["none", "tanh"] = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"Invalid approximate: {approximate!r}; use 'none' or 'tanh'")
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.approximate == "tanh":
            u = _SQRT_2_OVER_PI * (x + _GELU_KAPPA * x * x * x)
            return 0.5 * x * (1 + torch.tanh(u))
        return 0.5 * x * (1 + torch.erf(x * _SQRT_HALF))

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        if self.approximate == "tanh":
            t = torch.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * x * x * x))
            du_dx = _SQRT_2_OVER_PI * (1 + 3 * _GELU_KAPPA * x * x)
            return grad_y * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx)
        cdf = 0.5 * (1 + torch.erf(x * _SQRT_HALF))
        pdf = _INV_SQRT_2PI * torch.exp(-0.5 * x * x)
        return grad_y * (cdf + x * pdf)


class Softplus(Activation):
    """y = log(1 + e^(βx)) / β, and y = x where βx > threshold (as torch);
    dy/dx = σ(βx), and 1 where βx > threshold.
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        _check_finite("beta", beta)
        _check_finite("threshold", threshold)
        if beta <= 0:
            raise ValueError(f"Invalid beta: {beta}; beta must be positive")
        self.beta, self.threshold = beta, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.beta * x
        # log(1 + e^z) = logaddexp(z, 0), which never forms e^z: no overflow whatever the threshold
        softplus = torch.logaddexp(z, torch.zeros_like(z)) / self.beta
        return torch.where(z > self.threshold, x, softplus)

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        z = self.beta * x
        return torch.where(z > self.threshold, grad_y, grad_y * torch.sigmoid(z))


class SiLU(Activation):
    """y = x σ(x);  dy/dx = σ(x)(1 + x(1 − σ(x)))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(x)
        return grad_y * (s + y * (1 - s))  # σ + xσ(1 − σ), with xσ = y


class Softmax(Activation):
    """y = eˣ / Σ eˣ along the last dimension;
    Jacobian-vector product: grad_x = y ⊙ (grad_y − Σ grad_y ⊙ y).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch.softmax shifts by the row's max: e^(x − max) / Σ e^(x − max) never overflows, and
        # unlike e^(x − logsumexp(x)) it loses no precision when the logits are large (±1000).
        return torch.softmax(x, dim=-1)

    def backward(self, x: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return y * (grad_y - (grad_y * y).sum(dim=-1, keepdim=True))

    def backward_from_output(self, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._softmax_backward_data(grad_y, y, -1, y.dtype)


@nnrun.hookimpl
def register_activations(register: Register) -> None:
    register("identity", Identity)
    register("sigmoid", Sigmoid)
    register("relu", ReLU)
    register("tanh", Tanh)
    register("leaky_relu", LeakyReLU)
    register("elu", ELU)
    register("gelu", GELU)
    register("softplus", Softplus)
    register("silu", SiLU)
    register("softmax", Softmax)
