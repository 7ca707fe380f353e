"""Signum: SGD that steps by the sign of the momentum (Bernstein et al. 2018, "signSGD")."""

import torch

import nnrun


class Signum(nnrun.Optimizer):
    """m ← β·m + (1 − β)·g;  θ ← θ − lr·sign(m)."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        super().__init__(params, lr=lr, momentum=momentum)

    def step(self):
        lr, beta = self.hyperparameters["lr"], self.hyperparameters["momentum"]
        for param in self.params:
            if param.grad is None:
                continue
            state = self.state.setdefault(param, {})
            m = state.setdefault("momentum", torch.zeros_like(param.data))
            m.mul_(beta).add_(param.grad, alpha=1 - beta)
            param.data.add_(m.sign(), alpha=-lr)


@nnrun.hookimpl
def register_optimizers(register):
    register("signum", Signum)
