"""Muon against the algorithm of Jordan et al.'s post and code (`MuonWithAuxAdam`), transcribed
below in the parameter's dtype, and against torch.optim.Muon, which takes matrices only and runs
the Newton–Schulz iteration in bfloat16."""

from __future__ import annotations

import math

import pytest
import torch
from nnrun_extra_optim import Muon

import nnrun
from nnrun.testing import check_optimizer


def zeropower(G, steps, a, b, c, eps):
    """Newton–Schulz as in KellerJordan/Muon `zeropower_via_newtonschulz5`, without bfloat16."""
    tall = G.size(0) > G.size(1)
    X = G.T if tall else G
    X = X / (X.norm() if X.norm() > eps else eps)
    for _ in range(steps):
        A = X @ X.T
        X = torch.addmm(X, torch.addmm(A, A, A, beta=b, alpha=c), X, beta=a)
    return X.T if tall else X


class PaperMuon(torch.optim.Optimizer):
    """Muon for matrices (conv-style tensors viewed as rows × the rest), Adam with decoupled decay
    (the post's auxiliary AdamW) for scalars and vectors."""

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.95,
        nesterov=True,
        weight_decay=0.1,
        ns_coefficients=(3.4445, -4.7750, 2.0315),
        ns_steps=5,
        eps=1e-7,
        adjust_lr_fn="original",
        adamw_lr=3e-4,
        adamw_betas=(0.9, 0.95),
        adamw_eps=1e-10,
    ):
        super().__init__(params, dict(lr=lr))
        self.mu, self.nesterov, self.wd = momentum, nesterov, weight_decay
        self.ns, self.steps, self.eps, self.adjust = ns_coefficients, ns_steps, eps, adjust_lr_fn
        self.a_lr, self.a_betas, self.a_eps = adamw_lr, adamw_betas, adamw_eps

    @torch.no_grad()
    def step(self):
        lr = self.param_groups[0]["lr"]
        for p in self.param_groups[0]["params"]:
            if p.grad is None:
                continue
            g, st = p.grad, self.state[p]
            if p.dim() >= 2:
                st.setdefault("B", torch.zeros_like(p))
                st["B"] = self.mu * st["B"] + (1 - self.mu) * g
                U = (1 - self.mu) * g + self.mu * st["B"] if self.nesterov else st["B"]
                R, C = p.shape[0], p[0].numel()
                Ortho = zeropower(U.reshape(R, C), self.steps, *self.ns, self.eps).reshape(p.shape)
                s = (
                    math.sqrt(max(1, R / C))
                    if self.adjust == "original"
                    else 0.2 * math.sqrt(max(R, C))
                )
                p.copy_(p * (1 - lr * self.wd) - lr * s * Ortho)
            else:
                b1, b2 = self.a_betas
                if not st:
                    st.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                st["t"] += 1
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                m_hat, v_hat = st["m"] / (1 - b1 ** st["t"]), st["v"] / (1 - b2 ** st["t"])
                p.copy_(
                    p * (1 - self.a_lr * self.wd) - self.a_lr * m_hat / (v_hat.sqrt() + self.a_eps)
                )


SETTINGS = [
    {},
    dict(lr=0.02, momentum=0.9, weight_decay=0.0, adamw_lr=1e-3),
    dict(lr=0.01, nesterov=False, adjust_lr_fn="match_rms_adamw", ns_steps=3),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_muon_matches_the_posts_algorithm_step_for_step(settings):
    check_optimizer(Muon, reference=PaperMuon, **settings)


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon is new in torch 2.9")
@pytest.mark.parametrize(
    "settings", [{}, dict(nesterov=False, adjust_lr_fn="match_rms_adamw")], ids=str
)
@pytest.mark.parametrize("shape", [(8, 3), (3, 8), (5, 5)])
def test_muon_matches_torch_optim_muon_on_matrices(monkeypatch, shape, settings):
    """torch runs the iteration in bfloat16, which changes the second significant digit of a
    step; with that cast made a no-op, torch's code runs in float64 and must agree to 1e-12."""
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self: self.clone())
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(shape, generator=generator, dtype=torch.float64)
    ours, theirs = nnrun.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizer = Muon([ours], lr=0.02, **settings)
    reference = torch.optim.Muon([theirs], lr=0.02, **settings)
    for _ in range(50):
        grad = torch.randn(shape, generator=generator, dtype=torch.float64)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        optimizer.step()
        reference.step()
        torch.testing.assert_close(ours.data, theirs.detach(), rtol=1e-12, atol=1e-12)


def test_the_orthogonalised_update_has_singular_values_near_one():
    generator = torch.Generator().manual_seed(1)
    param = nnrun.Parameter(torch.zeros(16, 4, dtype=torch.float64))
    optimizer = Muon([param], lr=1.0, weight_decay=0.0, momentum=0.0, nesterov=False)
    param.grad = torch.randn(16, 4, generator=generator, dtype=torch.float64)
    optimizer.step()
    singular = torch.linalg.svdvals(-param.data / math.sqrt(16 / 4))
    assert ((singular > 0.6) & (singular < 1.25)).all(), singular  # the quintic's band


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (dict(momentum=1.0), "Invalid momentum value: 1.0"),
        (dict(adjust_lr_fn="rms"), "Invalid adjust_lr_fn: 'rms'"),
        (dict(adamw_betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    ],
)
def test_muon_refuses_bad_hyperparameters(settings, message):
    with pytest.raises(ValueError, match=message):
        Muon([nnrun.Parameter(torch.zeros(2, 2))], **settings)
