"""LAMB against You et al.'s Algorithm 2, transcribed below from the paper. (The authors' code is
TensorFlow; `pytorch-lamb` is not theirs, has no bias correction and needs torchvision.)"""

from __future__ import annotations

import pytest
import torch
from nnrun_extra_optim import Lamb

import nnrun
from nnrun.testing import check_optimizer


class PaperLamb(torch.optim.Optimizer):
    """Algorithm 2 (LAMB) of You et al. 2020, φ(z) = z, 0-norm trust ratios taken as 1."""

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, bias_correction=True
    ):
        super().__init__(
            params, dict(lr=lr, betas=betas, eps=eps, wd=weight_decay, bc=bias_correction)
        )

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for x in group["params"]:
                if x.grad is None:
                    continue
                g, s = x.grad, self.state[x]
                if not s:
                    s["t"], s["m"], s["v"] = 0, torch.zeros_like(x), torch.zeros_like(x)
                s["t"] += 1
                t = s["t"]
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                m_hat = s["m"] / (1 - b1**t) if group["bc"] else s["m"]
                v_hat = s["v"] / (1 - b2**t) if group["bc"] else s["v"]
                r = m_hat / (v_hat.sqrt() + group["eps"]) + group["wd"] * x
                x_norm, r_norm = x.norm(), r.norm()
                ratio = x_norm / r_norm if x_norm > 0 and r_norm > 0 else 1.0
                x.sub_(group["lr"] * ratio * r)


#: The first is empty: the defaults, checked against the transcription's (the paper's BERT ones).
SETTINGS = [
    {},
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.01, bias_correction=True),
    dict(lr=5e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1, bias_correction=False),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_lamb_matches_the_papers_algorithm_step_for_step(settings):
    check_optimizer(Lamb, reference=PaperLamb, **settings)


def test_a_zero_parameter_moves_at_the_plain_adam_rate():
    """‖θ‖ = 0: the trust ratio is 1, so the first step is Adam's, −lr·sign(g) (ε aside)."""
    param = nnrun.Parameter(torch.zeros(4, dtype=torch.float64))
    optimizer = Lamb([param], lr=0.1, eps=0.0)
    param.grad = torch.tensor([1.0, -2.0, 3.0, -4.0], dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(
        param.data, torch.tensor([-0.1, 0.1, -0.1, 0.1], dtype=torch.float64)
    )


def test_every_step_of_a_nonzero_parameter_has_length_lr_times_its_norm():
    """The trust ratio makes ‖Δθ‖ = lr·‖θ‖ whatever the gradient's scale."""
    param = nnrun.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    optimizer = Lamb([param], lr=0.01)
    for scale in (1e-4, 1.0, 1e4):
        before = param.data.clone()
        param.grad = scale * torch.tensor([1.0, -0.5], dtype=torch.float64)
        optimizer.step()
        assert float((param.data - before).norm()) == pytest.approx(
            0.01 * float(before.norm()), rel=1e-12
        )


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (dict(eps=-1.0), "Invalid epsilon value: -1.0"),
        (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
    ],
)
def test_lamb_refuses_bad_hyperparameters(settings, message):
    with pytest.raises(ValueError, match=message):
        Lamb([nnrun.Parameter(torch.zeros(1))], **settings)
