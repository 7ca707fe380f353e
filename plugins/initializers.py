"""Built-in initializers: `initialize(weight, bias)` fills a Linear layer's weight (out, in) and
bias (out,) in place from torch's global RNG, so `torch.manual_seed` reproduces them.

Each draws exactly the numbers `torch.nn.init` draws for the same seed (the same bounds, computed
in the same order, and the same `uniform_`/`normal_` calls). With fan_in = in and fan_out = out:

| name            | weight                                          | bias                |
|-----------------|-------------------------------------------------|---------------------|
| torch_default   | U(±gain·√(3/fan_in)), gain for leaky_relu a=√5  | U(±1/√fan_in)       |
| xavier_uniform  | U(±gain·√(6/(fan_in + fan_out)))                | 0                   |
| xavier_normal   | N(0, (gain·√(2/(fan_in + fan_out)))²)           | 0                   |
| kaiming_uniform | U(±gain·√(3/fan)), fan = fan_in or fan_out      | 0                   |
| kaiming_normal  | N(0, (gain/√fan)²)                              | 0                   |
| zeros           | 0                                               | 0                   |
| uniform         | U[low, high)                                    | U[low, high)        |

Zero biases are the usual companion of Xavier and Kaiming weights: the weights alone set the
scale of the activations. `uniform` fills both, as the exercise nnrun grew out of did.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch

import nnrun
from nnrun.components import Initializer
from nnrun.hookspecs import Register

Mode = Literal["fan_in", "fan_out"]
Nonlinearity = Literal["linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    if weight.dim() != 2:
        raise ValueError(f"expected a (out, in) weight, got shape {tuple(weight.shape)}")
    fan_out, fan_in = weight.shape
    return fan_in, fan_out


def _check_gain(gain: float) -> None:
    if not math.isfinite(gain) or gain <= 0:
        raise ValueError(f"Invalid gain: {gain}; gain must be positive")


class TorchDefault(Initializer):
    """What `torch.nn.Linear.reset_parameters` does: kaiming_uniform(a=√5) on the weight, which is
    U(±1/√fan_in), and U(±1/√fan_in) on the bias. Same numbers as torch.nn.Linear for a seed."""

    @torch.no_grad()  # so tensors that require grad (torch.nn.Linear's) can be filled too
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        fan_in, _ = _fans(weight)
        gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
        std = gain / math.sqrt(fan_in)
        weight.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        bias.uniform_(-bound, bound)


class XavierUniform(Initializer):
    """weight ~ U(−a, a), a = gain·√(6/(fan_in + fan_out)) (Glorot & Bengio, 2010); bias = 0."""

    def __init__(self, gain: float = 1.0):
        _check_gain(gain)
        self.gain = gain

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        fan_in, fan_out = _fans(weight)
        std = self.gain * math.sqrt(2.0 / float(fan_in + fan_out))
        a = math.sqrt(3.0) * std
        weight.uniform_(-a, a)
        bias.zero_()


class XavierNormal(Initializer):
    """weight ~ N(0, std²), std = gain·√(2/(fan_in + fan_out)) (Glorot & Bengio, 2010); bias = 0."""

    def __init__(self, gain: float = 1.0):
        _check_gain(gain)
        self.gain = gain

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        fan_in, fan_out = _fans(weight)
        weight.normal_(0.0, self.gain * math.sqrt(2.0 / float(fan_in + fan_out)))
        bias.zero_()


class _Kaiming(Initializer):
    """Shared hyperparameters of He et al. (2015): std = gain/√fan, with torch's gain for
    `nonlinearity` (√(2/(1 + a²)) for leaky_relu of negative slope a) and fan = fan_in or fan_out.
    """

    def __init__(
        self, a: float = 0.0, mode: Mode = "fan_in", nonlinearity: Nonlinearity = "leaky_relu"
    ):
        if not math.isfinite(a):
            raise ValueError(f"Invalid a: {a}; a must be finite")
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"Invalid mode: {mode!r}; use 'fan_in' or 'fan_out'")
        if nonlinearity not in get_args(Nonlinearity):
            raise ValueError(
                f"Invalid nonlinearity: {nonlinearity!r}; use one of "
                + ", ".join(map(repr, get_args(Nonlinearity)))
            )
        self.a, self.mode, self.nonlinearity = a, mode, nonlinearity

    def std(self, weight: torch.Tensor) -> float:
        fan_in, fan_out = _fans(weight)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return torch.nn.init.calculate_gain(self.nonlinearity, self.a) / math.sqrt(fan)


class KaimingUniform(_Kaiming):
    """weight ~ U(±√3·std), std = gain/√fan (He et al., 2015); bias = 0."""

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        bound = math.sqrt(3.0) * self.std(weight)
        weight.uniform_(-bound, bound)
        bias.zero_()


class KaimingNormal(_Kaiming):
    """weight ~ N(0, std²), std = gain/√fan (He et al., 2015); bias = 0."""

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        weight.normal_(0, self.std(weight))
        bias.zero_()


class Zeros(Initializer):
    """weight = 0 and bias = 0. Every hidden unit then gets the same gradient and stays equal to
    the others: useful for linear models and tests, not for training a hidden layer."""

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        weight.zero_()
        bias.zero_()


class Uniform(Initializer):
    """weight and bias ~ U[low, high), the weight drawn first."""

    def __init__(self, low: float = 0.0, high: float = 0.1):
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"Invalid bounds: low={low}, high={high}; need finite low < high")
        self.low, self.high = low, high

    @torch.no_grad()
    def initialize(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        weight.uniform_(self.low, self.high)
        bias.uniform_(self.low, self.high)


@nnrun.hookimpl
def register_initializers(register: Register) -> None:
    register("torch_default", TorchDefault)
    register("xavier_uniform", XavierUniform)
    register("xavier_normal", XavierNormal)
    register("kaiming_uniform", KaimingUniform)
    register("kaiming_normal", KaimingNormal)
    register("zeros", Zeros)
    register("uniform", Uniform)
