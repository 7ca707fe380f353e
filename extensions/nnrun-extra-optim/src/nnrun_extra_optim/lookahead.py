"""Lookahead: any optimizer's fast weights, pulled back towards slow weights every k steps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import nnrun
from nnrun_extra_optim._common import Base, check_count


class Lookahead(Base):
    r"""Lookahead around the optimizer named by `inner`.

    ::

        input: inner optimizer A (any registered one, with its hyperparameters), k, alpha α
        state: slow weights φ ← θ₀, a step count s ← 0 (for the optimizer as a whole)
        for each step:
            θ ← A's step from θ                  (the fast weights: the model's parameters)
            s ← s + 1
            if s = k:  s ← 0
                for each parameter:  φ ← φ + α·(θ − φ);  θ ← φ

    Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1 step back"
    (NeurIPS), Algorithm 1. `inner` is a table naming a registered optimizer,
    `inner = { name = "adam", lr = 1e-3 }`; nnrun checks it like any optimizer and hands
    Lookahead a factory that builds it on the parameters. Lookahead's `lr` is the inner
    optimizer's: a scheduler setting it sets the inner one's, at each step. Every parameter is
    pulled back every k steps, as in the authors' code, whether it had gradients or not; one
    that has not moved stays exactly where it is (φ + α·0 = φ). The inner optimizer's state is
    saved and restored with Lookahead's.
    """

    def __init__(
        self,
        params: Iterable[nnrun.Parameter],
        inner: nnrun.InnerOptimizer,
        k: int = 5,
        alpha: float = 0.5,
    ):
        check_count("k", k, 1)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Invalid alpha: {alpha} (expected 0 <= alpha <= 1)")
        super().__init__(params, k=k, alpha=alpha)
        self.inner: nnrun.Optimizer = inner(self.params)
        if "lr" in self.inner.hyperparameters:
            self.hyperparameters["lr"] = self.inner.lr
        for param in self.params:
            self.state[param] = {"slow": param.data.clone()}

    def step(self) -> None:
        h = self.hyperparameters
        if "lr" in h:
            self.inner.lr = h["lr"]
        self.inner.step()
        steps = self.counters["steps"] = int(self.counters.get("steps", 0)) + 1
        if steps < h["k"]:
            return
        self.counters["steps"] = 0
        for param in self.params:
            slow = self.state[param]["slow"]
            slow.lerp_(param.data, h["alpha"])
            param.data.copy_(slow)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "inner": self.inner.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.inner.load_state_dict(state_dict["inner"])

    def __repr__(self) -> str:
        return f"Lookahead(k={self.hyperparameters['k']}, alpha={self.hyperparameters['alpha']}, inner={self.inner!r})"
