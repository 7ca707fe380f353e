"""`check_scheduler` passes the built-ins and catches a negative rate and lost state."""

from __future__ import annotations

import pytest

import nnrun
from nnrun.testing import check_scheduler


class Overshoots(nnrun.Scheduler):
    """Linear decay that goes below zero after ten epochs."""

    def lr_at(self, epoch):
        return self.base_lr * (1 - epoch / 10)


class CountsOnTheSide(nnrun.Scheduler):
    """Keeps its epoch count in a class-level dict that state_dict() cannot see."""

    counts: dict = {}  # noqa: RUF012

    def step(self, metric=None):
        count = self.counts[id(self)] = self.counts.get(id(self), 0) + 1
        self.optimizer.lr = self.base_lr * 0.9**count


SETTINGS = {"step": {"step_size": 7}, "exponential": {"gamma": 0.8}, "cosine": {"T_max": 25}}


@pytest.mark.parametrize("name", sorted(set(nnrun.load_registry().schedulers) - {"linear_warmup"}))
def test_passes_every_builtin(name):
    check_scheduler(nnrun.load_registry().schedulers[name], **SETTINGS.get(name, {}))


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (Overshoots, r"Overshoots: the rate at epoch 11 is -0.01000"),
        (CountsOnTheSide, r"after load_state_dict\(\) into a fresh scheduler at epoch 30"),
    ],
)
def test_catches_a_broken_scheduler(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_scheduler(cls)
