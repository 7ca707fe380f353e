"""`check_initializer` passes the built-ins and catches each kind of broken initializer."""

from __future__ import annotations

import pytest
import torch

import nnrun
from nnrun.testing import check_initializer


class FillsOnlyTheWeight(nnrun.Initializer):
    def initialize(self, weight, bias):
        weight.normal_()


class Reshapes(nnrun.Initializer):
    def initialize(self, weight, bias):
        weight.resize_(weight.numel()).normal_()
        bias.zero_()


class OwnGenerator(nnrun.Initializer):
    """Draws from an unseeded generator of its own: torch.manual_seed cannot reproduce it."""

    def __init__(self):
        self.generator = torch.Generator()
        self.generator.seed()

    def initialize(self, weight, bias):
        weight.copy_(torch.randn(weight.shape, generator=self.generator))
        bias.zero_()


class Infinite(nnrun.Initializer):
    def initialize(self, weight, bias):
        weight.fill_(float("inf"))
        bias.zero_()


@pytest.mark.parametrize("name", sorted(nnrun.load_registry().initializers))
def test_passes_every_builtin(name):
    check_initializer(nnrun.load_registry().initializers[name])


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (FillsOnlyTheWeight, r"left 1 of 1 bias elements unwritten or not finite \[float32"),
        (Infinite, "weight elements unwritten or not finite"),
        (Reshapes, "must fill the weight in place"),
        (OwnGenerator, r"two draws after torch.manual_seed\(1234\) differ in the weight"),
    ],
)
def test_catches_a_broken_initializer(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_initializer(cls)


def test_leaves_the_global_rng_as_it_was():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check_initializer(nnrun.load_registry().initializers["xavier_uniform"])
    assert torch.equal(torch.rand(3), expected)
