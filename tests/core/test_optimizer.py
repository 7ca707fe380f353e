"""The optimizer base class: its state dict restores exactly the optimizer it came from, and is
refused by one with a different number of parameters."""

from __future__ import annotations

import pytest
import torch

import nnrun


class Momentum(nnrun.Optimizer):
    """v ← μ·v + g; p ← p − lr·v: one state tensor per parameter."""

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9):
        super().__init__(params, lr=lr, momentum=momentum)

    def step(self) -> None:
        for p in self.params:
            state = self.state.setdefault(p, {"v": torch.zeros_like(p.data)})
            state["v"] = self.hyperparameters["momentum"] * state["v"] + p.grad
            p.data = p.data - self.hyperparameters["lr"] * state["v"]


def params(n: int) -> list[nnrun.Parameter]:
    return [nnrun.Parameter(torch.full((2,), float(i + 1))) for i in range(n)]


def stepped(n: int) -> Momentum:
    optimizer = Momentum(params(n))
    for p in optimizer.params:
        p.grad = torch.ones_like(p.data)
    optimizer.step()
    return optimizer


def test_a_state_dict_restores_the_same_state_on_the_same_parameters():
    first = stepped(3)
    second = Momentum(params(3))
    second.load_state_dict(first.state_dict())
    assert all(
        torch.equal(second.state[b]["v"], first.state[a]["v"])
        for a, b in zip(first.params, second.params)
    )


@pytest.mark.parametrize("n", [2, 4])
def test_a_state_dict_for_another_number_of_parameters_is_refused(n):
    """Fewer saved parameters would pass a mere index check, and load their state onto the
    wrong parameters of a differently shaped model."""
    with pytest.raises(ValueError, match=f"state_dict is for 3 parameters, this optimizer has {n}"):
        Momentum(params(n)).load_state_dict(stepped(3).state_dict())


def test_a_state_dict_with_state_beyond_the_parameters_is_refused():
    saved = stepped(3).state_dict()
    del saved["params"]  # as saved before the count was recorded: the index check still holds
    with pytest.raises(ValueError, match="parameters this optimizer does not have"):
        Momentum(params(2)).load_state_dict(saved)
