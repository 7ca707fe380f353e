"""Lookahead against Zhang et al.'s Algorithm 1, transcribed below around torch.optim's own
optimizers, with nnrun's built-in and this package's optimizers inside. (The authors' code,
michaelrzhang/lookahead, is not on PyPI.)"""

from __future__ import annotations

import pytest
import torch
from nnrun_extra_optim import Lamb, Lookahead
from test_lamb import PaperLamb

import nnrun
from nnrun.testing import check_optimizer


class Inner:
    """A factory for the inner optimizer, as nnrun hands one to Lookahead, that also says which
    torch.optim-style class the reference wraps with the same settings."""

    def __init__(self, ours, theirs, **settings):
        self.ours, self.theirs, self.settings = ours, theirs, settings

    def __call__(self, params):
        return self.ours(params, **self.settings)

    def __repr__(self):
        return f"{self.ours.__name__}({self.settings})"


class PaperLookahead(torch.optim.Optimizer):
    """Algorithm 1: φ ← θ₀; every step θ ← A(θ); every k-th: φ ← φ + α(θ − φ), θ ← φ."""

    def __init__(self, params, inner, k=5, alpha=0.5):
        params = list(params)
        super().__init__(params, dict(lr=inner.settings.get("lr")))
        self.fast = inner.theirs(params, **inner.settings)
        self.k, self.alpha, self.count = k, alpha, 0
        self.slow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def step(self):
        self.fast.step()
        self.count += 1
        if self.count == self.k:
            self.count = 0
            for p, phi in zip(self.param_groups[0]["params"], self.slow):
                phi.add_(self.alpha * (p - phi))
                p.copy_(phi)


def builtin(name):
    return nnrun.load_registry().kind("optimizers")[name]


CASES = {
    "adam inside, defaults": (lambda: Inner(builtin("adam"), torch.optim.Adam, lr=1e-2), {}),
    "sgd with momentum inside": (
        lambda: Inner(builtin("sgd"), torch.optim.SGD, lr=0.05, momentum=0.9),
        dict(k=3, alpha=0.8),
    ),
    "lamb inside": (lambda: Inner(Lamb, PaperLamb, lr=1e-2), dict(k=7, alpha=0.3)),
    "k = 1, alpha = 1: the inner optimizer alone": (
        lambda: Inner(builtin("adamw"), torch.optim.AdamW, lr=1e-2),
        dict(k=1, alpha=1.0),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lookahead_matches_the_papers_algorithm_step_for_step(case):
    inner, settings = CASES[case]
    check_optimizer(Lookahead, reference=PaperLookahead, inner=inner(), **settings)


def test_lookahead_passes_its_lr_to_the_inner_optimizer_and_saves_its_state():
    param = nnrun.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = Lookahead([param], inner=Inner(builtin("adam"), torch.optim.Adam, lr=0.1), k=2)
    assert optimizer.lr == 0.1
    optimizer.lr = 0.01  # as a scheduler does
    param.grad = torch.ones(3, dtype=torch.float64)
    optimizer.step()
    assert optimizer.inner.lr == 0.01
    saved = optimizer.state_dict()
    assert saved["inner"]["state"][0]["step"] == 1 and saved["counters"] == {"steps": 1}


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(k=0), r"Invalid k: 0 \(expected an integer >= 1\)"),
        (dict(alpha=1.5), r"Invalid alpha: 1.5 \(expected 0 <= alpha <= 1\)"),
    ],
)
def test_lookahead_refuses_bad_hyperparameters(settings, message):
    inner = Inner(builtin("sgd"), torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match=message):
        Lookahead([nnrun.Parameter(torch.zeros(1))], inner=inner, **settings)
