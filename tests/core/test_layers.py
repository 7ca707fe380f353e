"""Linear's hand-written backward equals autograd's, and it starts like torch.nn.Linear."""

from __future__ import annotations

import pytest
import torch

import nnrun


@pytest.mark.parametrize("batch,n_in,n_out", [(1, 1, 1), (7, 3, 5), (256, 100, 1)])
def test_linear_gradients_equal_autograd_in_float64(batch, n_in, n_out):
    torch.manual_seed(0)
    layer = nnrun.Linear(n_in, n_out, dtype=torch.float64)
    x = torch.randn(batch, n_in, dtype=torch.float64)
    grad_out = torch.randn(batch, n_out, dtype=torch.float64)

    weight = layer.weight.data.clone().requires_grad_()
    bias = layer.bias.data.clone().requires_grad_()
    x_ref = x.clone().requires_grad_()
    out_ref = torch.nn.functional.linear(x_ref, weight, bias)
    out_ref.backward(grad_out)

    out = layer.forward(x)
    grad_in = layer.backward(grad_out)
    # float64, a handful of products per entry: agreement to a few ulps
    torch.testing.assert_close(out, out_ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.weight.grad, weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.bias.grad, bias.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_in, x_ref.grad, rtol=1e-12, atol=1e-12)


def test_linear_starts_like_torch_nn_linear_for_the_same_seed():
    torch.manual_seed(3)
    ours = nnrun.Linear(4, 6)
    torch.manual_seed(3)
    theirs = torch.nn.Linear(4, 6)
    assert torch.equal(ours.weight.data, theirs.weight.data)
    assert torch.equal(ours.bias.data, theirs.bias.data)


def test_linear_exposes_its_parameters_and_rejects_empty_sizes():
    layer = nnrun.Linear(2, 3)
    assert [p.shape for p in layer.parameters()] == [torch.Size([3, 2]), torch.Size([3])]
    with pytest.raises(ValueError, match="positive sizes"):
        nnrun.Linear(0, 3)


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        nnrun.Linear(2, 2).backward(torch.ones(1, 2))
