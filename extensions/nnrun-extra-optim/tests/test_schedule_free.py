"""Schedule-free SGD and AdamW against Defazio et al.'s Algorithm 1, transcribed below with the
three sequences x, y, z kept explicitly (the optimizers keep only y and z), and against the
authors' `schedulefree` package when installed (the `reference` extra)."""

from __future__ import annotations

import pytest
import torch
from nnrun_extra_optim import ScheduleFreeAdamW, ScheduleFreeSGD

import nnrun
from nnrun.testing import check_optimizer


class PaperScheduleFree(torch.optim.Optimizer):
    """Algorithm 1 of "The Road Less Scheduled": gradients at y = (1 − β)z + βx;
    z ← z − γₜ·u;  x ← (1 − cₜ₊₁)x + cₜ₊₁·z;  cₜ₊₁ = wₜ/Σwᵢ with wₜ = tʳ·γ_maxᵖ (the authors'
    weighting; r = 0, p = 2 is the paper's γₜ²/Σγᵢ² for a constant rate). u is g (SGD) or
    g/(√v̂ + ε) (AdamW), plus λ·y. The step count t is the optimizer's, as in the authors' code."""

    adam = False

    def __init__(
        self,
        params,
        lr,
        beta,
        eps=1e-8,
        beta2=0.999,
        weight_decay=0.0,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
    ):
        super().__init__(params, dict(lr=lr))
        self.beta, self.beta2, self.eps, self.wd = beta, beta2, eps, weight_decay
        self.warmup, self.r, self.p = warmup_steps, r, weight_lr_power
        self.t, self.weights, self.lr_max = 0, 0.0, -1.0

    @torch.no_grad()
    def step(self):
        self.t += 1
        t = self.t
        lr = self.param_groups[0]["lr"] * min(1.0, t / self.warmup if self.warmup else 1.0)
        self.lr_max = max(self.lr_max, lr)
        w = t**self.r * self.lr_max**self.p
        self.weights += w
        c = w / self.weights if self.weights else 0.0
        for y in self.param_groups[0]["params"]:
            if y.grad is None:
                continue
            st = self.state[y]
            if not st:
                st.update(x=y.clone(), z=y.clone(), v=torch.zeros_like(y))
            g = y.grad
            if self.adam:
                st["v"] = self.beta2 * st["v"] + (1 - self.beta2) * g * g
                u = g / ((st["v"] / (1 - self.beta2**t)).sqrt() + self.eps)
            else:
                u = g
            u = u + self.wd * y
            st["z"] = st["z"] - lr * u
            st["x"] = (1 - c) * st["x"] + c * st["z"]
            y.copy_((1 - self.beta) * st["z"] + self.beta * st["x"])


class PaperSGD(PaperScheduleFree):
    def __init__(self, params, lr=1.0, momentum=0.9, **settings):
        super().__init__(params, lr, momentum, **settings)


class PaperAdamW(PaperScheduleFree):
    adam = True

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), **settings):
        super().__init__(params, lr, betas[0], beta2=betas[1], **settings)


SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.5, weight_decay=0.01),
    dict(lr=0.1, warmup_steps=20, r=1.0, weight_lr_power=1.0),
]
ADAMW_SETTINGS = [
    {},
    dict(lr=0.01, betas=(0.95, 0.99), weight_decay=0.01),
    dict(lr=0.01, eps=1e-6, warmup_steps=30, r=0.5),
]
CASES = [(ScheduleFreeSGD, PaperSGD, s) for s in SGD_SETTINGS] + [
    (ScheduleFreeAdamW, PaperAdamW, s) for s in ADAMW_SETTINGS
]
IDS = [f"{ours.__name__}-{settings}" for ours, _, settings in CASES]


@pytest.mark.parametrize("ours, paper, settings", CASES, ids=IDS)
def test_schedule_free_matches_the_papers_algorithm_step_for_step(ours, paper, settings):
    check_optimizer(ours, reference=paper, **settings)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("ours, paper, settings", CASES, ids=IDS)
def test_schedule_free_matches_the_authors_package_step_for_step(ours, paper, settings, foreach):
    official = pytest.importorskip("schedulefree")
    base = official.SGDScheduleFree if ours is ScheduleFreeSGD else official.AdamWScheduleFree

    class Authors(base):
        def __init__(self, params, **settings):
            super().__init__(params, foreach=foreach, **settings)
            self.train()  # the parameters hold y, as nnrun's do

    check_optimizer(ours, reference=Authors, **settings)


def test_the_average_x_is_recovered_from_y_and_z():
    """The docstring's x = (y − (1 − β)·z)/β, against the transcription's explicit x."""
    start = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    ours, theirs = nnrun.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizer, paper = (
        ScheduleFreeSGD([ours], lr=0.1, momentum=0.8),
        PaperSGD([theirs], lr=0.1, momentum=0.8),
    )
    for step in range(10):
        grad = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64) * (step + 1)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        optimizer.step()
        paper.step()
    x = (ours.data - 0.2 * optimizer.state[ours]["z"]) / 0.8
    torch.testing.assert_close(x, paper.state[theirs]["x"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "cls, settings, message",
    [
        (ScheduleFreeSGD, dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (ScheduleFreeSGD, dict(momentum=1.0), "Invalid momentum value: 1.0"),
        (ScheduleFreeSGD, dict(warmup_steps=-1), "Invalid warmup_steps: -1"),
        (ScheduleFreeAdamW, dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
        (ScheduleFreeAdamW, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    ],
)
def test_schedule_free_refuses_bad_hyperparameters(cls, settings, message):
    with pytest.raises(ValueError, match=message):
        cls([nnrun.Parameter(torch.zeros(1))], **settings)
