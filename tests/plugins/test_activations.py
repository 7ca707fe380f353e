"""The built-in activations against torch.nn.functional (values) and its autograd (derivatives).

Tolerances, float64: forward within rtol 1e-12 of torch (the same formulas up to the order of
operations: a few ulps), atol 1e-300 so that tiny values (σ(−100) ≈ 4e-44) are compared relatively
too. Backward within rtol 1e-10, atol 1e-15: a derivative is a sum of O(1) terms, and where they
cancel (near gelu's minimum) only an absolute error of a few ulps of 1 is meaningful; saturated
derivatives, which have no such cancellation, are compared relatively in their own test.
float32: torch.testing's defaults (rtol 1.3e-6, atol 1e-5).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import nnrun
from nnrun.hyperparameters import hyperparameters
from nnrun.testing import check_activation

# name, hyperparameters, the torch reference
CASES = [
    ("identity", {}, lambda x: x),
    ("sigmoid", {}, torch.sigmoid),
    ("relu", {}, F.relu),
    ("tanh", {}, torch.tanh),
    ("leaky_relu", {}, F.leaky_relu),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
    ("elu", {}, F.elu),
    ("elu", {"alpha": 0.5}, lambda x: F.elu(x, alpha=0.5)),
    ("gelu", {}, F.gelu),
    ("gelu", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
    ("softplus", {}, F.softplus),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, lambda x: F.softplus(x, beta=2.0, threshold=5.0)),
    ("silu", {}, F.silu),
    ("softmax", {}, lambda x: F.softmax(x, dim=-1)),
]
IDS = [f"{name}{params or ''}" for name, params, _ in CASES]

# Kinks (0), softplus thresholds (20 and 2.5 = 5 / β, and just above), saturation (±100, ±1000).
SPECIAL = [-1000.0, -100.0, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 2.5, 2.5000001, 20.0, 20.000001]
SPECIAL += [100.0, 1000.0]

FLOAT64 = {"rtol": 1e-12, "atol": 1e-300}
FLOAT64_GRAD = {"rtol": 1e-10, "atol": 1e-15}


@pytest.fixture(scope="module")
def activations():
    with warnings.catch_warnings():  # another plugin's load failure is not this file's concern
        warnings.simplefilter("ignore", nnrun.PluginLoadWarning)
        return nnrun.load_registry().activations


def _inputs(dtype=torch.float64) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [
        torch.tensor(SPECIAL, dtype=dtype),
        torch.tensor(SPECIAL, dtype=dtype).view(2, 7),  # softmax rows mixing ±1000 and 0
        (3 * torch.randn(4, 3, 5, generator=generator)).to(dtype),
    ]


def _torch_vjp(reference, x: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
    leaf = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference(leaf), leaf, grad_y)
    return grad


def test_every_builtin_is_registered_through_the_entry_point():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nnrun.PluginLoadWarning)
        registry = nnrun.load_registry()
    assert set(registry.activations) == {name for name, _, _ in CASES}
    sigmoid = registry.component("activations", "sigmoid")
    assert sigmoid.provider.distribution == "nnrun"
    assert issubclass(registry.activations["sigmoid"], nnrun.Activation)


@pytest.mark.parametrize(("name", "params", "reference"), CASES, ids=IDS)
def test_forward_matches_torch_in_float64(activations, name, params, reference):
    activation = activations[name](**params)
    for x in _inputs():
        torch.testing.assert_close(activation.forward(x), reference(x), **FLOAT64)


@pytest.mark.parametrize(("name", "params", "reference"), CASES, ids=IDS)
def test_backward_matches_torch_autograd_in_float64(activations, name, params, reference):
    activation = activations[name](**params)
    generator = torch.Generator().manual_seed(1)
    for x in _inputs():
        grad_y = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        grad_x = activation.backward(x, activation.forward(x), grad_y)
        torch.testing.assert_close(grad_x, _torch_vjp(reference, x, grad_y), **FLOAT64_GRAD)


@pytest.mark.parametrize(("name", "params", "reference"), CASES, ids=IDS)
def test_float32_matches_torch_and_stays_finite_in_saturation(activations, name, params, reference):
    activation = activations[name](**params)
    for x in _inputs(torch.float32):
        y = activation.forward(x)
        grad_y = torch.ones_like(x)
        grad_x = activation.backward(x, y, grad_y)
        assert y.dtype == grad_x.dtype == torch.float32
        assert torch.isfinite(y).all() and torch.isfinite(grad_x).all()
        torch.testing.assert_close(y, reference(x))
        torch.testing.assert_close(grad_x, _torch_vjp(reference, x, grad_y))


@pytest.mark.parametrize(("name", "params", "reference"), CASES, ids=IDS)
def test_saturated_derivatives_keep_their_relative_precision(activations, name, params, reference):
    # σ'(−30) ≈ 9e-14 must not come out as a difference of two numbers near 1.
    x = torch.tensor([-100.0, -30.0, -10.0, 10.0, 30.0, 100.0], dtype=torch.float64)
    grad_y = torch.ones_like(x)
    grad_x = activations[name](**params).backward(x, activations[name](**params).forward(x), grad_y)
    torch.testing.assert_close(grad_x, _torch_vjp(reference, x, grad_y), rtol=1e-10, atol=1e-300)


# The derivative at a kink or a threshold, as torch's autograd defines it.
KINKS = [
    ("relu", {}, 0.0, 0.0),
    ("leaky_relu", {}, 0.0, 0.01),
    ("leaky_relu", {"negative_slope": 0.2}, 0.0, 0.2),
    ("elu", {"alpha": 0.5}, 0.0, 0.5),
    ("softplus", {}, 20.0, torch.sigmoid(torch.tensor(20.0, dtype=torch.float64)).item()),
    ("softplus", {}, 20.000001, 1.0),
]


@pytest.mark.parametrize(("name", "params", "x", "expected"), KINKS)
def test_derivative_at_kinks_is_torchs(activations, name, params, x, expected):
    activation = activations[name](**params)
    reference = dict((n, r) for n, p, r in CASES if p == params and n == name)[name]
    x = torch.tensor([x], dtype=torch.float64)
    grad_x = activation.backward(x, activation.forward(x), torch.ones_like(x))
    assert grad_x.item() == pytest.approx(expected, rel=1e-12, abs=0)
    assert _torch_vjp(reference, x, torch.ones_like(x)).item() == pytest.approx(expected, rel=1e-12)


def test_softmax_rows_sum_to_one_even_for_logits_of_a_thousand(activations):
    x = torch.tensor([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0]])
    y = activations["softmax"]().forward(x)
    torch.testing.assert_close(y.sum(-1), torch.ones(2))
    torch.testing.assert_close(y, torch.tensor([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))


def test_identity_passes_tensors_through_without_copying(activations):
    identity = activations["identity"]()
    x, grad_y = torch.randn(3), torch.randn(3)
    assert identity.forward(x) is x
    assert identity.backward(x, x, grad_y) is grad_y


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("leaky_relu", {"negative_slope": float("nan")}, "Invalid negative_slope: nan"),
        ("elu", {"alpha": -1.0}, "Invalid alpha: -1.0; alpha must be non-negative"),
        ("elu", {"alpha": float("inf")}, "Invalid alpha: inf"),
        ("gelu", {"approximate": "erf"}, "Invalid approximate: 'erf'"),
        ("softplus", {"beta": 0.0}, "Invalid beta: 0.0; beta must be positive"),
        ("softplus", {"threshold": float("nan")}, "Invalid threshold: nan"),
    ],
)
def test_constructor_rejects_invalid_hyperparameters(activations, name, params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        activations[name](**params)


def test_hyperparameters_are_the_constructors_keywords_with_defaults(activations):
    listed = {
        name: {h.name: h.default for h in hyperparameters(activations[name], "activations")}
        for name in activations
    }
    assert listed == {
        "identity": {},
        "sigmoid": {},
        "relu": {},
        "tanh": {},
        "leaky_relu": {"negative_slope": 0.01},
        "elu": {"alpha": 1.0},
        "gelu": {"approximate": "none"},
        "softplus": {"beta": 1.0, "threshold": 20.0},
        "silu": {},
        "softmax": {},
    }


@pytest.mark.parametrize(("name", "params", "reference"), CASES, ids=IDS)
def test_conformance_kit_passes(activations, name, params, reference):
    check_activation(activations[name], extremes=(-1000.0, -100.0, 100.0, 1000.0), **params)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("name", "params", "reference"), CASES, ids=IDS)
def test_conformance_kit_passes_on_cuda(activations, name, params, reference):
    check_activation(activations[name], device="cuda", extremes=(-1000.0, 1000.0), **params)
