"""Adan against Xie et al.'s Algorithm 1, transcribed below in the paper's own notation (its betas
are 1 − the code's), with the bias corrections and zero first difference of the authors' code
(sail-sg/Adan, not on PyPI). `adan-pytorch` on PyPI is not the authors' and differs: it skips the
moment updates on the first step, so its first step does not move the parameters."""

from __future__ import annotations

import pytest
import torch
from nnrun_extra_optim import Adan

import nnrun
from nnrun.testing import check_optimizer


class PaperAdan(torch.optim.Optimizer):
    """Algorithm 1: m = (1 − β₁)m + β₁g;  v = (1 − β₂)v + β₂(g − g₋);
    n = (1 − β₃)n + β₃[g + (1 − β₂)(g − g₋)]²;  η_k = η/(√n + ε);
    θ = (1 + λη)⁻¹[θ − η_k∘(m + (1 − β₂)v)]; each moment divided by its bias correction."""

    def __init__(
        self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, no_prox=False
    ):
        paper_betas = tuple(1 - b for b in betas)  # the paper's β: 0.02, 0.08, 0.01
        super().__init__(
            params, dict(lr=lr, betas=paper_betas, eps=eps, wd=weight_decay, no_prox=no_prox)
        )

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (b1, b2, b3), eps, wd = group["lr"], group["betas"], group["eps"], group["wd"]
            for theta in group["params"]:
                if theta.grad is None:
                    continue
                g, st = theta.grad.clone(), self.state[theta]
                if not st:
                    zeros = torch.zeros_like(theta)
                    st.update(
                        k=0, m=zeros.clone(), v=zeros.clone(), n=zeros.clone(), g_prev=g.clone()
                    )
                st["k"] += 1
                k, diff = st["k"], g - st["g_prev"]
                st["m"] = (1 - b1) * st["m"] + b1 * g
                st["v"] = (1 - b2) * st["v"] + b2 * diff
                st["n"] = (1 - b3) * st["n"] + b3 * (g + (1 - b2) * diff) ** 2
                m_hat, v_hat, n_hat = (
                    st[x] / (1 - (1 - b) ** k) for x, b in zip("mvn", (b1, b2, b3))
                )
                eta_k = lr / (n_hat.sqrt() + eps)
                if group["no_prox"]:
                    theta.copy_(theta * (1 - lr * wd) - eta_k * (m_hat + (1 - b2) * v_hat))
                else:
                    theta.copy_((theta - eta_k * (m_hat + (1 - b2) * v_hat)) / (1 + lr * wd))
                st["g_prev"] = g


SETTINGS = [
    {},
    dict(lr=1e-2, betas=(0.9, 0.9, 0.999), weight_decay=0.02),
    dict(lr=1e-2, betas=(0.98, 0.92, 0.99), weight_decay=0.05, no_prox=True),
    dict(lr=3e-3, betas=(0.0, 0.5, 0.9), eps=1e-6),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_adan_matches_the_papers_algorithm_step_for_step(settings):
    check_optimizer(Adan, reference=PaperAdan, **settings)


def test_adans_first_step_takes_the_difference_as_zero():
    """With g_prev = g on the first step, d = 0 and Adan's first step is Adam's: −lr·sign(g)."""
    param = nnrun.Parameter(torch.zeros(3, dtype=torch.float64))
    optimizer = Adan([param], lr=0.1, eps=0.0)
    param.grad = torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(param.data, torch.tensor([-0.1, 0.1, -0.1], dtype=torch.float64))


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (dict(betas=(0.98, 0.92, 1.5)), "Invalid beta parameter at index 2: 1.5"),
        (dict(betas=(0.98, 0.92)), r"betas must be 3 values"),
        (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    ],
)
def test_adan_refuses_bad_hyperparameters(settings, message):
    with pytest.raises(ValueError, match=message):
        Adan([nnrun.Parameter(torch.zeros(1))], **settings)
