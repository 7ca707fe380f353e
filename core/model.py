"""A multilayer perceptron assembled from `Linear` layers and activation components."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nnrun.components import Activation, Initializer
from nnrun.layers import Linear
from nnrun.parameter import Parameter


class MLP:
    """Linear layers of the given widths; `activation` after each hidden layer, `output_activation`
    (None for linear output) after the last one.

    `forward` keeps what `backward` needs; `backward(d loss / d output)` sets every parameter's grad.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: Activation,
        output_activation: Activation | None = None,
        initializer: Initializer | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ):
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least an input and an output width, got {sizes}")
        self.sizes = list(sizes)
        self.layers = [
            Linear(n_in, n_out, dtype=dtype, initialize=initializer is None)
            for n_in, n_out in zip(self.sizes, self.sizes[1:])
        ]
        for layer in self.layers:
            if initializer is not None:  # on the CPU, so a seed means the same weights anywhere
                initializer.initialize(layer.weight.data, layer.bias.data)
            layer.to(device)
        self.activations: list[Activation | None] = [activation] * (len(self.layers) - 1)
        self.activations.append(output_activation)
        self._cache: list[tuple[torch.Tensor, torch.Tensor] | None] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cache: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        for layer, activation in zip(self.layers, self.activations):
            z = layer.forward(x)
            if activation is None:
                cache.append(None)
                x = z
            else:
                x = activation.forward(z)
                cache.append((z, x))
        self._cache = cache
        return x

    __call__ = forward

    def backward(self, grad_output: torch.Tensor) -> None:
        grad = grad_output
        last = len(self.layers) - 1
        for index in range(last, -1, -1):
            cached, activation = self._cache[index], self.activations[index]
            if cached is not None and activation is not None:
                grad = activation.backward(cached[0], cached[1], grad)
            grad_in = self.layers[index].backward(grad, input_grad=index > 0)
            if grad_in is not None:
                grad = grad_in

    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def state_dict(self) -> list[torch.Tensor]:
        return [p.data.clone() for p in self.parameters()]

    def load_state_dict(self, tensors: Sequence[torch.Tensor]) -> None:
        params = self.parameters()
        if len(tensors) != len(params):
            raise ValueError(f"expected {len(params)} tensors, got {len(tensors)}")
        for param, tensor in zip(params, tensors):
            param.data.copy_(tensor)

    def __repr__(self) -> str:
        return f"MLP({self.sizes})"
