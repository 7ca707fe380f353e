"""A multilayer perceptron assembled from `Linear` layers and activation components."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nnrun.components import Activation, Initializer
from nnrun.layers import Linear
from nnrun.parameter import Parameter
from nnrun.threads import LARGE, on_one_thread


class MLP:
    """Linear layers of the given widths; `activation` after each hidden layer, `output_activation`
    (None for linear output) after the last one.

    `forward` keeps what `backward` needs; `backward(d loss / d output)` sets every parameter's grad
    and lets go of it, so that nothing of one step is alive during the next. For an activation with
    `backward_from_output` only each layer's output is kept, as torch's autograd does.

    A network whose every tensor is small (below `nnrun.threads.LARGE` elements) runs its
    forward and backward on one thread (see `nnrun.threads`).
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
        # the fast backward of each activation, looked up once (None: the generic backward)
        self._from_output = [getattr(a, "backward_from_output", None) for a in self.activations]
        self._cache: list[tuple[torch.Tensor | None, torch.Tensor] | None] = []
        self._widest = max(self.sizes)
        self._small_weights = all(layer.weight.data.numel() < LARGE for layer in self.layers)

    def _small(self, rows: int) -> bool:
        return self._small_weights and rows * self._widest < LARGE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._small(x.shape[0] if x.dim() else 1):
            return on_one_thread(self._forward, x)
        return self._forward(x)

    __call__ = forward

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        cache: list[tuple[torch.Tensor | None, torch.Tensor] | None] = []
        for layer, activation, from_output in zip(self.layers, self.activations, self._from_output):
            z = layer.forward(x)
            if activation is None:
                cache.append(None)
                x = z
            else:
                x = activation.forward(z)
                cache.append((None if from_output is not None else z, x))
        self._cache = cache
        return x

    def backward(self, grad_output: torch.Tensor) -> None:
        if self._small(grad_output.shape[0] if grad_output.dim() else 1):
            on_one_thread(self._backward, grad_output)
        else:
            self._backward(grad_output)

    def _backward(self, grad: torch.Tensor) -> None:
        cache, self._cache = self._cache, []
        if not cache:
            raise RuntimeError(
                "MLP.backward called before forward (each forward allows one backward)"
            )
        for index in range(len(self.layers) - 1, -1, -1):
            cached, cache[index] = cache[index], None  # each output is freed once used
            if cached is not None:
                z, y = cached
                from_output = self._from_output[index]
                if from_output is not None:
                    grad = from_output(y, grad)
                else:
                    activation = self.activations[index]
                    assert activation is not None and z is not None
                    grad = activation.backward(z, y, grad)
                del cached, z, y
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
