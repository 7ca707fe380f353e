"""AdaBelief against Zhuang et al.'s Algorithm 2 transcribed below (with the authors' extensions:
decoupled decay, rectification), and against the authors' `adabelief-pytorch` when installed
(the `reference` extra)."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch
from nnrun_extra_optim import AdaBelief

import nnrun
from nnrun.testing import check_optimizer


class PaperAdaBelief(torch.optim.Optimizer):
    """Algorithm 2 of Zhuang et al. 2020: s_t = β₂·s + (1 − β₂)(g − m)² + ε, bias-corrected;
    `rectify` is RAdam's variance rectification (Liu et al. 2020, Algorithm 2) on top of it."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-16,
        weight_decay=0.0,
        weight_decouple=True,
        fixed_decay=False,
        amsgrad=False,
        rectify=True,
        degenerated_to_sgd=True,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, wd=weight_decay))
        self.decouple, self.fixed, self.amsgrad = weight_decouple, fixed_decay, amsgrad
        self.rectify, self.sgd = rectify, degenerated_to_sgd

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["wd"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                g, st = theta.grad, self.state[theta]
                if not st:
                    st.update(t=0, m=torch.zeros_like(theta), s=torch.zeros_like(theta))
                    st["s_max"] = torch.zeros_like(theta)
                if self.decouple:
                    theta.copy_(theta * (1 - (wd if self.fixed else lr * wd)))
                else:
                    g = g + wd * theta
                st["t"] += 1
                t = st["t"]
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["s"] = b2 * st["s"] + (1 - b2) * (g - st["m"]) ** 2 + eps
                st["s_max"] = torch.maximum(st["s_max"], st["s"])
                m_hat = st["m"] / (1 - b1**t)
                if not self.rectify:
                    s_hat = (st["s_max"] if self.amsgrad else st["s"]) / (1 - b2**t)
                    theta.sub_(lr * m_hat / (s_hat.sqrt() + eps))
                    continue
                rho_inf = 2 / (1 - b2) - 1
                rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
                if rho >= 5:
                    r = math.sqrt(
                        (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
                    )
                    # RAdam's form: the correction √(1 − β₂ᵗ) in the rate, ε on the raw √s.
                    theta.sub_(lr * r * math.sqrt(1 - b2**t) * m_hat / (st["s"].sqrt() + eps))
                elif self.sgd:
                    theta.sub_(lr * m_hat)


SETTINGS = [
    {},
    dict(lr=1e-2, eps=1e-8, rectify=False),
    dict(lr=1e-2, eps=1e-8, rectify=False, amsgrad=True, weight_decay=0.1, weight_decouple=False),
    dict(lr=5e-3, betas=(0.8, 0.9), weight_decay=0.01, fixed_decay=True),
    dict(lr=5e-3, betas=(0.9, 0.99), degenerated_to_sgd=False, amsgrad=True),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_adabelief_matches_the_papers_algorithm_step_for_step(settings):
    check_optimizer(AdaBelief, reference=PaperAdaBelief, **settings)


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_adabelief_matches_the_authors_package_step_for_step(settings):
    official = pytest.importorskip("adabelief_pytorch")

    class Authors(official.AdaBelief):
        def __init__(self, params, **settings):
            with contextlib.redirect_stdout(io.StringIO()):  # it prints a banner
                super().__init__(params, print_change_log=False, **settings)

    check_optimizer(AdaBelief, reference=Authors, **settings)


def test_adabelief_puts_eps_inside_the_belief():
    """A constant gradient has no surprise, g − m → 0, so s → ε/(1 − β₂) and the step
    approaches lr·m/√(ε/(1 − β₂)): ε inside s caps the step at a finite size."""
    param = nnrun.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = AdaBelief([param], lr=1.0, eps=1e-8, betas=(0.0, 0.5), rectify=False)
    param.grad = torch.ones(1, dtype=torch.float64)
    optimizer.step()
    s = 1e-8  # β₁ = 0: m = g at once and g − m = 0, s = ε
    expected = -1.0 / (math.sqrt(s / 0.5) + 1e-8)
    assert float(param.data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
        (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
        (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    ],
)
def test_adabelief_refuses_bad_hyperparameters(settings, message):
    with pytest.raises(ValueError, match=message):
        AdaBelief([nnrun.Parameter(torch.zeros(1))], **settings)
