"""The built-in initializers draw exactly what torch.nn.init (and torch.nn.Linear) draw for the same
seed: the comparisons are bitwise, since the same bounds feed the same RNG calls."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import nnrun
from nnrun.hyperparameters import hyperparameters

SHAPES = [(1, 1), (3, 5), (64, 7)]  # (out, in)


@pytest.fixture(scope="module")
def initializers():
    with warnings.catch_warnings():  # another plugin's load failure is not this file's concern
        warnings.simplefilter("ignore", nnrun.PluginLoadWarning)
        return nnrun.load_registry().initializers


def _filled(initializer, shape, seed=0, dtype=torch.float32):
    weight, bias = (
        torch.full(shape, math.nan, dtype=dtype),
        torch.full(shape[:1], math.nan, dtype=dtype),
    )
    torch.manual_seed(seed)
    initializer.initialize(weight, bias)
    return weight, bias


def _torch_init(fill, shape, seed=0, dtype=torch.float32):
    weight = torch.empty(shape, dtype=dtype)
    torch.manual_seed(seed)
    fill(weight)
    return weight


def test_every_builtin_is_registered_through_the_entry_point(initializers):
    assert set(initializers) == {
        "torch_default",
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "zeros",
        "uniform",
    }
    assert all(issubclass(initializers[name], nnrun.Initializer) for name in initializers)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_default_draws_what_torch_nn_linear_draws(initializers, shape, dtype):
    weight, bias = _filled(initializers["torch_default"](), shape, seed=3, dtype=dtype)
    torch.manual_seed(3)
    linear = torch.nn.Linear(shape[1], shape[0], dtype=dtype)
    assert torch.equal(weight, linear.weight.detach())
    assert torch.equal(bias, linear.bias.detach())


# name, hyperparameters, the torch.nn.init call filling the weight the same way
WEIGHT_CASES = [
    ("xavier_uniform", {}, torch.nn.init.xavier_uniform_),
    ("xavier_uniform", {"gain": 2.5}, lambda w: torch.nn.init.xavier_uniform_(w, gain=2.5)),
    ("xavier_normal", {}, torch.nn.init.xavier_normal_),
    ("xavier_normal", {"gain": 0.5}, lambda w: torch.nn.init.xavier_normal_(w, gain=0.5)),
    ("kaiming_uniform", {}, torch.nn.init.kaiming_uniform_),
    (
        "kaiming_uniform",
        {"a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"},
        lambda w: torch.nn.init.kaiming_uniform_(
            w, a=0.2, mode="fan_out", nonlinearity="leaky_relu"
        ),
    ),
    (
        "kaiming_uniform",
        {"nonlinearity": "relu"},
        lambda w: torch.nn.init.kaiming_uniform_(w, nonlinearity="relu"),
    ),
    ("kaiming_normal", {}, torch.nn.init.kaiming_normal_),
    (
        "kaiming_normal",
        {"mode": "fan_out", "nonlinearity": "tanh"},
        lambda w: torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="tanh"),
    ),
    ("zeros", {}, torch.nn.init.zeros_),
    ("uniform", {}, lambda w: torch.nn.init.uniform_(w, 0.0, 0.1)),
    ("uniform", {"low": -2.0, "high": 3.0}, lambda w: torch.nn.init.uniform_(w, -2.0, 3.0)),
]
IDS = [f"{name}{params or ''}" for name, params, _ in WEIGHT_CASES]


@pytest.mark.parametrize(("name", "params", "fill"), WEIGHT_CASES, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_weight_matches_torch_nn_init_for_the_same_seed(initializers, name, params, fill, shape):
    weight, _ = _filled(initializers[name](**params), shape, seed=7)
    assert torch.equal(weight, _torch_init(fill, shape, seed=7))


@pytest.mark.parametrize(("name", "params", "fill"), WEIGHT_CASES, ids=IDS)
def test_bias_is_zero_except_for_uniform_and_torch_default(initializers, name, params, fill):
    weight, bias = _filled(initializers[name](**params), (4, 6), seed=1)
    if name == "uniform":  # the weight's draws come first, then the bias's, from the same bounds
        torch.manual_seed(1)
        expected = torch.empty(4 * 6 + 4).uniform_(params.get("low", 0.0), params.get("high", 0.1))
        assert torch.equal(torch.cat([weight.view(-1), bias]), expected)
    else:
        assert torch.equal(bias, torch.zeros(4))


def test_uniform_stays_within_its_bounds(initializers):
    weight, bias = _filled(initializers["uniform"](), (200, 50))
    values = torch.cat([weight.view(-1), bias])
    assert values.min() >= 0.0 and values.max() < 0.1


@pytest.mark.parametrize("name", ["torch_default", "xavier_normal", "kaiming_uniform", "uniform"])
def test_the_same_seed_gives_the_same_numbers_and_another_seed_does_not(initializers, name):
    first, again, other = (_filled(initializers[name](), (5, 3), seed=s) for s in (11, 11, 12))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("name", ["torch_default", "xavier_uniform", "kaiming_normal", "zeros"])
def test_fills_tensors_that_require_grad_in_place(initializers, name):
    linear = torch.nn.Linear(3, 2)
    weight_storage = linear.weight.data_ptr()
    initializers[name]().initialize(linear.weight, linear.bias)
    assert linear.weight.data_ptr() == weight_storage and linear.weight.requires_grad


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(
    "name", ["torch_default", "xavier_uniform", "kaiming_normal", "zeros", "uniform"]
)
def test_fills_cuda_tensors_on_their_device(initializers, name):
    weight, bias = torch.empty(4, 3, device="cuda"), torch.empty(4, device="cuda")
    initializers[name]().initialize(weight, bias)
    assert weight.device.type == bias.device.type == "cuda"
    assert torch.isfinite(weight).all() and torch.isfinite(bias).all()


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("xavier_uniform", {"gain": 0.0}, "Invalid gain: 0.0; gain must be positive"),
        ("xavier_normal", {"gain": float("nan")}, "Invalid gain: nan"),
        ("kaiming_uniform", {"a": float("inf")}, "Invalid a: inf"),
        ("kaiming_normal", {"mode": "fan_avg"}, "Invalid mode: 'fan_avg'"),
        ("kaiming_uniform", {"nonlinearity": "gelu"}, "Invalid nonlinearity: 'gelu'"),
        ("uniform", {"low": 1.0, "high": 0.0}, "Invalid bounds: low=1.0, high=0.0"),
        ("uniform", {"low": 0.0, "high": float("inf")}, "Invalid bounds"),
    ],
)
def test_constructor_rejects_invalid_hyperparameters(initializers, name, params, message):
    with pytest.raises(ValueError, match=message):
        initializers[name](**params)


def test_a_weight_that_is_not_a_matrix_is_an_error(initializers):
    with pytest.raises(ValueError, match=r"expected a \(out, in\) weight"):
        initializers["xavier_uniform"]().initialize(torch.empty(3, 4, 5), torch.empty(3))


def test_hyperparameters_are_the_constructors_keywords_with_defaults(initializers):
    listed = {
        name: {h.name: h.default for h in hyperparameters(initializers[name], "initializers")}
        for name in initializers
    }
    kaiming = {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"}
    assert listed == {
        "torch_default": {},
        "xavier_uniform": {"gain": 1.0},
        "xavier_normal": {"gain": 1.0},
        "kaiming_uniform": kaiming,
        "kaiming_normal": kaiming,
        "zeros": {},
        "uniform": {"low": 0.0, "high": 0.1},
    }
