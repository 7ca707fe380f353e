"""An MLP's gradients, built from hand-written pieces, equal autograd's on the same network."""

from __future__ import annotations

import pytest
import torch

import nnrun


@pytest.mark.parametrize(
    "activation,torch_activation",
    [("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu)],
)
def test_mlp_gradients_equal_autograd_with_mse(activation, torch_activation):
    registry = nnrun.load_registry()
    torch.manual_seed(0)
    model = nnrun.MLP(
        [3, 16, 8, 2], activation=registry.activations[activation](), dtype=torch.float64
    )
    loss = registry.losses["mse"]()
    x = torch.randn(32, 3, dtype=torch.float64)
    target = torch.randn(32, 2, dtype=torch.float64)

    params = [p.data.clone().requires_grad_() for p in model.parameters()]
    h = x
    for index in range(0, len(params), 2):
        h = torch.nn.functional.linear(h, params[index], params[index + 1])
        if index < len(params) - 2:
            h = torch_activation(h)
    reference = torch.nn.functional.mse_loss(h, target)
    reference.backward()

    pred = model.forward(x)
    value = loss.forward(pred, target)
    model.backward(loss.backward(pred, target))
    torch.testing.assert_close(value, reference.detach(), rtol=1e-12, atol=1e-14)
    for param, ref in zip(model.parameters(), params):
        torch.testing.assert_close(param.grad, ref.grad, rtol=1e-10, atol=1e-13)


def test_mlp_state_dict_round_trip():
    registry = nnrun.load_registry()
    model = nnrun.MLP([1, 4, 1], activation=registry.activations["sigmoid"]())
    saved = model.state_dict()
    for p in model.parameters():
        p.data.zero_()
    model.load_state_dict(saved)
    assert all(torch.equal(p.data, s) for p, s in zip(model.parameters(), saved))


def test_mlp_needs_two_widths():
    with pytest.raises(ValueError, match="at least an input and an output"):
        nnrun.MLP([3], activation=None)
